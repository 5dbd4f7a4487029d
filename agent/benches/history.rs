//! History benchmark: `stream_history` over a generated ~64 MiB session file, next to `cat FILE > /dev/null`
//! on the same file, measured in the same run.
//!
//! `cargo bench -p piface-agent --bench history`
//!
//! The file has a few thousand ordinary turns (prompt, tool call, tool result, answer), four messages of
//! 5 MiB and an abandoned branch. Every measurement runs in a child process (this binary again, with
//! `--child`), so that its peak RSS, taken from `wait4`, is its own and not the generator's. The page cache
//! is warmed first; each figure is the best of a few rounds.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use piface_agent::history::{fork_messages, stream_history};
use serde_json::{json, Value};

const ROUNDS: usize = 3;
const TURNS: usize = 6000;
const BIG: usize = 5 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.jsonl");
    let file = path.to_str().unwrap();
    // The file is written by a child too: the parent's memory must stay small, since a child spawned with
    // vfork (as std does) inherits its parent's peak RSS as a floor for its own.
    let written = this(&["generate", file]);
    let size = std::fs::metadata(&path).unwrap().len();
    let mib = size as f64 / (1 << 20) as f64;
    println!("session file: {mib:.1} MiB, {} (written in {:.2?})", written.note, written.time);
    cat(&path); // warm the page cache

    let runs: [(&str, &dyn Fn() -> Measured); 3] = [
        ("cat > /dev/null", &|| cat(&path)),
        ("stream_history", &|| this(&["stream", file])),
        ("fork_messages", &|| this(&["fork", file])),
    ];
    // Per run: the best time with what that round printed, and the highest peak RSS of all rounds.
    let mut best: Vec<Measured> = runs.iter().map(|_| Measured::default()).collect();
    for _ in 0..ROUNDS {
        for ((_, run), best) in runs.iter().zip(&mut best) {
            let m = run();
            best.peak_rss_kib = best.peak_rss_kib.max(m.peak_rss_kib);
            if best.time.is_zero() || m.time < best.time {
                (best.time, best.note) = (m.time, m.note);
            }
        }
    }
    let mb = size as f64 / 1e6;
    let cat_time = best[0].time.as_secs_f64();
    for ((name, _), m) in runs.iter().zip(&best) {
        println!(
            "{name:<16} {:>8.1} ms {:>6.0} MB/s   peak RSS {:>6.1} MiB   {:>5.2}x cat's time   {}",
            m.time.as_secs_f64() * 1e3,
            mb / m.time.as_secs_f64(),
            m.peak_rss_kib as f64 / 1024.0,
            m.time.as_secs_f64() / cat_time,
            m.note,
        );
    }
}

/// One run of a child process.
#[derive(Debug, Default)]
struct Measured {
    /// From spawn to exit.
    time: Duration,
    /// The child's peak RSS (`ru_maxrss`).
    peak_rss_kib: u64,
    /// What the child printed.
    note: String,
}

/// `cat FILE > /dev/null`.
fn cat(path: &Path) -> Measured {
    let mut cmd = Command::new("cat");
    cmd.arg(path).stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()));
    measure(cmd)
}

/// This binary with `--child WHAT FILE`.
fn this(args: &[&str]) -> Measured {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--child").args(args).stdout(Stdio::piped());
    measure(cmd)
}

// The child is reaped by wait4, which std's `Child` does not know about.
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command) -> Measured {
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes to the two places it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let time = start.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
    // The child prints one short line, which the pipe holds until it is read here.
    let mut note = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut note).unwrap();
    }
    // ru_maxrss is in KiB on Linux.
    Measured { time, peak_rss_kib: usage.ru_maxrss as u64, note: note.trim().to_string() }
}

