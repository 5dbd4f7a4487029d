//! Messages of the agent⇄coordinator protocol.
//!
//! Compatibility rules (see ARCHITECTURE.md, "Wire protocol"): the protocol evolves by adding.
//! New messages go at the end of their enum, a retired variant keeps its
//! slot. A change to the bytes of an existing message, or a removed variant, comes with a new
//! [`PROTOCOL_VERSION`] and that version's golden bytes; a variant added at the end joins the
//! current version (an older peer skips the frame) with its golden added (`tests/golden.rs`
//! fails until it is). Both sides send a [`Hello`] first and refuse a peer whose version they
//! cannot speak.
//!
//! pi's own output crosses as [`FromAgent::Events`]: each JSON line exactly as pi wrote it plus an
//! [`EventMeta`] that the agent extracted once, so the coordinator never parses the line again.
//! Lines travel in batches (whatever pi had written when the agent read), which keeps the cost
//! per message low for streams of many small events.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Version of this protocol. Bumped for every change to the bytes of an existing message and for
/// a removed variant; `tests/golden/v<N>/` pins the bytes of version N. Version 3 added
/// [`TraceContext`] (`trace`, last) to every request of [`ToAgent`].
pub const PROTOCOL_VERSION: u32 = 3;

/// Identifier of a session: the `piface_id` (a UUID string) that also names it in URLs.
pub type SessionId = String;

/// Identifier of a request from the coordinator; the agent echoes it in the matching reply.
pub type RequestId = u64;

/// First message in each direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol_version: u32,
    /// The sender's software version (the `piface` crate version).
    pub software_version: String,
    /// Host name of the sender's machine.
    pub hostname: String,
    /// Operating system and architecture, e.g. `linux-x86_64`.
    pub os: String,
    /// The agent's pi version when known (`pi --version`); `None` from the coordinator.
    pub pi_version: Option<String>,
    /// The GPUs the agent may use (NVML, filtered by `CUDA_VISIBLE_DEVICES`); empty from the
    /// coordinator and from agents without an NVIDIA driver.
    pub gpus: Vec<GpuInfo>,
    /// The agent's speech-to-text service (it transcribes for the cluster), if it has one: which
    /// model, where it runs and how far loading got. Sent again whenever that changes (about once
    /// a second while a model downloads).
    pub speech: Option<Box<ModelService>>,
    /// The agent's text-to-speech service, likewise.
    pub tts: Option<Box<ModelService>>,
}

/// A model an agent serves to the cluster (speech-to-text or text-to-speech).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelService {
    /// What it was asked to load: a path or a Hugging Face repo id.
    pub model: String,
    /// `cpu` or `cuda:N (<GPU name>)`.
    pub device: String,
    /// Where loading stands.
    pub state: ModelState,
    /// Jobs running or queued on it.
    pub busy: u32,
    /// Jobs it has finished (synthesised or transcribed) since the agent started.
    pub done: u64,
}

/// Where loading a [`ModelService`] stands. (Externally tagged: the link's codec cannot read
/// internally tagged enums; the coordinator's JSON flattens it.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelState {
    /// Fetching from the Hugging Face hub into the local cache.
    Downloading {
        /// The file being fetched.
        file: String,
        /// Bytes fetched of all the files to fetch.
        done_bytes: u64,
        /// Bytes of all the files to fetch (known once each file's size is).
        total_bytes: u64,
        /// Recent rate, bytes per second.
        bytes_per_s: u64,
        /// Seconds left at that rate.
        eta_s: Option<u64>,
    },
    /// Reading the weights onto the device.
    Loading,
    /// Serving.
    Ready,
    /// It will not serve; why.
    Failed {
        /// What went wrong, for the user.
        error: String,
    },
}

impl ModelService {
    /// Whether it takes jobs now.
    pub fn ready(&self) -> bool {
        matches!(self.state, ModelState::Ready)
    }
}

/// A GPU an agent found with NVML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// CUDA's index of the device in the agent's process.
    pub index: u32,
    /// E.g. `NVIDIA GeForce GTX 1080 Ti`.
    pub name: String,
    /// NVML's `GPU-…` UUID.
    pub uuid: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Free memory when the agent last looked, MiB.
    pub memory_free_mib: u64,
    /// CUDA compute capability, e.g. `6.1`.
    pub compute_capability: Option<String>,
    /// PCI bus id, e.g. `00000000:65:00.0` (what CUDA orders devices by under
    /// `CUDA_DEVICE_ORDER=PCI_BUS_ID`, which agents set).
    pub pci_bus_id: String,
}

