//! One `pi --mode rpc` process: start-up handshake, the stdout reader, the bounded stderr tail,
//! the stdin writer, and stopping it with its whole process group.
//!
//! Invariants:
//! - pi runs in its own process group, so the tools it starts (bash, …) die with it;
//! - stdout is split on `\n` only (pi's JSONL framing), one line up to [`MAX_LINE`] bytes; a
//!   longer line is reported and skipped, never buffered without bound;
//! - stderr is drained continuously into a bounded tail, so a chatty pi can't block on it;
//! - [`FromAgent::Exited`] is sent after the last event of the process, and the process is
//!   reaped (no zombies) before anyone learns it is gone.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use piface_shared::envelope;
use piface_shared::protocol::{EventMeta, FromAgent, PiEvent, SessionId, SpawnError, SpawnSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::lines::{Line, LineSplitter};
use crate::AgentConfig;

/// Longest pi stdout line relayed. Replies to `get_messages` of long sessions are single lines
/// of tens of megabytes; the original uses the same limit.
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// How much of pi's stderr is kept (the end of it).
const STDERR_TAIL: usize = 64 * 1024;

/// Lines waiting for pi's stdin. Browser input is small and user-paced; a full queue means pi
/// stopped reading, and the command is refused with a notice rather than queued forever.
const STDIN_DEPTH: usize = 256;

/// Id of the command the agent sends to learn that a new pi is ready. Its reply is consumed
/// here and never relayed.
const READY_ID: &str = "__piface_agent_ready";

/// Where a pi's events go: the session id and the agent's outbound queue.
pub type EventSink = (SessionId, mpsc::Sender<FromAgent>);

/// A running pi. Dropping it kills the process group.
pub struct PiProcess {
    pid: u32,
    cwd: String,
    /// Started through `direnv exec` (so `!!` commands get the same environment).
    direnv: bool,
    stdin: mpsc::Sender<Bytes>,
    stderr: Arc<Mutex<StderrTail>>,
    /// `Some(code)` once the process has been reaped (`code` is `None` for a signal).
    exit: watch::Receiver<Option<Option<i32>>>,
    /// True once the process is reaped and [`FromAgent::Exited`] was sent.
    done: watch::Receiver<bool>,
}

/// Error of [`PiProcess::send_line`].
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// pi is not reading its stdin fast enough.
    #[error("pi is not reading its input; the command was dropped")]
    Full,
    /// pi has exited.
    #[error("pi has exited; the command was not delivered")]
    Closed,
}

