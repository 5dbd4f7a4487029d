//! Fuzz targets for every decoder that reads what another party wrote: the frame codec, the
//! delta decoder, compact patches, the pi event envelope, the line splitter, the session-file
//! reader, join tokens, agents' CSRs, browsers' WebSocket messages and workspace files.
//!
//! Each target is a plain function of bytes that panics when something is wrong: a panic in
//! the code under test, a broken invariant (a round trip that differs, a model that
//! disagrees), or an allocation larger than the input can justify ([`alloc`]). The engines
//! live in `tests/fuzz.rs`: under `cargo test` each target runs for a bounded time on its
//! committed corpus and on random inputs; `scripts/fuzz.sh` runs them coverage-guided
//! (libFuzzer through cargo-bolero) for as long as asked.
//!
//! What it is not: a test of behaviour that needs a network or a process; those are the
//! crates' own tests.

use std::io::Cursor;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use piface_agent::lines::{Line, LineSplitter};
use piface_coordinator::frames::compact::{self, Compactor, Op};
use piface_coordinator::pki::ClusterCa;
use piface_shared::codec::{decode_frame_limited, encode_frame, CodecError, GROW_STEP, MAX_FRAME_LEN};
use piface_shared::delta::{self, Cut, Decoder, Delta, Encoder, MAX_LINE_LEN};
use piface_shared::protocol::{EnrollReply, EnrollRequest, FromAgent, StreamHeader, ToAgent};
use serde_json::Value;

pub mod alloc;

// See Cargo.toml: the libFuzzer runtime for the lib's own test binary in a fuzzing build.
#[cfg(fuzzing)]
use bolero as _;

/// Reads structured values off the fuzzer's bytes; past the end everything is zero or empty,
/// so every input is a valid program.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A length-prefixed (one byte) piece.
    fn piece(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        self.bytes(n)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// -------------------------------------------------------------------------------------------
// shared: codec
// -------------------------------------------------------------------------------------------

/// Frames of each message type, cut into pieces as a stream delivers them, under a stream
/// limit: no panic; a buffer that holds about what arrived; a decoded message encodes and
/// decodes back to the same bytes; nothing allocated that the input does not hold.
pub fn codec_frames(data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte();
    let chunk = input.byte() as usize;
    let max = [MAX_FRAME_LEN, 4096, 64, 0][(mode >> 4) as usize % 4];
    let rest = input.0;
    let largest = alloc::Largest::start();
    let mut buf = BytesMut::new();
    let pieces: Vec<&[u8]> = if chunk == 0 { vec![rest] } else { rest.chunks(chunk).collect() };
    'stream: for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let step = match mode % 5 {
                0 => next::<FromAgent>(&mut buf, max),
                1 => next::<ToAgent>(&mut buf, max),
                2 => next::<StreamHeader>(&mut buf, max),
                3 => next::<EnrollRequest>(&mut buf, max),
                _ => next::<EnrollReply>(&mut buf, max),
            };
            assert!(buf.capacity() <= 4 * buf.len() + 4 * GROW_STEP, "{} held for {}", buf.capacity(), buf.len());
            match step {
                Step::Again => continue,
                Step::More => break,
                Step::Fatal => break 'stream,
            }
        }
    }
    // Room for the next bytes (bytes' growth may double it), then what decoded messages hold.
    largest.check(4 * GROW_STEP + 512 * data.len());
}

enum Step {
    Again,
    More,
    Fatal,
}