impl Hello {
    /// Checks that a peer's hello is one this side can speak.
    pub fn check_compatible(&self) -> Result<(), VersionMismatch> {
        if self.protocol_version == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(VersionMismatch { ours: PROTOCOL_VERSION, theirs: self.protocol_version })
        }
    }
}

/// A peer speaks a protocol version this side does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer speaks protocol version {theirs}, this side speaks {ours}")]
pub struct VersionMismatch {
    /// Our [`PROTOCOL_VERSION`].
    pub ours: u32,
    /// The version the peer announced.
    pub theirs: u32,
}

/// How to start a pi process for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnSpec {
    /// Working directory of pi (the session's execution directory).
    pub cwd: String,
    /// `--provider`, when set.
    pub provider: Option<String>,
    /// `--model`, when set.
    pub model: Option<String>,
    /// `--thinking`, when set.
    pub thinking: Option<String>,
    /// `--session <file>` to continue an existing pi session file.
    pub session_file: Option<String>,
    /// `--no-session`: an ephemeral session without a session file.
    pub no_session: bool,
    /// Run pi through `direnv exec <cwd>` when direnv is installed on the agent.
    pub use_direnv: bool,
    /// The session's project: its `.piface/workspace.toml` `[launch]` script (when it applies
    /// to `pi`) runs before pi.
    pub project_dir: Option<String>,
}