impl PiProcess {
    /// Starts pi for `spec` and waits until it answers a first command.
    ///
    /// With a sink, every line pi writes becomes an event of [`FromAgent::Events`] (numbered from 0) and its
    /// end a [`FromAgent::Exited`]; without one (the model probe), lines are dropped.
    pub async fn start(
        config: &AgentConfig,
        spec: &SpawnSpec,
        sink: Option<EventSink>,
    ) -> Result<PiProcess, SpawnError> {
        let direnv = direnv_available(spec.use_direnv);
        let launch = crate::tools::workspace::launch_for(&config.trust(), spec.project_dir.as_deref(), "pi")
            .map_err(SpawnError::Untrusted)?;
        let (program, args) = wrapped(command_line(&config.pi_bin, spec, false), launch.as_ref(), direnv, &spec.cwd);
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .current_dir(&spec.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child: Child = cmd.spawn().map_err(|e| SpawnError::Launch(format!("{}: {e}", program.display())))?;
        let pid = child.id().unwrap_or_default();
        debug!(pid, ?program, ?args, cwd = %spec.cwd, "spawned pi");

        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr_pipe = child.stderr.take().expect("stderr was piped");
        let stdin = child.stdin.take().expect("stdin was piped");

        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        let stderr_task = tokio::spawn(drain_stderr(stderr_pipe, stderr.clone(), pid));
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_DEPTH);
        tokio::spawn(write_stdin(stdin, stdin_rx));
        let (ready_tx, ready_rx) = oneshot::channel();
        let reader = tokio::spawn(read_stdout(stdout, sink.clone(), ready_tx, pid));

        let (exit_tx, exit_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let stderr2 = stderr.clone();
        tokio::spawn(async move {
            // Order matters: all of stdout is relayed before the exit is announced.
            let _ = reader.await;
            let status = child.wait().await;
            let _ = stderr_task.await;
            let code = status.as_ref().ok().and_then(|s| s.code());
            debug!(pid, ?status, "pi exited");
            let _ = exit_tx.send(Some(code));
            if let Some((session, out)) = sink {
                let stderr = stderr2.lock().unwrap().text();
                let _ = out.send(FromAgent::Exited { session, code, stderr }).await;
            }
            // Tools pi started may outlive it in its group; they go with it.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = done_tx.send(true);
        });

        let proc =
            PiProcess { pid, cwd: spec.cwd.clone(), direnv, stdin: stdin_tx, stderr, exit: exit_rx, done: done_rx };
        let ready = format!(r#"{{"type":"get_state","id":"{READY_ID}"}}"#);
        let _ = proc.stdin.try_send(Bytes::from(ready));

        enum Start {
            Ready,
            Exited,
            TimedOut,
        }
        let outcome = tokio::select! {
            // A pi that answers and then dies still counts as started; its exit is announced.
            biased;
            Ok(()) = ready_rx => Start::Ready,
            () = proc.wait_done() => Start::Exited,
            () = tokio::time::sleep(config.start_timeout) => Start::TimedOut,
        };
        match outcome {
            Start::Ready => Ok(proc),
            Start::Exited => {
                let code = *proc.exit.borrow();
                Err(SpawnError::ExitedAtStart { code: code.flatten(), stderr: proc.stderr_text() })
            }
            Start::TimedOut => {
                let stderr = proc.stderr_text();
                proc.kill(Duration::from_millis(500)).await;
                Err(SpawnError::Timeout { seconds: config.start_timeout.as_secs(), stderr })
            }
        }
    }

    /// Process id of the spawned program, which is also its process-group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// pi's working directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Whether pi runs in its directory's direnv environment.
    pub fn uses_direnv(&self) -> bool {
        self.direnv
    }

    /// The end of what pi wrote to stderr.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().text()
    }

    /// Queues one JSON line for pi's stdin without waiting.
    pub fn send_line(&self, line: Bytes) -> Result<(), SendError> {
        self.stdin.try_send(line).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Waits until the process is reaped and its exit announced.
    pub async fn wait_done(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Stops pi: `abort` first (so a turn ends cleanly and its session file is written), then
    /// SIGTERM to the process group, then SIGKILL once `grace` has passed. Returns when the
    /// process is reaped.
    pub async fn kill(&self, grace: Duration) {
        let group = Pid::from_raw(self.pid as i32);
        if self.send_line(Bytes::from_static(br#"{"type":"abort"}"#)).is_ok()
            && tokio::time::timeout(Duration::from_millis(200), self.wait_done()).await.is_ok()
        {
            return;
        }
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.wait_done()).await.is_err() {
            warn!(pid = self.pid, "pi ignored SIGTERM; killing its group");
            let _ = killpg(group, Signal::SIGKILL);
            self.wait_done().await;
        }
    }
}

impl Drop for PiProcess {
    fn drop(&mut self) {
        let running = self.exit.borrow().is_none();
        if running {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
    }
}

/// Asks a throw-away pi (no session, no provider flags, no direnv) for its model list and
/// returns pi's `data.models` array with non-object entries dropped.
pub async fn probe_models(config: &AgentConfig) -> Result<Bytes, String> {
    let (tx, mut rx) = mpsc::channel(16);
    let spec = SpawnSpec {
        cwd: config.probe_dir.to_string_lossy().into_owned(),
        provider: None,
        model: None,
        thinking: None,
        session_file: None,
        no_session: true,
        use_direnv: false,
        project_dir: None,
    };
    let proc = PiProcess::start(config, &spec, Some(("probe".into(), tx))).await.map_err(|e| e.to_string())?;
    const ID: &str = "__piface_internal_probe_models";
    proc.send_line(Bytes::from(format!(r#"{{"type":"get_available_models","id":"{ID}"}}"#)))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = rx.recv().await {
            if let FromAgent::Events { events, .. } = msg {
                if let Some(e) =
                    events.into_iter().find(|e| e.meta.kind == "response" && e.meta.id.as_deref() == Some(ID))
                {
                    return Some(e.line);
                }
            }
        }
        None
    })
    .await;
    // Keep draining while pi stops, so its reader never blocks on a full queue.
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    proc.kill(Duration::from_secs(2)).await;
    drain.abort();
    let line = match answer {
        Ok(Some(line)) => line,
        Ok(None) => return Err("pi exited before listing its models".into()),
        Err(_) => return Err("pi did not list its models within 10 s".into()),
    };
    models_from_response(&line)
}

fn models_from_response(line: &[u8]) -> Result<Bytes, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if v.get("success").and_then(|s| s.as_bool()) != Some(true) {
        let err = v.get("error").and_then(|e| e.as_str()).unwrap_or("get_available_models failed");
        return Err(err.to_string());
    }
    let models: Vec<&serde_json::Value> = v
        .pointer("/data/models")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter(|m| m.is_object()).collect())
        .unwrap_or_default();
    serde_json::to_vec(&models).map(Bytes::from).map_err(|e| e.to_string())
}

/// The program and arguments for `spec`: `pi --mode rpc [--provider P] [--model M]
/// [--thinking L] [--no-session | --session F]`, behind `direnv exec <cwd>` when asked for and
/// installed.
pub fn command_line(pi_bin: &Path, spec: &SpawnSpec, direnv: bool) -> (std::path::PathBuf, Vec<String>) {
    let mut args: Vec<String> = vec!["--mode".into(), "rpc".into()];
    let flags = [("--provider", &spec.provider), ("--model", &spec.model), ("--thinking", &spec.thinking)];
    for (flag, value) in flags {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            args.push(flag.into());
            args.push(v.into());
        }
    }
    if spec.no_session {
        args.push("--no-session".into());
    } else if let Some(file) = spec.session_file.as_deref().filter(|f| !f.is_empty()) {
        args.push("--session".into());
        args.push(file.into());
    }
    if direnv {
        let mut wrapped = vec!["exec".into(), spec.cwd.clone(), pi_bin.to_string_lossy().into_owned()];
        wrapped.extend(args);
        ("direnv".into(), wrapped)
    } else {
        (pi_bin.to_path_buf(), args)
    }
}

/// `program args…` run after a workspace `[launch]` script (`<shell> -lc '<script>; exec
/// "$@"'`), inside `direnv exec <cwd>` when `direnv`.
pub fn wrapped(
    (program, args): (std::path::PathBuf, Vec<String>),
    launch: Option<&crate::tools::workspace::Launch>,
    direnv: bool,
    cwd: &str,
) -> (std::path::PathBuf, Vec<String>) {
    let mut line: Vec<String> = vec![program.to_string_lossy().into_owned()];
    line.extend(args);
    if let Some(l) = launch {
        let script = format!("{}\nexec \"$@\"", l.script);
        let mut w = vec![l.shell.clone(), "-lc".into(), script, "piface-launch".into()];
        w.extend(line);
        line = w;
    }
    if direnv {
        let mut w = vec!["direnv".into(), "exec".into(), cwd.to_string()];
        w.extend(line);
        line = w;
    }
    let program = line.remove(0);
    (program.into(), line)
}

pub(crate) fn direnv_available(wanted: bool) -> bool {
    wanted && which("direnv")
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

async fn write_stdin(mut stdin: ChildStdin, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(line) = rx.recv().await {
        let ok =
            stdin.write_all(&line).await.is_ok() && stdin.write_all(b"\n").await.is_ok() && stdin.flush().await.is_ok();
        if !ok {
            break;
        }
    }
}

/// Most events, and bytes, sent in one [`FromAgent::Events`].
const BATCH_EVENTS: usize = 256;
const BATCH_BYTES: usize = 1024 * 1024;

async fn read_stdout(
    mut stdout: impl AsyncRead + Unpin,
    sink: Option<EventSink>,
    ready: oneshot::Sender<()>,
    pid: u32,
) {
    let mut ready = Some(ready);
    let mut lines = LineSplitter::new(MAX_LINE);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut batch = Batch { seq: 0, events: Vec::new(), bytes: 0 };
    let mut eof = false;
    loop {
        let next = if eof { lines.finish(&mut buf) } else { lines.next(&mut buf) };
        let line = match next {
            Some(Line::Line(line)) => line,
            Some(Line::TooLong) => {
                warn!(pid, "pi wrote a line longer than {MAX_LINE} bytes; skipping it");
                let message = format!("pi wrote a line longer than {MAX_LINE} bytes; it was skipped");
                if !batch.send(&sink).await || !notice(&sink, message).await {
                    return;
                }
                continue;
            }
            None => {
                // Everything pi had written is parsed: hand it over before waiting for more.
                if !batch.send(&sink).await || eof {
                    return;
                }
                if buf.capacity() - buf.len() < 32 * 1024 {
                    buf.reserve(64 * 1024);
                }
                match stdout.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => eof = true,
                    Ok(_) => {}
                }
                continue;
            }
        };
        let line = match line.strip_suffix(b"\r") {
            Some(stripped) => line.slice(..stripped.len()),
            None => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let meta = match envelope::inspect(&line) {
            Ok(meta) => meta,
            Err(e) => {
                let preview = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                warn!(pid, "skipping a non-JSON line from pi ({e}): {preview}");
                continue;
            }
        };
        if meta.kind == "response" && meta.id.as_deref() == Some(READY_ID) {
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            continue;
        }
        batch.push(meta, line);
        if (batch.events.len() >= BATCH_EVENTS || batch.bytes >= BATCH_BYTES) && !batch.send(&sink).await {
            return;
        }
    }
}

/// Events read but not yet sent.
struct Batch {
    /// Sequence number of the next event.
    seq: u64,
    events: Vec<PiEvent>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, meta: EventMeta, line: Bytes) {
        self.bytes += line.len();
        self.events.push(PiEvent { seq: self.seq, meta, line, delta: None });
        self.seq += 1;
    }

    /// Sends what is pending; false when the receiving side is gone.
    async fn send(&mut self, sink: &Option<EventSink>) -> bool {
        if self.events.is_empty() {
            return true;
        }
        let events = std::mem::take(&mut self.events);
        self.bytes = 0;
        match sink {
            // Waiting here is the back-pressure: pi blocks on its pipe instead of the agent
            // buffering without bound.
            Some((session, out)) => out.send(FromAgent::Events { session: session.clone(), events }).await.is_ok(),
            None => true,
        }
    }
}

async fn notice(sink: &Option<EventSink>, message: String) -> bool {
    match sink {
        Some((session, out)) => out.send(FromAgent::Notice { session: Some(session.clone()), message }).await.is_ok(),
        None => true,
    }
}

async fn drain_stderr(mut pipe: impl AsyncRead + Unpin, tail: Arc<Mutex<StderrTail>>, pid: u32) {
    let mut chunk = vec![0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                debug!(pid, stderr = %String::from_utf8_lossy(&chunk[..n]).trim_end(), "pi stderr");
                tail.lock().unwrap().push(&chunk[..n]);
            }
        }
    }
}

