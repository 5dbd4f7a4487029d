//! Golden bytes of the agent ⇄ coordinator protocol: one fixed value of every variant of
//! `ToAgent`, `FromAgent`, `StreamHeader`, the enrollment messages and the enums they carry
//! (`ToolCall`, `SpawnError`, `ModelState`), each encoded as a frame by the real codec,
//! compared with the hex committed in `golden/v<PROTOCOL_VERSION>/<Type>/<Variant>.hex`, then
//! decoded back and compared with the value. A reordered field or variant, a changed type, a
//! new or removed variant all change the bytes.
//!
//! The rule (ARCHITECTURE.md, "Wire protocol"): the goldens of a protocol version never
//! change. Any change to the bytes of an existing variant (a field added, removed, reordered
//! or retyped, a variant moved), and a removed variant, needs a new `PROTOCOL_VERSION`
//! (shared/src/protocol.rs); then `PIFACE_BLESS=1 cargo test -p piface-shared --test golden`
//! writes the new version's directory. A variant added at the end of its enum changes no other
//! bytes and older peers skip what they cannot decode, so it joins the current version: blessing
//! adds its golden, and only that. Unblessed, a new variant fails too, so it is always a
//! decision. Older versions' directories stay as the record of what older peers speak.
//!
//! What it is not: a test of meaning (the codec's and the links' tests do that), nor of
//! compatibility across versions (peers of different versions refuse each other's hello).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use piface_shared::codec::{decode_frame, encode_frame};
use piface_shared::delta::{Cut, Delta};
use piface_shared::protocol::*;
use serde::{de::DeserializeOwned, Serialize};

/// `fn $name() -> Vec<(variant name, value)>` with one value per listed variant of `$ty`, and a
/// `match` over the same variants without a wildcard: a variant added to the enum does not
/// compile here until it has a value (and so a golden file).
macro_rules! every_variant {
    ($name:ident: $ty:ident { $($variant:ident => $value:expr),* $(,)? }) => {
        fn $name() -> Vec<(&'static str, $ty)> {
            fn variant(m: &$ty) -> &'static str {
                match m {
                    $($ty::$variant { .. } => stringify!($variant),)*
                }
            }
            let samples = vec![$((stringify!($variant), $value)),*];
            for (name, value) in &samples {
                let ty = stringify!($ty);
                assert_eq!(variant(value), *name, "the value listed under {ty}::{name} is another variant");
            }
            samples
        }
    };
}

fn gpu() -> GpuInfo {
    GpuInfo {
        index: 1,
        name: "NVIDIA GeForce GTX 1080 Ti".into(),
        uuid: "GPU-5f1e2d3c".into(),
        memory_mib: 11264,
        memory_free_mib: 10240,
        compute_capability: Some("6.1".into()),
        pci_bus_id: "00000000:65:00.0".into(),
    }
}

/// A hello with every field set (the software version is fixed, not the crate's).
fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        software_version: "0.1.0".into(),
        hostname: "box-1".into(),
        os: "linux-x86_64".into(),
        pi_version: Some("0.73.1".into()),
        gpus: vec![gpu()],
        speech: Some(Box::new(ModelService {
            model: "nvidia/parakeet-tdt-0.6b-v3".into(),
            device: "cuda:1 (NVIDIA GeForce GTX 1080 Ti)".into(),
            state: ModelState::Downloading {
                file: "parakeet-tdt-0.6b-v3.nemo".into(),
                done_bytes: 1 << 30,
                total_bytes: 5 << 29,
                bytes_per_s: 50 << 20,
                eta_s: Some(20),
            },
            busy: 2,
            done: 9,
        })),
        tts: Some(Box::new(ModelService {
            model: "tts_models/en/ljspeech/vits".into(),
            device: "cpu".into(),
            state: ModelState::Ready,
            busy: 0,
            done: 3,
        })),
    }
}

fn spec() -> SpawnSpec {
    SpawnSpec {
        cwd: "/home/u/proj".into(),
        provider: Some("anthropic".into()),
        model: Some("claude-sonnet".into()),
        thinking: Some("high".into()),
        session_file: Some("/home/u/.pi/agent/sessions/s.jsonl".into()),
        no_session: false,
        use_direnv: true,
        project_dir: Some("/home/u/proj".into()),
    }
}

