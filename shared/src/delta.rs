//! Compact streaming updates: pi repeats the whole partial assistant message twice in every
//! `message_update` (as `assistantMessageEvent.partial` and as `message`), so an answer of N
//! tokens is O(N²) bytes. Across the agent ⇄ coordinator link such a line travels as its
//! *skeleton* (the line with those two values cut out) plus, for each value, a [`Cut`]: how
//! much of the previous value of the same slot to keep at each end and the bytes in between.
//!
//! The coding is on the line's bytes, not on a JSON tree: [`Decoder::decode`] gives back
//! exactly the bytes pi wrote (same key order, same number spelling, same escapes), whatever
//! changed between two updates. A value that did not change costs a few bytes, an appended
//! token about its own length.
//!
//! Encoder and decoder each hold the previous value of every slot; they stay in step because
//! both see the same updates in the same order. A stream that starts in the middle begins
//! with the encoder's [`Slots`] (see `FromAgent::DeltaBase`).

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The values a streaming update repeats: 0 = `assistantMessageEvent.partial`, 1 = `message`.
pub const SLOTS: usize = 2;

/// The previous value of each slot.
pub type Slots = [Option<Bytes>; SLOTS];

/// One value cut out of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// Where the value goes back into the skeleton (byte offset, after the cuts before it
    /// went back in).
    pub at: u32,
    /// Which slot's previous value it patches.
    pub slot: u8,
    /// The value is the same bytes as an earlier cut of this line (pi's `message` is its
    /// `partial`): the other fields are unused.
    pub same_as_previous_cut: bool,
    /// Bytes kept from the start of the previous value.
    pub keep_prefix: u32,
    /// Bytes kept from the end of the previous value.
    pub keep_suffix: u32,
    /// What goes between.
    pub insert: Bytes,
}

/// The cuts of one line, in the order of their positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// See [`Cut`].
    pub cuts: Vec<Cut>,
}

/// A delta does not fit the decoder's state (a stream whose start was lost).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a compact update does not fit the previous one: {0}")]
pub struct DeltaError(&'static str);

#[derive(Deserialize)]
struct Update<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(rename = "assistantMessageEvent", borrow, default)]
    event: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    partial: Option<&'a serde_json::value::RawValue>,
}

/// Byte range of `inner` inside `outer` (it borrows from it).
fn span_of(outer: &str, inner: &str) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// The byte ranges of the repeated values of a `message_update` line, by slot; empty for any
/// other line (or one that is not JSON).
pub fn repeated_values(line: &[u8]) -> Vec<(u8, Range<usize>)> {
    let Ok(text) = std::str::from_utf8(line) else { return Vec::new() };
    let Ok(update) = serde_json::from_str::<Update>(text) else { return Vec::new() };
    if update.kind != "message_update" {
        return Vec::new();
    }
    let mut spans = Vec::with_capacity(SLOTS);
    if let Some(event) = update.event {
        if let Ok(Event { partial: Some(p) }) = serde_json::from_str::<Event>(event.get()) {
            spans.push((0, span_of(text, p.get())));
        }
    }
    if let Some(m) = update.message {
        spans.push((1, span_of(text, m.get())));
    }
    spans.sort_by_key(|(_, r)| r.start);
    spans
}

/// Bytes compared at once (by `memcmp`) before the byte-wise search for the first difference:
/// pi's updates share kilobytes at each end, so this is most of the encoder's time.
const BLOCK: usize = 256;

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    i + a[i..n].iter().zip(&b[i..n]).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut k = 0;
    while k + BLOCK <= n && a[n - k - BLOCK..n - k] == b[n - k - BLOCK..n - k] {
        k += BLOCK;
    }
    k + a[..n - k].iter().rev().zip(b[..n - k].iter().rev()).take_while(|(x, y)| x == y).count()
}

/// The agent's side.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    slots: Slots,
}