/// The last [`STDERR_TAIL`] bytes of a stream.
#[derive(Default)]
struct StderrTail {
    buf: Vec<u8>,
}

impl StderrTail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > STDERR_TAIL {
            let cut = self.buf.len() - STDERR_TAIL;
            self.buf.drain(..cut);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SpawnSpec {
        SpawnSpec {
            cwd: "/w".into(),
            provider: Some("p".into()),
            model: Some("m".into()),
            thinking: None,
            session_file: Some("/s.jsonl".into()),
            no_session: false,
            use_direnv: true,
            project_dir: None,
        }
    }

    #[test]
    fn launch_scripts_wrap_pi_inside_direnv() {
        let launch = crate::tools::workspace::Launch {
            shell: "zsh".into(),
            apply_to: vec!["pi".into()],
            script: "export A=1".into(),
            timeout_seconds: 30,
        };
        let (p, a) = wrapped(("/bin/pi".into(), vec!["--mode".into(), "rpc".into()]), Some(&launch), true, "/w");
        assert_eq!(p, Path::new("direnv"));
        assert_eq!(
            a,
            ["exec", "/w", "zsh", "-lc", "export A=1\nexec \"$@\"", "piface-launch", "/bin/pi", "--mode", "rpc"]
        );
        let (p, a) = wrapped(("/bin/pi".into(), vec![]), None, false, "/w");
        assert_eq!((p.as_path(), a.len()), (Path::new("/bin/pi"), 0));
    }

