//! `!!` commands: `bash -lc <command>` in a session's directory, run by the agent itself and
//! never seen by pi.
//!
//! Unlike the original (no limits at all), output is capped at [`MAX_OUTPUT`] per stream and
//! the run at the agent's shell timeout, after which the command's process group is killed.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use piface_shared::protocol::ShellOutput;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Most bytes kept of each of stdout and stderr.
pub const MAX_OUTPUT: usize = 8 * 1024 * 1024;

/// Runs `command` with `bash -lc` in `cwd` (inside `direnv exec <cwd>` when `direnv`, the
/// environment pi has); stdout then stderr, as the original reports them.
pub async fn run(command: &str, cwd: &str, timeout: Duration, direnv: bool) -> Result<ShellOutput, String> {
    let mut cmd = if direnv {
        let mut c = Command::new("direnv");
        // Without its "loading .envrc" lines in the command's output.
        c.args(["exec", cwd, "bash", "-lc", command]).env("DIRENV_LOG_FORMAT", "");
        c
    } else {
        let mut c = Command::new("bash");
        c.arg("-lc").arg(command);
        c
    };
    let mut child = cmd
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("failed to run bash: {e}"))?;
    let group = Pid::from_raw(child.id().unwrap_or_default() as i32);
    let stdout = tokio::spawn(read_capped(child.stdout.take().expect("piped")));
    let stderr = tokio::spawn(read_capped(child.stderr.take().expect("piped")));
    let (exit_code, cancelled) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status.map_err(|e| e.to_string())?.code(), false),
        Err(_) => {
            let _ = killpg(group, Signal::SIGKILL);
            (child.wait().await.ok().and_then(|s| s.code()), true)
        }
    };
    // Background jobs the command left behind would hold the pipes open; they go with it.
    let _ = killpg(group, Signal::SIGKILL);
    let (out, out_cut) = stdout.await.unwrap_or_default();
    let (err, err_cut) = stderr.await.unwrap_or_default();
    let mut output = String::from_utf8_lossy(&out).into_owned();
    output.push_str(&String::from_utf8_lossy(&err));
    Ok(ShellOutput { output, exit_code, truncated: out_cut || err_cut, cancelled })
}

/// Reads a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn read_capped(mut pipe: impl AsyncRead + Unpin) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut cut = false;
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = MAX_OUTPUT - kept.len();
                kept.extend_from_slice(&chunk[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdout_then_stderr_in_cwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), "x").unwrap();
        let out = run("ls; echo oops >&2; exit 3", dir.path().to_str().unwrap(), Duration::from_secs(10), false)
            .await
            .unwrap();
        assert_eq!(out.output, "f.txt\noops\n");
        assert_eq!(out.exit_code, Some(3));
        assert!(!out.cancelled && !out.truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let out = run("sleep 30 & sleep 30", "/", Duration::from_millis(300), false).await.unwrap();
        assert!(out.cancelled);
    }

    #[tokio::test]
    async fn output_is_capped() {
        let out = run("head -c 9000000 /dev/zero", "/", Duration::from_secs(10), false).await.unwrap();
        assert!(out.truncated);
        assert_eq!(out.output.len(), MAX_OUTPUT);
    }

    #[tokio::test]
    async fn missing_directory_is_an_error() {
        assert!(run("true", "/nonexistent/dir", Duration::from_secs(1), false).await.is_err());
    }
}