/// Coordinator → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToAgent {
    /// Opening message.
    Hello(Hello),
    /// Start pi for a session; answered by [`FromAgent::Spawned`].
    Spawn {
        /// Echoed in the reply.
        req: RequestId,
        /// The session the process belongs to.
        session: SessionId,
        /// How to start it.
        spec: SpawnSpec,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// One JSON command for pi's stdin, without the trailing newline.
    Input {
        /// Target session.
        session: SessionId,
        /// The JSON text of the command, a single line.
        line: Bytes,
    },
    /// Stop a session's pi: abort, SIGTERM to its process group, SIGKILL after a grace period.
    /// Answered by [`FromAgent::Killed`].
    Kill {
        /// Echoed in the reply.
        req: RequestId,
        /// Target session.
        session: SessionId,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Run a `!!` shell command in the session's directory; answered by [`FromAgent::ShellDone`].
    Shell {
        /// Echoed in the reply.
        req: RequestId,
        /// Session whose directory the command runs in.
        session: SessionId,
        /// The command line, run with `bash -lc`.
        command: String,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Ask a throw-away pi for its model list; answered by [`FromAgent::Models`].
    ProbeModels {
        /// Echoed in the reply.
        req: RequestId,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Read the messages of a pi session file's active branch; answered on a reply stream by
    /// [`FromAgent::HistoryChunk`]s, then [`FromAgent::HistoryDone`].
    ReadHistory {
        /// Echoed in the replies.
        req: RequestId,
        /// The session file.
        path: String,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// List the user messages of a session file that a branch can start from; answered by
    /// [`FromAgent::ForkMessages`].
    ForkMessages {
        /// Echoed in the reply.
        req: RequestId,
        /// The session file.
        path: String,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Which sessions have a running pi on the agent? Answered by [`FromAgent::SessionList`].
    /// A coordinator asks when an agent (re)connects, to re-attach those sessions and archive
    /// the ones whose pi is gone.
    ListSessions {
        /// Echoed in the reply.
        req: RequestId,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// A host tool (files, git, workspace config, direnv); answered by [`FromAgent::ToolDone`].
    Tool {
        /// Echoed in the reply.
        req: RequestId,
        /// What to do.
        call: ToolCall,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Stream a file (`fs/raw`): answered on a reply stream by [`FromAgent::FileHead`], then
    /// [`FromAgent::FileChunk`]s and a [`FromAgent::FileEnd`].
    ReadFile {
        /// Echoed in the replies.
        req: RequestId,
        /// Absolute path; must lie inside the agent's file roots.
        path: String,
        /// Larger files are refused (413).
        max: u64,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Start writing an uploaded file at `path` (created with its directories; must not exist).
    /// [`ToAgent::UploadChunk`]s with the same `req` follow, then [`ToAgent::UploadEnd`];
    /// answered by one [`FromAgent::ToolDone`] (`{"size": n}`) after the end or the first error.
    UploadBegin {
        /// Names the upload in the messages that follow.
        req: RequestId,
        /// Final absolute path of the blob.
        path: String,
        /// More bytes than this abort the upload (413).
        max: u64,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// The next bytes of an upload.
    UploadChunk {
        /// The upload.
        req: RequestId,
        /// Bytes.
        data: Bytes,
    },
    /// The upload is complete (`ok`) or abandoned (`!ok`: the partial file is removed).
    UploadEnd {
        /// The upload.
        req: RequestId,
        /// Whether the sender got all of it.
        ok: bool,
    },
    /// Open (or keep) the session's terminal: a PTY running a login shell in `cwd`. Its
    /// output goes on a terminal stream as [`FromAgent::PtyOutput`]. Idempotent: a running
    /// PTY is kept (and resized).
    PtyOpen {
        /// The session.
        session: SessionId,
        /// The shell's working directory.
        cwd: String,
        /// The session's project (its `[launch]` script applies when it names `pty`).
        project_dir: Option<String>,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Keystrokes for a session's PTY.
    PtyInput {
        /// The session.
        session: SessionId,
        /// Bytes to write.
        data: Bytes,
    },
    /// New size of a session's PTY.
    PtyResize {
        /// The session.
        session: SessionId,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Close a session's PTY (hang up its shell).
    PtyClose {
        /// The session.
        session: SessionId,
    },
    /// Transcribe a clip with the agent's speech model; answered by [`FromAgent::ToolDone`]
    /// (`{"text": …}`).
    Transcribe {
        /// Echoed in the reply.
        req: RequestId,
        /// The audio, in any format ffmpeg reads.
        audio: Bytes,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
    /// Speak a text with the agent's text-to-speech model; answered by
    /// [`FromAgent::Synthesized`].
    Synthesize {
        /// Echoed in the reply.
        req: RequestId,
        /// The text (already normalised and checked by the coordinator).
        text: String,
        /// The trace this request belongs to, when traces are exported (see [`TraceContext`]).
        trace: Option<TraceContext>,
    },
}

/// The `trace` field of a request variant of [`ToAgent`] (`Some`), or `None` for the others:
/// one list of the requests for both borrows (the bindings follow the scrutinee's).
macro_rules! request_trace {
    ($msg:expr) => {
        match $msg {
            ToAgent::Spawn { trace, .. }
            | ToAgent::Kill { trace, .. }
            | ToAgent::Shell { trace, .. }
            | ToAgent::ProbeModels { trace, .. }
            | ToAgent::ReadHistory { trace, .. }
            | ToAgent::ForkMessages { trace, .. }
            | ToAgent::ListSessions { trace, .. }
            | ToAgent::Tool { trace, .. }
            | ToAgent::ReadFile { trace, .. }
            | ToAgent::UploadBegin { trace, .. }
            | ToAgent::Transcribe { trace, .. }
            | ToAgent::Synthesize { trace, .. } => Some(trace),
            ToAgent::Hello(_)
            | ToAgent::Input { .. }
            | ToAgent::UploadChunk { .. }
            | ToAgent::UploadEnd { .. }
            | ToAgent::PtyOpen { .. }
            | ToAgent::PtyInput { .. }
            | ToAgent::PtyResize { .. }
            | ToAgent::PtyClose { .. } => None,
        }
    };
}

impl ToAgent {
    /// The trace context slot of a request (a message the agent answers or acts on as a unit:
    /// spawn, kill, `!!`, tools, reads, uploads' start, speech jobs); `None` for the others
    /// (hello, pi input, upload chunks, terminal traffic), which never carry one.
    pub fn trace_mut(&mut self) -> Option<&mut Option<TraceContext>> {
        request_trace!(self)
    }

    /// Whether it is a request (the variants [`ToAgent::trace_mut`] has a slot in).
    pub fn is_request(&self) -> bool {
        request_trace!(self).is_some()
    }

    /// The trace context a request carries.
    pub fn trace(&self) -> Option<&TraceContext> {
        request_trace!(self).and_then(Option::as_ref)
    }

    /// The variant's name (`Spawn`, `Tool`, …), for span names and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ToAgent::Hello(_) => "Hello",
            ToAgent::Spawn { .. } => "Spawn",
            ToAgent::Input { .. } => "Input",
            ToAgent::Kill { .. } => "Kill",
            ToAgent::Shell { .. } => "Shell",
            ToAgent::ProbeModels { .. } => "ProbeModels",
            ToAgent::ReadHistory { .. } => "ReadHistory",
            ToAgent::ForkMessages { .. } => "ForkMessages",
            ToAgent::ListSessions { .. } => "ListSessions",
            ToAgent::Tool { .. } => "Tool",
            ToAgent::ReadFile { .. } => "ReadFile",
            ToAgent::UploadBegin { .. } => "UploadBegin",
            ToAgent::UploadChunk { .. } => "UploadChunk",
            ToAgent::UploadEnd { .. } => "UploadEnd",
            ToAgent::PtyOpen { .. } => "PtyOpen",
            ToAgent::PtyInput { .. } => "PtyInput",
            ToAgent::PtyResize { .. } => "PtyResize",
            ToAgent::PtyClose { .. } => "PtyClose",
            ToAgent::Transcribe { .. } => "Transcribe",
            ToAgent::Synthesize { .. } => "Synthesize",
        }
    }
}

/// The W3C trace context (<https://www.w3.org/TR/trace-context/>) of the coordinator's span
/// that sent a request, as the two HTTP headers' values would carry it, so the agent's spans
/// for the request (pi's start, a file or git tool, a speech job) join the same trace. Set only
/// while traces are exported (`--otlp-endpoint`); the agent ignores a value it cannot parse.
/// Text rather than parsed ids: `shared` stays free of OpenTelemetry, and the header format is
/// the standard either side already speaks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceContext {
    /// `traceparent`: `00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>`.
    pub traceparent: String,
    /// `tracestate`: vendor entries, often empty.
    pub tracestate: String,
}

/// A host-tool request ([`ToAgent::Tool`]); the reply is the JSON body of the matching HTTP
/// endpoint (see `rest-api.md`), or a [`ToolError`] with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolCall {
    /// `GET /api/fs/list`.
    FsList {
        /// Directory.
        path: String,
    },
    /// `GET /api/fs/complete`.
    FsComplete {
        /// Partial path.
        prefix: String,
    },
    /// `GET /api/fs/file`.
    FsFile {
        /// File.
        path: String,
    },
    /// `GET /api/sessions/{id}/git/status` in `dir`.
    GitStatus {
        /// The session's execution directory.
        dir: String,
    },
    /// `GET /api/sessions/{id}/git/diff` in `dir`.
    GitDiff {
        /// The session's execution directory.
        dir: String,
        /// One file (relative to the repository root, or absolute inside it).
        path: Option<String>,
        /// The index instead of the work tree.
        staged: bool,
    },
    /// `GET /api/workspace/config`.
    WorkspaceGet {
        /// The project directory.
        path: String,
    },
    /// `PUT /api/workspace/config`: `config` is the JSON object of the request.
    WorkspacePut {
        /// The project directory.
        path: String,
        /// JSON text.
        config: String,
    },
    /// `POST /api/direnv/allow`.
    DirenvAllow {
        /// The directory whose `.envrc` to allow.
        dir: String,
    },
    /// Which of these files exist (upload blobs before a prompt names them): answers
    /// `{"missing": [...]}`.
    FilesExist {
        /// Absolute paths.
        paths: Vec<String>,
    },
    /// Delete these files (upload blobs nobody references): answers `{"deleted": n}`.
    DeleteFiles {
        /// Absolute paths.
        paths: Vec<String>,
    },
    /// "Mic → Clean": a short-lived pi in the session's directory rewrites a transcript;
    /// answers `{"text": …}`.
    CleanTranscript {
        /// The session's directory.
        cwd: String,
        /// The session's provider.
        provider: Option<String>,
        /// The session's model.
        model: Option<String>,
        /// As the session.
        use_direnv: bool,
        /// The raw transcript.
        text: String,
    },
    /// Where a new session runs: its project, and for a non-shared session in a git
    /// repository a new worktree (see the workspace config). Answers the record's
    /// `project_dir`, `project_subdir`, `execution_dir`, `workspace_*` fields.
    PrepareSession {
        /// The directory the user chose.
        dir: String,
        /// Run in place.
        shared: bool,
        /// For the worktree's name.
        session_name: Option<String>,
        /// Branching a worktree session: the base of the new worktree.
        source_branch: Option<String>,
        /// Allow a new worktree's `.envrc`.
        use_direnv: bool,
    },
    /// `GET /api/workspace/trust`: the commands the project's `.piface/workspace.toml` would
    /// run (`[bootstrap]`, `[launch]`), the SHA-256 of the file's bytes and whether the agent's
    /// user trusted that content.
    WorkspaceTrustGet {
        /// A directory of the project (its git top level, else the directory, is the project).
        path: String,
    },
    /// `POST /api/workspace/trust`: trust the project's workspace file if its bytes still hash
    /// to `sha256` (409 when the file changed since it was shown).
    WorkspaceTrustSet {
        /// A directory of the project.
        path: String,
        /// The SHA-256 (hex) of the content the user reviewed.
        sha256: String,
    },
}

/// Why a host tool failed: the HTTP status and `detail` to answer with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ToolError {
    /// HTTP status.
    pub status: u16,
    /// Human-readable text.
    pub detail: String,
}

impl ToolError {
    /// An error with `status` and `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> ToolError {
        ToolError { status, detail: detail.into() }
    }
}

/// What [`FromAgent::FileHead`] tells about a file before its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Bytes.
    pub size: u64,
    /// Guessed from the name.
    pub mime_type: String,
    /// Modification time, seconds since the epoch.
    pub modified: Option<u64>,
}

/// What the agent extracted from a pi line: enough for the coordinator to route it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMeta {
    /// pi's `type` field (`message_update`, `response`, …); empty when the line has none.
    pub kind: String,
    /// The `id` of a `response` (or of an `extension_ui_request`).
    pub id: Option<String>,
    /// The `command` of a `response`.
    pub command: Option<String>,
    /// The `success` flag of a `response`.
    pub success: Option<bool>,
}

/// One line of pi's stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiEvent {
    /// Per-session sequence number, from 0, without gaps.
    pub seq: u64,
    /// Routing facts read from the line.
    pub meta: EventMeta,
    /// The line's bytes (without the newline): one JSON object, valid UTF-8. With a `delta`,
    /// the line's skeleton instead (see [`crate::delta`]).
    pub line: Bytes,
    /// Set on the QUIC link for streaming updates: what to put back into `line`.
    pub delta: Option<crate::delta::Delta>,
}

/// Facts about a started pi process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spawned {
    /// Process id of pi (or of `direnv exec` wrapping it); also its process-group id.
    pub pid: u32,
}

/// Why a pi could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpawnError {
    /// The executable could not be run at all (missing binary, bad directory).
    Launch(String),
    /// pi exited before it answered its first command; carries its exit status and stderr.
    ExitedAtStart {
        /// Exit code, when it exited rather than died by a signal.
        code: Option<i32>,
        /// What pi wrote to stderr (the tail, bounded).
        stderr: String,
    },
    /// pi did not answer its first command in time.
    Timeout {
        /// Seconds waited.
        seconds: u64,
        /// What pi wrote to stderr so far.
        stderr: String,
    },
    /// The session already has a running pi on this agent.
    AlreadyRunning,
    /// The working directory does not exist (or is not a directory) on the agent.
    NoSuchDirectory(String),
    /// The project's workspace file would run a `[launch]` script its user has not trusted
    /// (see [`ToolCall::WorkspaceTrustGet`]); the text says what and how to trust it.
    Untrusted(String),
    /// The working directory lies outside the agent's file roots (`--fs-root`) or in Piface's
    /// private directories; the agent checks it at every start, resumes included.
    OutsideRoots(String),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Launch(e) => write!(f, "failed to start pi: {e}"),
            SpawnError::ExitedAtStart { code, stderr } => {
                match code {
                    Some(c) => write!(f, "pi process exited immediately with code {c}")?,
                    None => write!(f, "pi process was killed by a signal during start-up")?,
                }
                let stderr = stderr.trim();
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            SpawnError::Timeout { seconds, stderr } => {
                write!(f, "pi did not answer within {seconds} s of starting")?;
                let stderr = stderr.trim();
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            SpawnError::AlreadyRunning => write!(f, "Session is already live"),
            SpawnError::NoSuchDirectory(dir) => write!(f, "Directory does not exist: {dir}"),
            SpawnError::Untrusted(detail) | SpawnError::OutsideRoots(detail) => write!(f, "{detail}"),
        }
    }
}

/// What reading a session file found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistoryStats {
    /// Messages sent.
    pub messages: u64,
    /// Lines that were not JSON (corruption).
    pub skipped_lines: u64,
    /// The file ends in a cut-off line (a write interrupted by a crash).
    pub truncated_tail: bool,
}