    #[test]
    fn command_lines() {
        let (p, a) = command_line(Path::new("pi"), &spec(), false);
        assert_eq!(p, Path::new("pi"));
        assert_eq!(a, ["--mode", "rpc", "--provider", "p", "--model", "m", "--session", "/s.jsonl"]);
        let (p, a) = command_line(
            Path::new("/bin/pi"),
            &SpawnSpec { no_session: true, thinking: Some("low".into()), ..spec() },
            true,
        );
        assert_eq!(p, Path::new("direnv"));
        assert_eq!(
            a,
            [
                "exec",
                "/w",
                "/bin/pi",
                "--mode",
                "rpc",
                "--provider",
                "p",
                "--model",
                "m",
                "--thinking",
                "low",
                "--no-session"
            ]
        );
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut t = StderrTail::default();
        t.push(&vec![b'a'; STDERR_TAIL]);
        t.push(b"end");
        assert_eq!(t.text().len(), STDERR_TAIL);
        assert!(t.text().ends_with("aend"));
    }

    #[test]
    fn models_are_filtered_to_objects() {
        let got = models_from_response(
            br#"{"type":"response","success":true,"data":{"models":[{"id":"a"},3,"x",{"id":"b"}]}}"#,
        )
        .unwrap();
        assert_eq!(&got[..], br#"[{"id":"a"},{"id":"b"}]"#);
        assert_eq!(models_from_response(br#"{"success":false,"error":"nope"}"#).unwrap_err(), "nope");
    }
}
