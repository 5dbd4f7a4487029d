//! The journal of one agent → coordinator stream: the messages waiting for the link (as pi
//! wrote them) and those already written (as they crossed the link) that a dying link may have
//! lost, so a new stream after a reconnect can start where the coordinator may have stopped.
//!
//! What it is not: no I/O. It neither opens streams nor writes frames; the agent's forwarding
//! loop (`piface_agent::link`) asks it what to write next and tells it what was written. That
//! keeps its bookkeeping (bounds, what is dropped, what is resent, the delta coder's state)
//! testable without a network.

use std::collections::VecDeque;

use piface_shared::delta::{self, Encoder, Slots};
use piface_shared::protocol::{FromAgent, PiEvent};

/// Bytes of already-written events kept to resend on a new stream after a reconnect (at most;
/// a quarter of the replay buffer when that is smaller): the link may have died with them in
/// flight. The coordinator drops what it already has, by sequence number. QUIC's own send
/// window (what can be written but unacknowledged) is far below this.
pub const RESEND_BYTES: usize = 16 << 20;

/// What a message counts for against the journal's bounds before it is coded: its payload
/// plus a little for the rest.
fn weight(msg: &FromAgent) -> usize {
    match msg {
        FromAgent::Events { events, .. } => events.iter().map(|e| e.line.len() + 64).sum(),
        FromAgent::HistoryChunk { data, .. }
        | FromAgent::FileChunk { data, .. }
        | FromAgent::PtyOutput { data, .. } => data.len() + 64,
        _ => 64,
    }
}

/// Messages of one stream: those waiting for the link (as pi wrote them) and those written
/// (as they crossed the link) that a dying link may have lost.
#[derive(Debug)]
pub struct Journal {
    unsent: VecDeque<FromAgent>,
    unsent_bytes: usize,
    /// Written, oldest first, with their size on the wire.
    sent: VecDeque<(FromAgent, usize)>,
    sent_bytes: usize,
    /// Messages of `sent` being written again on a new stream.
    resend: VecDeque<FromAgent>,
    /// Codes streaming updates; follows every message taken from `unsent`.
    encoder: Encoder,
    /// The encoder's state before the oldest message of `sent` and `resend`: where the
    /// coordinator's decoder must start on a new stream.
    base: Slots,
    /// Bound of `unsent_bytes` (while the link is down or stalled).
    limit: usize,
    /// Bound of `sent_bytes`.
    resend_limit: usize,
}

impl Journal {
    /// An empty journal keeping up to `limit` bytes of unsent messages while the link is down
    /// (and a quarter of that, at most [`RESEND_BYTES`], of written ones).
    pub fn new(limit: usize) -> Journal {
        Journal {
            unsent: VecDeque::new(),
            unsent_bytes: 0,
            sent: VecDeque::new(),
            sent_bytes: 0,
            resend: VecDeque::new(),
            encoder: Encoder::default(),
            base: Default::default(),
            limit,
            resend_limit: RESEND_BYTES.min(limit / 4),
        }
    }

    /// Queues `msg`; with `keep_up` false (no link, or a stalled one), drops the oldest past
    /// the limit (not yet coded, so the coding state is untouched; the coordinator sees the
    /// hole in the sequence numbers).
    pub fn push(&mut self, msg: FromAgent, keep_up: bool) {
        self.unsent_bytes += weight(&msg);
        self.unsent.push_back(msg);
        if !keep_up {
            // Keep the newest; the end of the stream (Exited) is never dropped.
            while self.unsent_bytes > self.limit && self.unsent.len() > 1 {
                let old = self.unsent.pop_front().expect("len > 1");
                self.unsent_bytes -= weight(&old);
            }
        }
    }

    /// Whether the unsent messages fill the journal: a link that is up and moving then
    /// pushes back on pi instead of taking more.
    pub fn is_full(&self) -> bool {
        self.unsent_bytes >= self.limit
    }

    /// Whether anything waits to be written (again or for the first time).
    pub fn has_more(&self) -> bool {
        !self.resend.is_empty() || !self.unsent.is_empty()
    }

    /// How many messages are kept as written and how many wait for the link (for logs).
    pub fn counts(&self) -> (usize, usize) {
        (self.sent.len(), self.unsent.len())
    }

    /// The next message to write, as it crosses the link.
    pub fn next_to_write(&mut self) -> Option<FromAgent> {
        if let Some(msg) = self.resend.pop_front() {
            return Some(msg);
        }
        let msg = self.unsent.pop_front()?;
        self.unsent_bytes -= weight(&msg);
        Some(compact(&mut self.encoder, &msg))
    }

    /// `msg` (`len` bytes on the wire) was written; events are kept a while in case the link
    /// lost them.
    pub fn written(&mut self, msg: FromAgent, len: usize) {
        if matches!(msg, FromAgent::Events { .. } | FromAgent::PtyOutput { .. }) {
            self.keep(msg, len);
        }
    }

    /// `msg` may or may not have crossed a link that died while it was written.
    pub fn maybe_lost(&mut self, msg: FromAgent, len: usize) {
        self.keep(msg, len);
    }

    fn keep(&mut self, msg: FromAgent, len: usize) {
        self.sent_bytes += len;
        self.sent.push_back((msg, len));
        while self.sent_bytes > self.resend_limit && self.sent.len() > 1 {
            let (old, len) = self.sent.pop_front().expect("len > 1");
            self.sent_bytes -= len;
            if let FromAgent::Events { events, .. } = &old {
                for delta in events.iter().filter_map(|e| e.delta.as_ref()) {
                    if let Err(e) = delta::advance(&mut self.base, delta) {
                        tracing::warn!("journal coding state: {e}");
                    }
                }
            }
        }
    }