impl Encoder {
    /// The previous value of each slot (what a new stream must start from).
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// A line as it crosses the link: unchanged (`None`) unless it is a streaming update,
    /// then its skeleton and delta.
    pub fn encode(&mut self, line: &Bytes) -> Option<(Bytes, Delta)> {
        let spans = repeated_values(line);
        if spans.is_empty() {
            return None;
        }
        let mut skeleton = BytesMut::with_capacity(line.len() - spans.iter().map(|(_, r)| r.len()).sum::<usize>());
        let mut cuts = Vec::with_capacity(spans.len());
        let mut copied = 0;
        let mut previous_value: Option<Range<usize>> = None;
        for (slot, range) in spans {
            skeleton.extend_from_slice(&line[copied..range.start]);
            copied = range.end;
            let value = line.slice(range.clone());
            let at = skeleton.len() as u32;
            let same = previous_value.as_ref().is_some_and(|p| line[p.clone()] == value[..]);
            let cut = if same {
                Cut { at, slot, same_as_previous_cut: true, keep_prefix: 0, keep_suffix: 0, insert: Bytes::new() }
            } else {
                let prev = self.slots[slot as usize].as_deref().unwrap_or_default();
                let keep_prefix = common_prefix(prev, &value);
                let keep_suffix = common_suffix(&prev[keep_prefix..], &value[keep_prefix..]);
                let insert = value.slice(keep_prefix..value.len() - keep_suffix);
                Cut {
                    at,
                    slot,
                    same_as_previous_cut: false,
                    keep_prefix: keep_prefix as u32,
                    keep_suffix: keep_suffix as u32,
                    insert,
                }
            };
            self.slots[slot as usize] = Some(value);
            previous_value = Some(range);
            cuts.push(cut);
        }
        skeleton.extend_from_slice(&line[copied..]);
        Some((skeleton.freeze(), Delta { cuts }))
    }
}

/// The longest line a delta may decode to: the agent's cap on a pi line
/// (`piface_agent::child::MAX_LINE`). Cuts are checked against it before anything is built, so
/// a delta whose cuts repeat a large value thousands of times is an error, not gigabytes.
pub const MAX_LINE_LEN: usize = 64 * 1024 * 1024;

/// The value of `cut` given the slots before it and the value of the cut before it (checked
/// by [`value_len`]).
fn value_of(slots: &Slots, cut: &Cut, last: Option<&Bytes>) -> Bytes {
    match last {
        Some(last) if cut.same_as_previous_cut => last.clone(),
        _ => {
            let prev = slots[cut.slot as usize].as_deref().unwrap_or_default();
            let (p, s) = (cut.keep_prefix as usize, cut.keep_suffix as usize);
            let mut v = BytesMut::with_capacity(p + cut.insert.len() + s);
            v.extend_from_slice(&prev[..p]);
            v.extend_from_slice(&cut.insert);
            v.extend_from_slice(&prev[prev.len() - s..]);
            v.freeze()
        }
    }
}

/// The values of `delta`'s cuts, in order; `slots` move to the state after the line (and are
/// left as they were on an error). The values together may hold at most `budget` bytes, which
/// is checked, with every cut, before anything is built.
fn values(slots: &mut Slots, delta: &Delta, budget: usize) -> Result<Vec<Bytes>, DeltaError> {
    // First the lengths alone: a value's length depends only on the lengths before it.
    let mut lens: [usize; SLOTS] = std::array::from_fn(|i| slots[i].as_ref().map_or(0, Bytes::len));
    let mut last = None;
    let mut total = 0usize;
    for cut in &delta.cuts {
        let len = value_len(&lens, cut, last)?;
        total = total
            .checked_add(len)
            .filter(|t| *t <= budget)
            .ok_or(DeltaError("decodes to more than a line may hold"))?;
        lens[cut.slot as usize] = len;
        last = Some(len);
    }
    let mut next = slots.clone();
    let mut values: Vec<Bytes> = Vec::with_capacity(delta.cuts.len());
    for cut in &delta.cuts {
        // Checked above, against the same states in the same order.
        let v = value_of(&next, cut, values.last());
        next[cut.slot as usize] = Some(v.clone());
        values.push(v);
    }
    *slots = next;
    Ok(values)
}