fn next<T: serde::Serialize + serde::de::DeserializeOwned>(buf: &mut BytesMut, max: usize) -> Step {
    match decode_frame_limited::<T>(buf, max) {
        Ok(Some(msg)) => {
            let mut once = BytesMut::new();
            encode_frame(&msg, &mut once).expect("a decoded message encodes");
            let again: T = decode_frame_limited(&mut once.clone(), MAX_FRAME_LEN).unwrap().unwrap();
            let mut twice = BytesMut::new();
            encode_frame(&again, &mut twice).unwrap();
            assert_eq!(once, twice, "decode and encode are inverse");
            Step::Again
        }
        Ok(None) => Step::More,
        Err(CodecError::Undecodable { .. }) => Step::Again,
        Err(CodecError::FrameTooLarge { len }) => {
            assert!(len > max.min(MAX_FRAME_LEN));
            Step::Fatal
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

// -------------------------------------------------------------------------------------------
// shared: delta
// -------------------------------------------------------------------------------------------

/// Hostile deltas against a decoder: no panic; a line within the limit and as long as its
/// parts; `advance` agrees; an error allocates nothing the input does not hold.
pub fn delta_decode(data: &[u8]) {
    let mut input = Input(data);
    let mut slots: delta::Slots = [None, None];
    for slot in &mut slots {
        if input.byte() & 1 == 1 {
            *slot = Some(Bytes::copy_from_slice(input.piece()));
        }
    }
    let mut decoder = Decoder::default();
    decoder.reset(slots.clone());
    while !input.is_empty() {
        let skeleton = input.piece();
        let count = input.byte() % 16;
        let cuts: Vec<Cut> = (0..count)
            .map(|_| {
                let flags = input.byte();
                // Mostly small numbers, so that cuts fit now and then; sometimes anything.
                let mut number = |wide: bool| if wide { input.u32() } else { u32::from(input.byte()) };
                Cut {
                    at: number(flags & 1 != 0),
                    slot: (flags >> 1) % 3,
                    same_as_previous_cut: flags & 8 != 0,
                    keep_prefix: number(flags & 16 != 0),
                    keep_suffix: number(flags & 32 != 0),
                    insert: Bytes::copy_from_slice(input.piece()),
                }
            })
            .collect();
        let delta = Delta { cuts };
        let largest = alloc::Largest::start();
        match decoder.decode(skeleton, &delta) {
            Ok(line) => {
                assert!(line.len() <= MAX_LINE_LEN);
                assert!(line.len() >= skeleton.len());
                largest.check(64 * 1024 + 2 * line.len());
                delta::advance(&mut slots, &delta).expect("what decodes also advances");
            }
            Err(_) => {
                largest.check(64 * 1024);
                // The decoder kept its state; `advance` may still accept a delta whose only
                // fault is a cut position, and then the two part ways: start both again.
                decoder.reset(slots.clone());
            }
        }
    }
}

/// A pi-like stream of streaming updates (text, thinking and tool arguments growing, usage
/// changing, new messages, other lines, raw bytes) through the encoder and the decoder: every
/// line comes back byte for byte, `advance` follows the encoder, and a compact client that
/// applies the patches holds every update's message.
pub fn update_stream(data: &[u8]) {
    let mut input = Input(data);
    let mut encoder = Encoder::default();
    let mut decoder = Decoder::default();
    let mut journal: delta::Slots = [None, None];
    let mut compactor = Compactor::default();
    let mut client: Option<Value> = None;
    let mut blocks: Vec<(u8, String)> = vec![(0, String::new())];
    let mut output = 0u64;
    while !input.is_empty() {
        let op = input.byte();
        let text = String::from_utf8_lossy(input.piece()).into_owned();
        let line = match op % 8 {
            0..=3 => {
                if let Some(last) = blocks.last_mut() {
                    last.1.push_str(&text);
                }
                update_line(&blocks, output, &text, op & 0x80 != 0)
            }
            4 => {
                output += u64::from(op);
                update_line(&blocks, output, "", false)
            }
            5 => {
                blocks.push((op >> 4 & 3, String::new()));
                update_line(&blocks, output, "", false)
            }
            6 => {
                blocks = vec![(0, String::new())];
                Bytes::from_static(br#"{"type":"message_start","message":{"role":"assistant","content":[]}}"#)
            }
            _ => Bytes::from(text.into_bytes()),
        };
        // The link.
        match encoder.encode(&line) {
            Some((skeleton, delta)) => {
                assert_eq!(decoder.decode(&skeleton, &delta).expect("the decoder follows"), line);
                delta::advance(&mut journal, &delta).expect("the journal follows");
                assert_eq!(&journal, encoder.slots());
            }
            None => assert!(delta::repeated_values(&line).is_empty()),
        }
        // A compact client.
        let kind = piface_shared::envelope::inspect(&line).map(|m| m.kind).unwrap_or_default();
        follow_compact(&mut compactor, &mut client, &kind, &line);
    }
}

/// An update line as pi writes it: `assistantMessageEvent.partial` and `message` the same
/// bytes (or, with `odd`, `message` first and different).
fn update_line(blocks: &[(u8, String)], output: u64, delta: &str, odd: bool) -> Bytes {
    let parts: Vec<Value> = blocks
        .iter()
        .map(|(kind, s)| match kind {
            0 => serde_json::json!({"type": "text", "text": s}),
            1 => serde_json::json!({"type": "thinking", "thinking": s}),
            _ => serde_json::json!({"type": "toolCall", "id": "c1", "name": "bash", "arguments": {"partial": s}}),
        })
        .collect();
    let message = serde_json::json!({"role": "assistant", "content": parts, "usage": {"output": output}}).to_string();
    let delta = serde_json::to_string(delta).unwrap();
    if odd {
        Bytes::from(format!(
            r#"{{"type":"message_update","message":{message},"assistantMessageEvent":{{"type":"text_delta","partial":{{"x":1}}}}}}"#
        ))
    } else {
        Bytes::from(format!(
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","contentIndex":0,"delta":{delta},"partial":{message}}},"message":{message}}}"#
        ))
    }
}

/// What a compact client does with one line, checked: a compact frame patches the message the
/// client holds into this line's message.
fn follow_compact(compactor: &mut Compactor, client: &mut Option<Value>, kind: &str, line: &Bytes) {
    match compactor.push(kind, line) {
        Some(frame) => {
            let frame: Value = serde_json::from_slice(&frame).expect("a compact frame is JSON");
            assert!(frame.get("message").is_none(), "the message is cut out");
            let ops: Vec<Op> = frame["piface_patch"]
                .as_array()
                .expect("a patch")
                .iter()
                .map(|o| Op::from_json(o).expect("an op the client reads"))
                .collect();
            let base = client.as_mut().expect("a compact frame only after a whole update");
            compact::apply(base, &ops).expect("the patch applies");
            let full: Value = serde_json::from_slice(line).unwrap();
            assert_eq!(Some(&*base), full.get("message"), "the client holds pi's message");
        }
        None => {
            *client = (kind == "message_update")
                .then(|| serde_json::from_slice::<Value>(line).ok()?.get("message").cloned())
                .flatten();
        }
    }
}

// -------------------------------------------------------------------------------------------
// shared: compact
// -------------------------------------------------------------------------------------------

/// Arbitrary lines (split at `\n`) through a compactor as `message_update`s or as their own
/// type: no panic, and every compact frame patches the previous message into the line's.
pub fn compact_lines(data: &[u8]) {
    let mut compactor = Compactor::default();
    let mut client = None;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let line = Bytes::copy_from_slice(line);
        let kind = if i % 3 == 2 {
            piface_shared::envelope::inspect(&line).map(|m| m.kind).unwrap_or_default()
        } else {
            "message_update".to_string()
        };
        follow_compact(&mut compactor, &mut client, &kind, &line);
    }
}

/// Two JSON documents (the first line and the rest): `apply(a, diff(a, b)) == b`; and the
/// second read as `{"value": v, "ops": [...]}` applies or fails without a panic.
pub fn compact_apply(data: &[u8]) {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return };
    let (Ok(a), Ok(b)) = (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)) else { return };
    let ops = compact::diff(&a, &b);
    let mut patched = a.clone();
    compact::apply(&mut patched, &ops).expect("a diff applies");
    assert_eq!(patched, b);
    // Ops as a client reads them off the wire.
    let read: Vec<Op> = ops.iter().map(|op| Op::from_json(&op.to_json()).expect("an op reads back")).collect();
    assert_eq!(read, ops);
    if let (Some(value), Some(Value::Array(ops))) = (b.get("value"), b.get("ops")) {
        let ops: Result<Vec<Op>, String> = ops.iter().map(Op::from_json).collect();
        if let Ok(ops) = ops {
            let _ = compact::apply(&mut value.clone(), &ops);
        }
    }
}

// -------------------------------------------------------------------------------------------
// shared: envelope
// -------------------------------------------------------------------------------------------

/// `inspect` against serde_json's own reading of the line: what `inspect` accepts is one JSON
/// object, and the routing fields are its members.
pub fn envelope_inspect(data: &[u8]) {
    let largest = alloc::Largest::start();
    let got = piface_shared::envelope::inspect(data);
    largest.check(64 * 1024 + 2 * data.len());
    let Ok(meta) = got else { return };
    assert!(std::str::from_utf8(data).is_ok(), "inspect accepted a line that is not UTF-8");
    let value: Value = match serde_json::from_slice(data) {
        Ok(value) => value,
        // serde_json refuses a lone surrogate escape (`"\ud800"`) only when it builds a string,
        // and a number past f64 (`1E310`) only when it builds a number; browsers' JSON.parse
        // takes both, so a skipped one may pass (both found by this target). A lone surrogate
        // is reported in several words ("lone leading surrogate", "unexpected end of hex
        // escape" when a quote follows it): the line must parse once every surrogate escape is
        // replaced by a plain one, or then fail only for a number (a line may hold both: found
        // by this target in the long run).
        Err(e) if out_of_range(&e) => return,
        Err(e) => match serde_json::from_slice::<Value>(&without_surrogate_escapes(data)) {
            Ok(_) => return,
            Err(again) if out_of_range(&again) => return,
            Err(_) => panic!("inspect accepted what is not JSON: {e}"),
        },
    };
    let object = value.as_object().expect("inspect accepted what is not an object");
    assert_eq!(meta.kind, object.get("type").and_then(Value::as_str).unwrap_or_default());
    assert_eq!(meta.id.as_deref(), object.get("id").and_then(Value::as_str));
    assert_eq!(meta.command.as_deref(), object.get("command").and_then(Value::as_str));
    assert_eq!(meta.success, object.get("success").and_then(Value::as_bool));
}

fn out_of_range(e: &serde_json::Error) -> bool {
    e.to_string().contains("number out of range")
}

/// `data` with every `\uXXXX` escape of a UTF-16 surrogate (D800–DFFF) replaced by `\u0041`,
/// same length: valid JSON stays valid, and JSON that was only invalid for a lone surrogate
/// becomes valid.
fn without_surrogate_escapes(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut i = 0;
    while i + 6 <= out.len() {
        let escape = &out[i..i + 6];
        let surrogate = escape[0] == b'\\'
            && escape[1] == b'u'
            && matches!(escape[2], b'd' | b'D')
            && matches!(escape[3], b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F')
            && escape[4..].iter().all(u8::is_ascii_hexdigit);
        if surrogate {
            out[i + 2..i + 6].copy_from_slice(b"0041");
            i += 6;
        } else {
            // An escaped backslash is two bytes; skipping both keeps `\\u…` (a backslash and
            // a `u`) from being read as an escape.
            i += if out[i] == b'\\' { 2 } else { 1 };
        }
    }
    out
}

// -------------------------------------------------------------------------------------------
// agent: line splitter and session files
// -------------------------------------------------------------------------------------------

/// The splitter on bytes arriving in pieces, against a model (split at `\n`; a line over the
/// limit is one `TooLong`): the same lines, and a buffer that never holds more than the limit
/// and one piece.
pub fn line_splitter(data: &[u8]) {
    let mut input = Input(data);
    let max = input.byte() as usize % 64;
    let chunk = input.byte() as usize % 32 + 1;
    let bytes = input.0;
    let mut splitter = LineSplitter::new(max);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(line) = splitter.next(&mut buf) {
            got.push(line);
        }
        assert!(buf.len() <= max + chunk, "{} bytes held", buf.len());
    }
    while let Some(line) = splitter.finish(&mut buf) {
        got.push(line);
    }
    let mut expected = Vec::new();
    let mut segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    for s in segments {
        expected.push(if s.len() > max { Line::TooLong } else { Line::Line(Bytes::copy_from_slice(s)) });
    }
    if last.len() > max {
        expected.push(Line::TooLong);
    } else if !last.is_empty() {
        expected.push(Line::Line(Bytes::copy_from_slice(last)));
    }
    assert_eq!(got, expected);
}

/// A session file of any bytes: the history is one JSON array of as many messages as the
/// summary says, the fork points are user messages; memory stays near the file's size.
pub fn history_reader(data: &[u8]) {
    use piface_agent::history::{fork_messages_from, stream_history_from};
    let largest = alloc::Largest::start();
    let mut out = Vec::new();
    let summary = stream_history_from(Cursor::new(data), &mut |piece| {
        assert!(!piece.is_empty());
        out.extend_from_slice(piece);
        Ok(())
    });
    let fork = fork_messages_from(Cursor::new(data));
    largest.check(2 * 1024 * 1024 + 4 * data.len());
    match summary {
        Ok(summary) => {
            // Read as raw values: a message is copied as pi wrote it, and a lone surrogate escape
            // (`"\ud800"`, which browsers' JSON.parse takes) is JSON that serde_json's `Value`
            // refuses (found by this target; not a fault of the reader).
            let messages: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_slice(&out).expect("the history is a JSON array");
            assert_eq!(messages.len(), summary.messages);
            let fork = fork.expect("a file that streams also lists its fork points");
            assert!(fork.len() <= messages.len());
        }
        Err(_) => assert!(fork.is_err(), "both read the file the same way"),
    }
}

// -------------------------------------------------------------------------------------------
// coordinator: join tokens and CSRs
// -------------------------------------------------------------------------------------------

struct Cluster {
    _dir: std::path::PathBuf,
    ca: ClusterCa,
    token: String,
    now: SystemTime,
    csr_der: Vec<u8>,
}

/// One cluster CA per process (made in a fresh temporary directory), a genuine token and a
/// genuine CSR to mutate.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("piface-fuzz-{}", std::process::id()));
        let ca = ClusterCa::load_or_create(&dir.join("cluster")).expect("a cluster CA");
        let now = SystemTime::now();
        let token = ca.create_token(Duration::from_secs(3600), now);
        let key = rcgen::KeyPair::generate().unwrap();
        let csr_der = rcgen::CertificateParams::default().serialize_request(&key).unwrap().der().to_vec();
        Cluster { _dir: dir, ca, token, now, csr_der }
    })
}