/// The measured work, in the child. Prints the in-process time and the RSS before it started.
fn child(what: &str, path: &Path) {
    let before = vm_hwm_kib();
    let start = Instant::now();
    let note = match what {
        "stream" => {
            let mut bytes = 0usize;
            let summary = stream_history(path, &mut |piece| {
                bytes += piece.len();
                Ok(())
            })
            .unwrap();
            format!("{} messages, {:.1} MB out", summary.messages, bytes as f64 / 1e6)
        }
        "fork" => format!("{} user messages", fork_messages(path).unwrap().len()),
        "generate" => {
            let (entries, messages) = generate(path);
            println!("{entries} entries, {messages} messages on the active branch");
            return;
        }
        _ => panic!("unknown child {what}"),
    };
    let elapsed = start.elapsed();
    println!(
        "({note}; {:.1} ms in process, RSS before {:.1} MiB)",
        elapsed.as_secs_f64() * 1e3,
        before as f64 / 1024.0
    );
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Writes the session file; returns the number of entries and of messages on the active branch.
fn generate(path: &Path) -> (usize, usize) {
    let mut w = Writer { out: BufWriter::new(std::fs::File::create(path).unwrap()), leaf: None, next: 0, entries: 0 };
    writeln!(
        w.out,
        "{}",
        json!({"type": "session", "version": 3, "id": "0199c0de-0000-7000-8000-00000000beef",
               "timestamp": "2025-06-01T10:00:00.000Z", "cwd": "/work/project"})
    )
    .unwrap();
    w.entry("model_change", json!({"provider": "anthropic", "modelId": "claude-sonnet-4-5"}));
    let mut messages = 0;
    for n in 0..TURNS {
        // Every 1500 turns one message is large: a long tool output, or a pasted file in a prompt.
        let big = n % 1500 == 750;
        let prompt = if big && n / 1500 == 1 { text(n, BIG) } else { format!("Step {n}: fix the failing test.") };
        let output = if big && n / 1500 != 1 { text(n, BIG) } else { text(n, 200 + (n * 7919) % 12000) };
        messages += w.turn(n, &prompt, &output);
        if n == TURNS / 2 {
            // An abandoned branch: a few turns, then back to where it started.
            let back = w.leaf.clone();
            for m in 0..5 {
                w.turn(TURNS + m, "try another way", &text(m, 200_000));
            }
            w.leaf = back;
        }
    }
    w.out.flush().unwrap();
    (w.entries, messages)
}

struct Writer {
    out: BufWriter<std::fs::File>,
    leaf: Option<String>,
    next: u32,
    entries: usize,
}

impl Writer {
    fn entry(&mut self, kind: &str, fields: Value) {
        self.next += 1;
        let id = format!("{:08x}", self.next.wrapping_mul(2654435761));
        let mut entry = json!({"type": kind, "id": id, "parentId": self.leaf, "timestamp": "2025-06-01T10:00:00.000Z"});
        entry.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        serde_json::to_writer(&mut self.out, &entry).unwrap();
        self.out.write_all(b"\n").unwrap();
        self.leaf = Some(id);
        self.entries += 1;
    }

    /// A prompt, a tool call, its result and an answer; returns the number of messages.
    fn turn(&mut self, n: usize, prompt: &str, output: &str) -> usize {
        let usage = json!({"input": 12000 + n, "output": 300, "cacheRead": 11000, "cacheWrite": 0,
                           "totalTokens": 23300 + n, "cost": {"input": 0.036, "output": 0.0045, "cacheRead": 0.0033,
                           "cacheWrite": 0, "total": 0.0438}});
        let call = format!("toolu_{n:020}");
        let messages = [
            json!({"role": "user", "content": [{"type": "text", "text": prompt}], "timestamp": 1_750_000_000_000u64 + n as u64}),
            json!({"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "The test fails because the fixture is stale; look at it first."},
                    {"type": "toolCall", "id": call, "name": "bash", "arguments": {"command": format!("cargo test step_{n} 2>&1 | tail -50")}}],
                   "api": "anthropic-messages", "provider": "anthropic", "model": "claude-sonnet-4-5", "usage": usage,
                   "stopReason": "toolUse", "timestamp": 1_750_000_000_001u64}),
            json!({"role": "toolResult", "toolCallId": call, "toolName": "bash",
                   "content": [{"type": "text", "text": output}], "isError": false, "timestamp": 1_750_000_000_002u64}),
            json!({"role": "assistant", "content": [{"type": "text", "text": format!("Fixed step {n}: the fixture now matches the \"new\" format.\n\nRan the tests again; all pass.")}],
                   "api": "anthropic-messages", "provider": "anthropic", "model": "claude-sonnet-4-5", "usage": usage,
                   "stopReason": "stop", "timestamp": 1_750_000_000_003u64}),
        ];
        for message in &messages {
            self.entry("message", json!({ "message": message }));
        }
        messages.len()
    }
}

/// About `len` bytes of compiler-like output, with quotes, tabs and non-ASCII text to escape.
fn text(seed: usize, len: usize) -> String {
    let mut s = String::with_capacity(len + 100);
    let mut i = seed;
    while s.len() < len {
        i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 1;
        let _ = writeln!(
            s,
            "error[E0{:03}]: mismatched types at src/module_{}.rs:{}:{}\n\t= note: expected `\"{}\"`, found `Größe` ({})",
            i % 1000,
            i % 97,
            i % 5000,
            i % 80,
            i % 31,
            i
        );
    }
    s
}