/// The length of `cut`'s value when the slots' values have lengths `lens` and the cut before
/// it has length `last`; an error when the cut does not fit them. Nothing is allocated.
fn value_len(lens: &[usize; SLOTS], cut: &Cut, last: Option<usize>) -> Result<usize, DeltaError> {
    if cut.slot as usize >= SLOTS {
        return Err(DeltaError("unknown slot"));
    }
    if cut.same_as_previous_cut {
        return last.ok_or(DeltaError("no earlier cut to repeat"));
    }
    let prev = lens[cut.slot as usize];
    match (cut.keep_prefix as usize).checked_add(cut.keep_suffix as usize) {
        Some(keep) if keep <= prev => Ok(keep + cut.insert.len()),
        _ => Err(DeltaError("keeps more than the previous value has")),
    }
}

/// Moves `slots` past a line with `delta`, without building the line (a journal dropping its
/// oldest update).
pub fn advance(slots: &mut Slots, delta: &Delta) -> Result<(), DeltaError> {
    values(slots, delta, MAX_LINE_LEN).map(|_| ())
}

/// The coordinator's side.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    slots: Slots,
}

impl Decoder {
    /// Starts from the encoder's state at the beginning of a stream.
    pub fn reset(&mut self, slots: Slots) {
        self.slots = slots;
    }

    /// The line pi wrote. A delta that does not fit the previous values, or whose line would
    /// be over [`MAX_LINE_LEN`], is an error (the decoder's state is then unchanged), found
    /// before the line is built.
    pub fn decode(&mut self, skeleton: &[u8], delta: &Delta) -> Result<Bytes, DeltaError> {
        let budget = MAX_LINE_LEN.checked_sub(skeleton.len()).ok_or(DeltaError("skeleton longer than a line"))?;
        let mut at = 0;
        for cut in &delta.cuts {
            let cut_at = cut.at as usize;
            if cut_at < at || cut_at > skeleton.len() {
                return Err(DeltaError("cut position outside the skeleton"));
            }
            at = cut_at;
        }
        let mut slots = self.slots.clone();
        let values = values(&mut slots, delta, budget)?;
        let total = skeleton.len() + values.iter().map(Bytes::len).sum::<usize>();
        let mut line = BytesMut::with_capacity(total);
        let mut copied = 0;
        for (cut, value) in delta.cuts.iter().zip(&values) {
            let at = cut.at as usize;
            line.extend_from_slice(&skeleton[copied..at]);
            line.extend_from_slice(value);
            copied = at;
        }
        line.extend_from_slice(&skeleton[copied..]);
        self.slots = slots;
        Ok(line.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(partial: &str, message: &str, delta: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","contentIndex":0,"delta":{delta},"partial":{partial}}},"message":{message}}}"#
        ))
    }

    fn msg(text: &str, output: u64) -> String {
        format!(
            r#"{{"role":"assistant","content":[{{"type":"text","text":{}}}],"usage":{{"output":{output},"cost":{{"total":1.5e-7}}}},"stopReason":"stop"}}"#,
            serde_json::to_string(text).unwrap()
        )
    }