    /// The coding state a new stream starts from (sent as `DeltaBase` when it is not empty).
    pub fn base(&self) -> &Slots {
        &self.base
    }

    /// On a new stream: the decoder's starting state, and what was written on the old stream
    /// goes again, first.
    pub fn rewind(&mut self) -> Slots {
        let mut again: VecDeque<FromAgent> = self.sent.drain(..).map(|(m, _)| m).collect();
        again.extend(self.resend.drain(..));
        self.resend = again;
        self.sent_bytes = 0;
        self.base.clone()
    }
}

/// `msg` as it crosses the link: streaming updates coded against the previous ones written on
/// the same stream (the journal keeps pi's lines, so a new stream can start from any message).
fn compact(encoder: &mut Encoder, msg: &FromAgent) -> FromAgent {
    match msg {
        FromAgent::Events { session, events } => FromAgent::Events {
            session: session.clone(),
            events: events
                .iter()
                .map(|e| match encoder.encode(&e.line) {
                    Some((skeleton, delta)) => {
                        PiEvent { seq: e.seq, meta: e.meta.clone(), line: skeleton, delta: Some(delta) }
                    }
                    None => e.clone(),
                })
                .collect(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use piface_shared::delta::Decoder;
    use piface_shared::protocol::EventMeta;

    fn event(seq: u64, line: Bytes) -> FromAgent {
        let meta = EventMeta { kind: "message_update".into(), id: None, command: None, success: None };
        FromAgent::Events { session: "s".into(), events: vec![PiEvent { seq, meta, line, delta: None }] }
    }

    /// A streaming update of a message whose text is `text` (pi repeats it twice).
    fn update(text: &str) -> Bytes {
        let message = format!(r#"{{"role":"assistant","content":[{{"type":"text","text":{text:?}}}]}}"#);
        let event = format!(r#"{{"type":"text_delta","delta":"x","partial":{message}}}"#);
        Bytes::from(format!(r#"{{"type":"message_update","assistantMessageEvent":{event},"message":{message}}}"#))
    }

    fn seqs(msgs: &[FromAgent]) -> Vec<u64> {
        msgs.iter()
            .flat_map(|m| match m {
                FromAgent::Events { events, .. } => events.iter().map(|e| e.seq).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn drain(j: &mut Journal) -> Vec<FromAgent> {
        std::iter::from_fn(|| j.next_to_write()).collect()
    }

    #[test]
    fn a_dead_link_drops_the_oldest_but_never_the_last() {
        let mut j = Journal::new(1000);
        for seq in 0..20 {
            j.push(event(seq, Bytes::from(vec![b'a'; 100])), false);
        }
        assert_eq!(j.counts(), (0, 6));
        let kept = seqs(&drain(&mut j));
        assert_eq!(kept, (14..20).collect::<Vec<_>>(), "the newest that fit");
        // A single message over the limit is kept (an `Exited` is never dropped).
        j.push(event(20, Bytes::from(vec![b'a'; 5000])), false);
        assert_eq!(seqs(&drain(&mut j)), [20]);
        // A live link keeps everything and reports the journal full.
        for seq in 21..40 {
            j.push(event(seq, Bytes::from(vec![b'a'; 100])), true);
        }
        assert!(j.is_full());
        assert_eq!(seqs(&drain(&mut j)).len(), 19);
    }

    #[test]
    fn written_events_go_again_first_on_a_new_stream() {
        let mut j = Journal::new(64 << 20);
        j.push(event(0, Bytes::from_static(b"{}")), true);
        j.push(FromAgent::Notice { session: None, message: "n".into() }, true);
        j.push(event(1, Bytes::from_static(b"{}")), true);
        for msg in drain(&mut j) {
            j.written(msg, 10);
        }
        // The stream broke while event 2 was written.
        j.push(event(2, Bytes::from_static(b"{}")), true);
        let pending = j.next_to_write().unwrap();
        j.maybe_lost(pending, 10);
        j.push(event(3, Bytes::from_static(b"{}")), true);
        assert_eq!(j.rewind(), Slots::default());
        let again = drain(&mut j);
        // Events (not the notice) in their order, then what was never written.
        assert_eq!(seqs(&again), [0, 1, 2, 3]);
        assert!(again.iter().all(|m| matches!(m, FromAgent::Events { .. })));
        assert!(!j.has_more());
    }

    #[test]
    fn a_new_stream_decodes_from_the_base_past_what_was_forgotten() {
        // A resend bound of 1 KiB: the last two written messages (400 bytes each) are kept.
        let mut j = Journal::new(4096);
        let mut text = String::new();
        let mut lines = Vec::new();
        for seq in 0..6 {
            text.push_str("word ");
            lines.push(update(&text));
            j.push(event(seq, update(&text)), true);
            let msg = j.next_to_write().unwrap();
            let FromAgent::Events { events, .. } = &msg else { unreachable!() };
            assert!(events[0].delta.is_some(), "an update crosses as a delta");
            j.written(msg, 400);
        }
        let base = j.rewind();
        assert!(base.iter().any(Option::is_some), "the base moved past the forgotten updates");
        let again = drain(&mut j);
        assert_eq!(seqs(&again), [4, 5]);
        // The coordinator's decoder, started from the base, gets pi's bytes back.
        let mut decoder = Decoder::default();
        decoder.reset(base);
        for msg in again {
            let FromAgent::Events { events, .. } = msg else { unreachable!() };
            let e = &events[0];
            let line = decoder.decode(&e.line, e.delta.as_ref().unwrap()).unwrap();
            assert_eq!(line, lines[e.seq as usize]);
        }
    }
}