/// Applies edits read from `input` to `bytes`: replace, insert or delete a byte.
fn edit(bytes: &mut Vec<u8>, input: &mut Input) {
    let count = input.byte() % 8;
    for _ in 0..count {
        let (op, at, b) = (input.byte(), input.u32() as usize, input.byte());
        let at = if bytes.is_empty() { 0 } else { at % (bytes.len() + 1) };
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = b,
            1 => bytes.insert(at, b),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
}

/// Join tokens: any text, or a genuine token with a few bytes changed. Only the genuine token
/// verifies (its signature's hex digits may change case, nothing else).
pub fn join_token(data: &[u8]) {
    let cluster = cluster();
    let mut input = Input(data);
    let text = if input.byte() & 1 == 0 {
        String::from_utf8_lossy(input.0).into_owned()
    } else {
        let mut bytes = cluster.token.clone().into_bytes();
        edit(&mut bytes, &mut input);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let _ = piface_link::tls::JoinToken::parse(&text);
    if cluster.ca.verify_token(&text, cluster.now).is_ok() {
        let (body, mac) = text.trim().rsplit_once('.').unwrap();
        let (real_body, real_mac) = cluster.token.rsplit_once('.').unwrap();
        assert_eq!(body, real_body, "a changed token verified");
        assert!(mac.eq_ignore_ascii_case(real_mac), "a changed signature verified");
    }
}

/// Agents' CSRs: any text as PEM, any bytes as the DER inside a PEM, or a genuine CSR with a
/// few bytes changed. A CSR that is signed gives a client certificate of the cluster CA for
/// the agent's name, whatever the CSR asked for.
pub fn agent_csr(data: &[u8]) {
    use base64::Engine;
    let cluster = cluster();
    let mut input = Input(data);
    let pem = match input.byte() % 3 {
        0 => String::from_utf8_lossy(input.0).into_owned(),
        mode => {
            let der = if mode == 1 {
                input.0.to_vec()
            } else {
                let mut der = cluster.csr_der.clone();
                edit(&mut der, &mut input);
                der
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n")
        }
    };
    let Ok(cert) = cluster.ca.sign_agent_csr(&pem, "agent-1") else { return };
    let der = rustls_pem_der(&cert);
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("a certificate");
    let cn = parsed.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
    assert_eq!(cn, Some("agent-1"));
    let (_, ca) = x509_parser::parse_x509_certificate(cluster.ca.ca_der().as_ref()).unwrap();
    assert_eq!(parsed.issuer(), ca.subject());
}

fn rustls_pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("PEM")
}

// -------------------------------------------------------------------------------------------
// coordinator: WebSocket client messages; agent: workspace files
// -------------------------------------------------------------------------------------------

/// A browser's text message: validated or refused without a panic; what is accepted forwards
/// as one line, never with a reserved id, and a prompt's upload ids are taken out.
pub fn ws_client_message(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(m) = piface_coordinator::ws::parse_client_text(&text) else { return };
    if let Some(Value::String(id)) = m.msg.get("id") {
        assert!(!id.starts_with("__piface_") || id.starts_with("__piface_cmd_"), "reserved id {id:?} accepted");
    }
    if matches!(m.kind.as_str(), "prompt" | "steer" | "follow_up") {
        assert!(!m.msg.contains_key("piface_upload_ids"));
        assert!(m.uploads.iter().all(|u| !u.trim().is_empty()));
    } else {
        assert!(m.uploads.is_empty());
    }
    let line = serde_json::to_vec(&m.msg).expect("forwarded as JSON");
    assert!(!line.contains(&b'\n'), "one line");
}

/// A workspace file: parsed and validated or refused without a panic; an accepted config
/// survives the writer (`PUT`'s TOML) unchanged.
pub fn workspace_toml(data: &[u8]) {
    use piface_agent::tools::workspace::WorkspaceConfig;
    // What the agent does with a workspace file's text.
    let parse =
        |text: &str| toml::from_str::<WorkspaceConfig>(text).map_err(|e| e.to_string())?.normalize_and_validate();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = parse(text) else { return };
    let _ = config.to_json();
    let Ok(written) = toml::to_string_pretty(&config) else { return };
    let again = parse(&written).expect("what the writer writes reads back");
    assert_eq!(again, config);
}