/// Why a session file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFailure {
    /// `file_not_found` or `file_read_error`.
    pub code: String,
    /// Details for the log.
    pub message: String,
}

/// Output of a `!!` shell command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellOutput {
    /// stdout followed by stderr, lossily decoded as UTF-8.
    pub output: String,
    /// Exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    /// The output was cut at the agent's limit.
    pub truncated: bool,
    /// The command was stopped (time limit, session killed).
    pub cancelled: bool,
}

/// Agent → coordinator.
///
/// [`FromAgent::Events`] and [`FromAgent::Exited`] travel on the session's own stream (see
/// ARCHITECTURE.md), everything else on the control stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromAgent {
    /// Opening message.
    Hello(Hello),
    /// Reply to [`ToAgent::Spawn`].
    Spawned {
        /// The request this answers.
        req: RequestId,
        /// The process, or why there is none.
        result: Result<Spawned, SpawnError>,
    },
    /// JSON lines from a session's pi, as pi wrote them, in order.
    Events {
        /// Source session.
        session: SessionId,
        /// The lines; their `seq` numbers follow each other.
        events: Vec<PiEvent>,
    },
    /// A session's pi ended (on its own or killed). Sent after its last [`FromAgent::Events`].
    Exited {
        /// The session.
        session: SessionId,
        /// Exit code, when it exited rather than died by a signal.
        code: Option<i32>,
        /// The tail of its stderr.
        stderr: String,
    },
    /// Reply to [`ToAgent::Kill`]; the process group is gone when this is sent.
    Killed {
        /// The request this answers.
        req: RequestId,
        /// Whether a process was running.
        was_running: bool,
    },
    /// Reply to [`ToAgent::Shell`].
    ShellDone {
        /// The request this answers.
        req: RequestId,
        /// The output, or why the command could not run.
        result: Result<ShellOutput, String>,
    },
    /// Reply to [`ToAgent::ProbeModels`]: pi's `data.models` as a JSON array.
    Models {
        /// The request this answers.
        req: RequestId,
        /// The JSON array text, or why it could not be had.
        result: Result<Bytes, String>,
    },
    /// A piece of the JSON array of messages that [`ToAgent::ReadHistory`] asked for; the
    /// pieces concatenated are the array.
    HistoryChunk {
        /// The request this answers.
        req: RequestId,
        /// The next bytes of the array.
        data: Bytes,
    },
    /// The end of a history: what was read, or why nothing could be (`file_not_found`,
    /// `file_read_error`: the original's codes).
    HistoryDone {
        /// The request this answers.
        req: RequestId,
        /// Counts, or the error code and text.
        result: Result<HistoryStats, HistoryFailure>,
    },
    /// Reply to [`ToAgent::ForkMessages`]: a JSON array of `{"entryId", "text"}`.
    ForkMessages {
        /// The request this answers.
        req: RequestId,
        /// The array, or why it could not be read.
        result: Result<Bytes, HistoryFailure>,
    },
    /// Reply to [`ToAgent::ListSessions`].
    SessionList {
        /// The request this answers.
        req: RequestId,
        /// Sessions with a running pi.
        sessions: Vec<SessionId>,
    },
    /// Something about a session the coordinator should tell its clients (a skipped non-JSON
    /// line, an oversized line, a full input queue). Never fatal.
    Notice {
        /// The session concerned, if any.
        session: Option<SessionId>,
        /// Human-readable text.
        message: String,
    },
    /// Reply to [`ToAgent::Tool`] and to an upload: the JSON body, or the error.
    ToolDone {
        /// The request this answers.
        req: RequestId,
        /// JSON text, or status and detail.
        result: Result<String, ToolError>,
    },
    /// First reply to [`ToAgent::ReadFile`] (on its reply stream).
    FileHead {
        /// The request this answers.
        req: RequestId,
        /// What the file is, or why it cannot be read.
        result: Result<FileMeta, ToolError>,
    },
    /// The next bytes of a file being read.
    FileChunk {
        /// The request this answers.
        req: RequestId,
        /// Bytes.
        data: Bytes,
    },
    /// The end of a file being read; `error` if reading failed part-way.
    FileEnd {
        /// The request this answers.
        req: RequestId,
        /// Why it ended early.
        error: Option<String>,
    },
    /// Output of a session's PTY (on its terminal stream). `offset` counts the bytes the PTY
    /// wrote before these, so a receiver drops what it already has after a resend.
    PtyOutput {
        /// The session.
        session: SessionId,
        /// Bytes before `data`.
        offset: u64,
        /// Bytes.
        data: Bytes,
    },
    /// A session's shell ended (its PTY is gone; the next open starts a new one at offset 0).
    PtyExited {
        /// The session.
        session: SessionId,
    },
    /// First on a session stream that resumes in the middle: the state its streaming updates
    /// are coded against (see [`crate::delta`]).
    DeltaBase {
        /// The previous value of each slot.
        slots: Vec<Option<Bytes>>,
    },
    /// Reply to [`ToAgent::Synthesize`]: the speech as MP3, or why not.
    Synthesized {
        /// The request this answers.
        req: RequestId,
        /// The MP3 file and its length in seconds.
        result: Result<(Bytes, f32), ToolError>,
    },
}