/// A sampled request's trace context, with a vendor entry.
fn trace() -> TraceContext {
    TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: "congo=t61rcWkgMzE".into(),
    }
}

/// A streaming update as it crosses the QUIC link (skeleton and delta), and a plain line.
fn events() -> Vec<PiEvent> {
    vec![
        PiEvent {
            seq: 41,
            meta: EventMeta { kind: "message_update".into(), id: None, command: None, success: None },
            line: Bytes::from_static(br#"{"type":"message_update","assistantMessageEvent":{"partial":},"message":}"#),
            delta: Some(Delta {
                cuts: vec![
                    Cut {
                        at: 61,
                        slot: 0,
                        same_as_previous_cut: false,
                        keep_prefix: 30,
                        keep_suffix: 2,
                        insert: Bytes::from_static(b" world"),
                    },
                    Cut {
                        at: 73,
                        slot: 1,
                        same_as_previous_cut: true,
                        keep_prefix: 0,
                        keep_suffix: 0,
                        insert: Bytes::new(),
                    },
                ],
            }),
        },
        PiEvent {
            seq: 42,
            meta: EventMeta {
                kind: "response".into(),
                id: Some("__piface_internal_3".into()),
                command: Some("get_state".into()),
                success: Some(true),
            },
            line: Bytes::from_static(br#"{"type":"response","id":"__piface_internal_3","success":true}"#),
            delta: None,
        },
    ]
}

every_variant!(to_agent: ToAgent {
    Hello => ToAgent::Hello(Hello { gpus: Vec::new(), speech: None, tts: None, pi_version: None, ..hello() }),
    Spawn => ToAgent::Spawn { req: 1, session: "s-1".into(), spec: spec(), trace: Some(trace()) },
    Input => ToAgent::Input { session: "s-1".into(), line: Bytes::from_static(br#"{"type":"prompt","message":"hi"}"#) },
    Kill => ToAgent::Kill { req: 2, session: "s-1".into(), trace: None },
    Shell => ToAgent::Shell { req: 3, session: "s-1".into(), command: "ls -la".into(), trace: None },
    ProbeModels => ToAgent::ProbeModels { req: 4, trace: None },
    ReadHistory => ToAgent::ReadHistory { req: 5, path: "/h/s.jsonl".into(), trace: None },
    ForkMessages => ToAgent::ForkMessages { req: 6, path: "/h/f.jsonl".into(), trace: None },
    ListSessions => ToAgent::ListSessions { req: 7, trace: None },
    Tool => ToAgent::Tool {
        req: 8,
        call: ToolCall::FsList { path: "/home/u".into() },
        trace: Some(TraceContext { tracestate: String::new(), ..trace() }),
    },
    ReadFile => ToAgent::ReadFile { req: 9, path: "/home/u/a.png".into(), max: 1 << 20, trace: None },
    UploadBegin => ToAgent::UploadBegin { req: 10, path: "/d/uploads/x.bin".into(), max: 10 << 20, trace: None },
    UploadChunk => ToAgent::UploadChunk { req: 10, data: Bytes::from_static(&[0, 1, 2, 0xfe, 0xff]) },
    UploadEnd => ToAgent::UploadEnd { req: 10, ok: true },
    PtyOpen => ToAgent::PtyOpen {
        session: "s-1".into(),
        cwd: "/home/u/proj/sub".into(),
        project_dir: Some("/home/u/proj".into()),
        cols: 120,
        rows: 40,
    },
    PtyInput => ToAgent::PtyInput { session: "s-1".into(), data: Bytes::from_static(b"ls\r") },
    PtyResize => ToAgent::PtyResize { session: "s-1".into(), cols: 100, rows: 30 },
    PtyClose => ToAgent::PtyClose { session: "s-1".into() },
    Transcribe => ToAgent::Transcribe { req: 11, audio: Bytes::from_static(b"OggS\0\x02"), trace: None },
    Synthesize => ToAgent::Synthesize { req: 12, text: "Hello there.".into(), trace: None },
});

every_variant!(from_agent: FromAgent {
    Hello => FromAgent::Hello(hello()),
    Spawned => FromAgent::Spawned { req: 1, result: Err(SpawnError::NoSuchDirectory("/gone".into())) },
    Events => FromAgent::Events { session: "s-1".into(), events: events() },
    Exited => FromAgent::Exited { session: "s-1".into(), code: Some(-1), stderr: "killed".into() },
    Killed => FromAgent::Killed { req: 2, was_running: true },
    ShellDone => FromAgent::ShellDone {
        req: 3,
        result: Ok(ShellOutput { output: "a\nb\n".into(), exit_code: Some(2), truncated: true, cancelled: false }),
    },
    Models => FromAgent::Models { req: 4, result: Ok(Bytes::from_static(br#"[{"id":"m"}]"#)) },
    HistoryChunk => FromAgent::HistoryChunk { req: 5, data: Bytes::from_static(br#"[{"role":"user"}"#) },
    HistoryDone => FromAgent::HistoryDone {
        req: 5,
        result: Ok(HistoryStats { messages: 12, skipped_lines: 1, truncated_tail: true }),
    },
    ForkMessages => FromAgent::ForkMessages {
        req: 6,
        result: Err(HistoryFailure { code: "file_not_found".into(), message: "no such file".into() }),
    },
    SessionList => FromAgent::SessionList { req: 7, sessions: vec!["s-1".into(), "s-2".into()] },
    Notice => FromAgent::Notice { session: Some("s-1".into()), message: "input queue full".into() },
    ToolDone => FromAgent::ToolDone { req: 8, result: Err(ToolError::new(404, "Not found")) },
    FileHead => FromAgent::FileHead {
        req: 9,
        result: Ok(FileMeta { size: 4096, mime_type: "image/png".into(), modified: Some(1_700_000_000) }),
    },
    FileChunk => FromAgent::FileChunk { req: 9, data: Bytes::from_static(b"\x89PNG\r\n") },
    FileEnd => FromAgent::FileEnd { req: 9, error: Some("read error".into()) },
    PtyOutput => FromAgent::PtyOutput { session: "s-1".into(), offset: 1234, data: Bytes::from_static(b"$ ") },
    PtyExited => FromAgent::PtyExited { session: "s-1".into() },
    DeltaBase => FromAgent::DeltaBase { slots: vec![Some(Bytes::from_static(br#"{"a":1}"#)), None] },
    Synthesized => FromAgent::Synthesized { req: 12, result: Ok((Bytes::from_static(b"ID3\x04"), 2.5)) },
});

every_variant!(stream_header: StreamHeader {
    Control => StreamHeader::Control,
    Session => StreamHeader::Session { session: "s-1".into() },
    Reply => StreamHeader::Reply { req: 5 },
    Enroll => StreamHeader::Enroll,
    Terminal => StreamHeader::Terminal { session: "s-1".into() },
});

every_variant!(enroll_reply: EnrollReply {
    Enrolled => EnrollReply::Enrolled {
        cert_pem: "-----BEGIN CERTIFICATE-----\nA\n".into(),
        ca_pem: "-----BEGIN CERTIFICATE-----\nB\n".into(),
    },
    Refused => EnrollReply::Refused { reason: "token already used".into() },
});

every_variant!(tool_call: ToolCall {
    FsList => ToolCall::FsList { path: "/home/u".into() },
    FsComplete => ToolCall::FsComplete { prefix: "/home/u/pr".into() },
    FsFile => ToolCall::FsFile { path: "/home/u/a.md".into() },
    GitStatus => ToolCall::GitStatus { dir: "/home/u/proj".into() },
    GitDiff => ToolCall::GitDiff { dir: "/home/u/proj".into(), path: Some("src/main.rs".into()), staged: true },
    WorkspaceGet => ToolCall::WorkspaceGet { path: "/home/u/proj".into() },
    WorkspacePut => ToolCall::WorkspacePut { path: "/home/u/proj".into(), config: r#"{"worktrees":true}"#.into() },
    DirenvAllow => ToolCall::DirenvAllow { dir: "/home/u/proj".into() },
    FilesExist => ToolCall::FilesExist { paths: vec!["/d/u/1".into(), "/d/u/2".into()] },
    DeleteFiles => ToolCall::DeleteFiles { paths: vec!["/d/u/3".into()] },
    CleanTranscript => ToolCall::CleanTranscript {
        cwd: "/home/u/proj".into(),
        provider: Some("anthropic".into()),
        model: None,
        use_direnv: false,
        text: "um so the the plan".into(),
    },
    PrepareSession => ToolCall::PrepareSession {
        dir: "/home/u/proj".into(),
        shared: false,
        session_name: Some("fix bug".into()),
        source_branch: None,
        use_direnv: true,
    },
    WorkspaceTrustGet => ToolCall::WorkspaceTrustGet { path: "/home/u/proj".into() },
    WorkspaceTrustSet => ToolCall::WorkspaceTrustSet { path: "/home/u/proj".into(), sha256: "ab".repeat(32) },
});

every_variant!(spawn_error: SpawnError {
    Launch => SpawnError::Launch("No such file or directory".into()),
    ExitedAtStart => SpawnError::ExitedAtStart { code: Some(1), stderr: "boom".into() },
    Timeout => SpawnError::Timeout { seconds: 30, stderr: "slow".into() },
    AlreadyRunning => SpawnError::AlreadyRunning,
    NoSuchDirectory => SpawnError::NoSuchDirectory("/gone".into()),
    Untrusted => SpawnError::Untrusted("review .piface/workspace.toml".into()),
    OutsideRoots => SpawnError::OutsideRoots("/etc is outside the file roots".into()),
});

every_variant!(model_state: ModelState {
    Downloading => ModelState::Downloading {
        file: "m.nemo".into(),
        done_bytes: 10,
        total_bytes: 100,
        bytes_per_s: 5,
        eta_s: None,
    },
    Loading => ModelState::Loading,
    Ready => ModelState::Ready,
    Failed => ModelState::Failed { error: "out of memory".into() },
});

/// Every golden: `<Type>/<Variant>` → the frame, each checked to decode back to its value.
fn frames() -> BTreeMap<String, Vec<u8>> {
    fn add<T: Serialize + DeserializeOwned + PartialEq + Debug>(
        out: &mut BTreeMap<String, Vec<u8>>,
        ty: &str,
        samples: Vec<(&str, T)>,
    ) {
        for (variant, value) in samples {
            let mut buf = BytesMut::new();
            encode_frame(&value, &mut buf).unwrap();
            let frame = buf.to_vec();
            let back: T = decode_frame(&mut buf).unwrap().unwrap_or_else(|| panic!("{ty}::{variant}: no frame"));
            assert_eq!(back, value, "{ty}::{variant} does not decode to itself");
            assert!(buf.is_empty(), "{ty}::{variant}: bytes left after the frame");
            let name = format!("{ty}/{variant}");
            assert!(out.insert(name.clone(), frame).is_none(), "{name} twice");
        }
    }
    let mut out = BTreeMap::new();
    add(&mut out, "ToAgent", to_agent());
    add(&mut out, "FromAgent", from_agent());
    add(&mut out, "StreamHeader", stream_header());
    add(&mut out, "EnrollRequest", vec![("EnrollRequest", enroll_request())]);
    add(&mut out, "EnrollReply", enroll_reply());
    add(&mut out, "ToolCall", tool_call());
    add(&mut out, "SpawnError", spawn_error());
    add(&mut out, "ModelState", model_state());
    out
}

fn enroll_request() -> EnrollRequest {
    EnrollRequest {
        token: "PIFACE1.ab.0123456789abcdef.1700000000.cd".into(),
        name: "box-1".into(),
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\nC\n".into(),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn version_dir(version: u32) -> PathBuf {
    root().join(format!("v{version}"))
}

/// The goldens under `dir`, by `<Type>/<Variant>`.
fn read_goldens(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for ty in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        for file in std::fs::read_dir(ty.path()).unwrap().map(Result::unwrap) {
            let path = file.path();
            let text = std::fs::read_to_string(&path).unwrap();
            let hex: String = text.split_whitespace().collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("?"), 16))
                .collect::<Result<Vec<u8>, _>>()
                .unwrap_or_else(|e| panic!("{}: not hex: {e}", path.display()));
            let variant = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(format!("{}/{variant}", ty.file_name().to_string_lossy()), bytes);
        }
    }
    out
}

/// Lower-case hex, 32 bytes a line.
fn to_hex(bytes: &[u8]) -> String {
    bytes.chunks(32).map(|line| line.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n").collect()
}

fn write_goldens(dir: &Path, frames: &BTreeMap<String, Vec<u8>>) {
    for (name, frame) in frames {
        let path = dir.join(format!("{name}.hex"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, to_hex(frame)).unwrap();
    }
}

/// What differs between committed goldens and the codec's bytes, one line each.
fn differences(committed: &BTreeMap<String, Vec<u8>>, now: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, frame) in now {
        match committed.get(name) {
            None => out.push(format!("{name}: new")),
            Some(old) if old != frame => out.push(format!(
                "{name}: changed\n  was {}\n  now {}",
                to_hex(old).replace('\n', ""),
                to_hex(frame).replace('\n', "")
            )),
            Some(_) => {}
        }
    }
    out.extend(committed.keys().filter(|name| !now.contains_key(*name)).map(|name| format!("{name}: removed")));
    out
}

fn versions_with_goldens() -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(root())
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix('v')?.parse().ok()).collect())
        .unwrap_or_default();
    out.sort_unstable();
    out
}

#[test]
fn every_message_has_the_golden_bytes_of_this_protocol_version() {
    let now = frames();
    let dir = version_dir(PROTOCOL_VERSION);
    let bless = std::env::var_os("PIFACE_BLESS").is_some_and(|v| v == "1");
    let newer: Vec<u32> = versions_with_goldens().into_iter().filter(|v| *v > PROTOCOL_VERSION).collect();
    assert!(
        newer.is_empty(),
        "goldens of protocol versions {newer:?} exist but PROTOCOL_VERSION is {PROTOCOL_VERSION}"
    );
    if !dir.exists() {
        assert!(
            bless,
            "no goldens for protocol version {PROTOCOL_VERSION} (shared/tests/golden/v{PROTOCOL_VERSION}/): after \
             bumping PROTOCOL_VERSION, write them with PIFACE_BLESS=1 cargo test -p piface-shared --test golden"
        );
        write_goldens(&dir, &now);
        // Say what the new version changed, for the commit message.
        if let Some(previous) = versions_with_goldens().into_iter().filter(|v| *v < PROTOCOL_VERSION).max() {
            let changes = differences(&read_goldens(&version_dir(previous)), &now);
            eprintln!("protocol version {PROTOCOL_VERSION} against {previous}:\n{}", changes.join("\n"));
        }
    } else if bless {
        // A variant added at the end of its enum leaves every other variant's bytes as they
        // were, and an older peer skips the frame it cannot decode: it joins this version.
        let committed = read_goldens(&dir);
        let added: BTreeMap<String, Vec<u8>> = now
            .iter()
            .filter(|(name, _)| !committed.contains_key(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        write_goldens(&dir, &added);
    }
    let changes = differences(&read_goldens(&dir), &now);
    assert!(
        changes.is_empty(),
        "the wire bytes differ from the goldens of protocol version {PROTOCOL_VERSION}:\n{}\n\n\
         A version's goldens never change (ARCHITECTURE.md, \"Wire protocol\"). If the change is meant, bump \
         PROTOCOL_VERSION in shared/src/protocol.rs and write the new version's goldens with \
         PIFACE_BLESS=1 cargo test -p piface-shared --test golden{}",
        changes.join("\n"),
        if bless { " (blessing adds new variants to a version, never changes or removes its goldens)" } else { "" }
    );
}

#[test]
fn the_hex_reader_reads_what_the_writer_writes() {
    let dir = tempfile_dir();
    let frames: BTreeMap<String, Vec<u8>> =
        [("A/B".to_string(), (0..=255).collect()), ("A/C".to_string(), Vec::new())].into_iter().collect();
    write_goldens(&dir, &frames);
    assert_eq!(read_goldens(&dir), frames);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the target's temporary directory (shared has no tempfile).
fn tempfile_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