    #[test]
    fn updates_shrink_to_their_change_and_decode_to_the_same_bytes() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        let mut text = String::new();
        let mut full = 0;
        let mut compact = 0;
        for i in 0..500u64 {
            text.push_str(&format!("t{i} \"é\" "));
            let m = msg(&text, i);
            let line = update(&m, &m, &format!("\"t{i} \""));
            let (skeleton, delta) = enc.encode(&line).expect("a streaming update");
            assert_eq!(dec.decode(&skeleton, &delta).unwrap(), line, "byte for byte at {i}");
            full += line.len();
            compact += skeleton.len() + delta.cuts.iter().map(|c| c.insert.len() + 16).sum::<usize>();
        }
        assert!(compact * 20 < full, "{compact} vs {full}");
    }

    #[test]
    fn other_lines_pass_and_odd_updates_still_round_trip() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        assert!(enc.encode(&Bytes::from_static(br#"{"type":"agent_end","messages":[]}"#)).is_none());
        assert!(enc.encode(&Bytes::from_static(b"not json")).is_none());
        // message differs from partial; message before partial; missing partial; shrinking.
        for line in [
            update(&msg("ab", 1), &msg("abc", 1), "\"x\""),
            Bytes::from(format!(
                r#"{{"type":"message_update","message":{},"assistantMessageEvent":{{"partial":{}}}}}"#,
                msg("a", 2),
                msg("zz", 3)
            )),
            Bytes::from(format!(r#"{{"type":"message_update","message":{}}}"#, msg("q", 4))),
            update(&msg("", 0), &msg("", 0), "\"\""),
            update(r#"{"k":[1,2.50,"\u00e9"]}"#, r#"{"k":[1,2.50,"\u00e9"]}"#, "null"),
        ] {
            let (skeleton, delta) = enc.encode(&line).unwrap();
            assert_eq!(dec.decode(&skeleton, &delta).unwrap(), line);
        }
    }

    #[test]
    fn common_ends_match_a_plain_scan() {
        let plain_prefix = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let plain_suffix = |a: &[u8], b: &[u8]| a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
        let base: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cut in [0, 1, 255, 256, 257, 1000, 1999, 2000] {
            for len in [0, 1, 300, 2000] {
                let mut other = base[..cut].to_vec();
                other.extend_from_slice(b"!!");
                other.extend_from_slice(&base[cut.min(len)..len.max(cut.min(len))]);
                let (a, b) = (&base[..len], &other[..]);
                assert_eq!(common_prefix(a, b), plain_prefix(a, b), "prefix {cut} {len}");
                assert_eq!(common_suffix(a, b), plain_suffix(a, b), "suffix {cut} {len}");
                assert_eq!(common_prefix(a, a), a.len());
                assert_eq!(common_suffix(b, b), b.len());
            }
        }
    }

    #[test]
    fn cuts_that_add_up_to_gigabytes_are_refused_before_anything_is_built() {
        let mib = Bytes::from(vec![b'x'; 1 << 20]);
        let keep_all = |slot| Cut {
            at: 0,
            slot,
            same_as_previous_cut: false,
            keep_prefix: 1 << 20,
            keep_suffix: 0,
            insert: Bytes::new(),
        };
        let repeat = Cut { same_as_previous_cut: true, ..keep_all(1) };
        // 4096 copies of a 1 MiB value: 4 GiB, repeated by reference or rebuilt cut after cut.
        let by_reference = Delta { cuts: std::iter::once(keep_all(0)).chain(vec![repeat.clone(); 4095]).collect() };
        let rebuilt = Delta { cuts: (0..4096u32).map(|i| keep_all((i % 2) as u8)).collect() };
        let huge_keep = Delta { cuts: vec![Cut { keep_prefix: u32::MAX, keep_suffix: u32::MAX, ..keep_all(0) }] };
        for delta in [by_reference, rebuilt, huge_keep] {
            let mut dec = Decoder::default();
            dec.reset([Some(mib.clone()), Some(mib.clone())]);
            let peak = crate::alloc_count::Peak::start();
            assert!(dec.decode(b"{}", &delta).is_err());
            let mut slots = [Some(mib.clone()), Some(mib.clone())];
            assert!(advance(&mut slots, &delta).is_err());
            assert!(peak.bytes() < 64 << 10, "allocated {} bytes", peak.bytes());
            assert_eq!(slots, [Some(mib.clone()), Some(mib.clone())], "state unchanged");
        }
        // Up to the limit it decodes.
        let mut dec = Decoder::default();
        dec.reset([Some(mib.clone()), None]);
        let delta = Delta { cuts: std::iter::once(keep_all(0)).chain(vec![repeat; 63]).collect() };
        assert_eq!(dec.decode(b"", &delta).unwrap().len(), MAX_LINE_LEN);
        dec.reset([Some(mib.clone()), None]);
        assert!(dec.decode(b"!", &delta).is_err(), "one byte over");
    }

    #[test]
    fn a_decoder_out_of_step_says_so_and_a_reset_puts_it_back() {
        let mut enc = Encoder::default();
        let first = update(&msg("hello there", 1), &msg("hello there", 1), "\"h\"");
        enc.encode(&first).unwrap();
        let second = update(&msg("hello there!", 2), &msg("hello there!", 2), "\"!\"");
        let state = enc.slots().clone();
        let (skeleton, delta) = enc.encode(&second).unwrap();
        let mut fresh = Decoder::default();
        assert!(fresh.decode(&skeleton, &delta).is_err(), "keeps more than it has");
        fresh.reset(state);
        assert_eq!(fresh.decode(&skeleton, &delta).unwrap(), second);
    }
}
