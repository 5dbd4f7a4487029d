//! The terminal tab: one PTY per session running a login shell in the session's directory
//! (wezterm's `portable-pty`). Output goes on the session's terminal stream, numbered by byte
//! offset so the coordinator keeps scrollback and drops what a resend repeats.
//!
//! PTY I/O is blocking, so each terminal has a reader thread and a writer thread; neither
//! ever blocks the agent's tasks. A shell that exits ends its stream with
//! [`FromAgent::PtyExited`]; the next open starts a new one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use piface_shared::protocol::{FromAgent, SessionId};
use portable_pty::{CommandBuilder, MasterPty, PtySize};
use tracing::{debug, info, warn};

use crate::SessionStreams;

/// Bytes per output message (the original sends at most 4096 per frame).
const READ_CHUNK: usize = 4096;

struct Terminal {
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: std::sync::mpsc::Sender<Bytes>,
    /// The shell's pid; it leads its own session and process group.
    pid: Option<u32>,
}

impl Terminal {
    fn resize(&self, cols: u16, rows: u16) {
        let size = PtySize { rows: rows.clamp(1, 200), cols: cols.clamp(1, 500), pixel_width: 0, pixel_height: 0 };
        if let Err(e) = self.master.lock().unwrap().resize(size) {
            debug!("pty resize: {e}");
        }
    }

    /// Hangs up the shell's process group, and kills what survives after a grace period.
    fn hang_up(&self) {
        let Some(pid) = self.pid else { return };
        let pgid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGHUP);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGCONT);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        });
    }
}

/// The terminals of this agent's sessions.
pub struct Terminals {
    map: Mutex<HashMap<SessionId, Arc<Terminal>>>,
    streams: Arc<dyn SessionStreams>,
}

impl Terminals {
    /// No terminals yet; output goes to streams opened with `streams`.
    pub fn new(streams: Arc<dyn SessionStreams>) -> Arc<Terminals> {
        Arc::new(Terminals { map: Mutex::default(), streams })
    }

    /// Opens the session's terminal, or resizes the one it has.
    pub fn open(
        self: &Arc<Self>,
        session: &SessionId,
        cwd: &str,
        launch: Option<&super::workspace::Launch>,
        cols: u16,
        rows: u16,
    ) -> Result<(), String> {
        if let Some(t) = self.map.lock().unwrap().get(session) {
            t.resize(cols, rows);
            return Ok(());
        }
        let size = PtySize { rows: rows.clamp(1, 200), cols: cols.clamp(1, 500), pixel_width: 0, pixel_height: 0 };
        let pair = portable_pty::native_pty_system().openpty(size).map_err(|e| format!("opening a PTY: {e}"))?;
        // A login shell, after the workspace's launch script (in direnv when that applies, as
        // the original wraps only a launch script in it).
        let (program, args) = crate::child::wrapped(
            ("bash".into(), vec!["-l".into()]),
            launch,
            launch.is_some() && crate::child::direnv_available(true),
            cwd,
        );
        let mut cmd = CommandBuilder::new(program);
        cmd.args(&args);
        cmd.cwd(cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env("COLORTERM", "truecolor");
        let mut child = pair.slave.spawn_command(cmd).map_err(|e| format!("starting a shell: {e}"))?;
        // The parent's copy of the slave must go, or the reader never sees the shell hang up.
        drop(pair.slave);
        let pid = child.process_id();
        let mut reader = pair.master.try_clone_reader().map_err(|e| format!("PTY reader: {e}"))?;
        let mut writer = pair.master.take_writer().map_err(|e| format!("PTY writer: {e}"))?;
        let (input, keys) = std::sync::mpsc::channel::<Bytes>();
        let terminal = Arc::new(Terminal { master: Mutex::new(pair.master), input, pid });
        self.map.lock().unwrap().insert(session.clone(), terminal.clone());
        info!(session_id = %session, ?pid, "terminal opened");

        std::thread::Builder::new()
            .name("pty-writer".into())
            .spawn(move || {
                while let Ok(data) = keys.recv() {
                    if writer.write_all(&data).and_then(|()| writer.flush()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| e.to_string())?;

        let out = self.streams.open_terminal(session);
        let (terminals, session) = (self.clone(), session.clone());
        std::thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                let mut offset = 0u64;
                let mut buf = vec![0u8; READ_CHUNK];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break, // EIO once the shell and its children are gone
                        Ok(n) => {
                            let data = Bytes::copy_from_slice(&buf[..n]);
                            let msg = FromAgent::PtyOutput { session: session.clone(), offset, data };
                            offset += n as u64;
                            // Waits when the link is slow: the shell waits with it, as a
                            // terminal does.
                            if out.blocking_send(msg).is_err() {
                                warn!(session_id = %session, "terminal stream closed; output dropped");
                            }
                        }
                    }
                }
                let _ = child.wait();
                {
                    let mut map = terminals.map.lock().unwrap();
                    if map.get(&session).is_some_and(|t| Arc::ptr_eq(t, &terminal)) {
                        map.remove(&session);
                    }
                }
                info!(session_id = %session, "terminal closed");
                let _ = out.blocking_send(FromAgent::PtyExited { session });
            })
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Whether the session's terminal is running.
    pub fn is_open(&self, session: &SessionId) -> bool {
        self.map.lock().unwrap().contains_key(session)
    }

    /// Keystrokes for the session's terminal (dropped when it has none).
    pub fn input(&self, session: &SessionId, data: Bytes) {
        if let Some(t) = self.map.lock().unwrap().get(session) {
            let _ = t.input.send(data);
        }
    }

    /// Resizes the session's terminal.
    pub fn resize(&self, session: &SessionId, cols: u16, rows: u16) {
        if let Some(t) = self.map.lock().unwrap().get(session) {
            t.resize(cols, rows);
        }
    }

    /// Hangs up the session's terminal.
    pub fn close(&self, session: &SessionId) {
        let t = self.map.lock().unwrap().get(session).cloned();
        if let Some(t) = t {
            t.hang_up();
        }
    }

    /// Hangs up every terminal (the agent is stopping).
    pub fn close_all(&self) {
        let all: Vec<_> = self.map.lock().unwrap().values().cloned().collect();
        for t in all {
            t.hang_up();
        }
    }
}