/// The first frame of every QUIC stream an agent opens: what the stream carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamHeader {
    /// The control stream (bidirectional): [`ToAgent`] one way, [`FromAgent`] the other.
    Control,
    /// A session's events (unidirectional): [`FromAgent::Events`]…, [`FromAgent::Exited`].
    Session {
        /// The session.
        session: SessionId,
    },
    /// A streamed reply (unidirectional), e.g. [`FromAgent::HistoryChunk`]s.
    Reply {
        /// The request it answers.
        req: RequestId,
    },
    /// Enrollment of a new agent (bidirectional): one [`EnrollRequest`], one [`EnrollReply`].
    /// The only stream allowed on a connection without a client certificate.
    Enroll,
    /// A session's terminal output (unidirectional): [`FromAgent::PtyOutput`]…, then
    /// [`FromAgent::PtyExited`].
    Terminal {
        /// The session.
        session: SessionId,
    },
}

/// An agent asks to join the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The join token (`piface token create`).
    pub token: String,
    /// The name the agent wants; unique in the cluster.
    pub name: String,
    /// A certificate signing request for the agent's key, PEM.
    pub csr_pem: String,
}

/// The coordinator's answer to an [`EnrollRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollReply {
    /// Joined: the agent's certificate and the cluster CA, PEM.
    Enrolled {
        /// The agent's client certificate.
        cert_pem: String,
        /// The cluster CA certificate.
        ca_pem: String,
    },
    /// Refused, with the reason (expired or used token, name taken, …).
    Refused {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_trace_context_and_streamed_traffic_does_not() {
        let mut kill = ToAgent::Kill { req: 1, session: "s".into(), trace: None };
        assert!(kill.is_request() && kill.trace().is_none());
        *kill.trace_mut().expect("a request") =
            Some(TraceContext { traceparent: "00-…".into(), tracestate: String::new() });
        assert_eq!(kill.trace().map(|t| t.traceparent.as_str()), Some("00-…"));
        for mut other in [
            ToAgent::Input { session: "s".into(), line: Bytes::new() },
            ToAgent::UploadChunk { req: 1, data: Bytes::new() },
            ToAgent::PtyInput { session: "s".into(), data: Bytes::new() },
        ] {
            assert!(!other.is_request() && other.trace_mut().is_none() && other.trace().is_none(), "{other:?}");
        }
    }
}
