//! Store benchmark: loading a registry of 10,000 sessions at start-up from `state.redb`, next
//! to parsing the same sessions from a `state.json` in the original's format and to `cat` of
//! that file, in the same run.
//!
//! `cargo bench -p piface-coordinator --bench store [-- SESSIONS]`
//!
//! Each measurement runs in a child process (this binary with `--child`) that reports its own
//! time and peak RSS (`VmHWM`), so one measurement's memory does not count in another's.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use piface_coordinator::record::SessionRecord;
use piface_coordinator::sessions::Registry;
use piface_coordinator::store::{parse_original_state, RedbStore, Snapshot, StateStore};
use serde_json::json;

const ROUNDS: usize = 3;

fn record(n: usize) -> SessionRecord {
    serde_json::from_value(json!({
        "piface_id": format!("{:08x}-0000-4000-8000-{:012x}", n, n),
        "working_dir": format!("/home/user/projects/project-{}", n % 50),
        "status": if n.is_multiple_of(20) { "live" } else { "closed" },
        "session_file": format!("/home/user/.pi/agent/sessions/--home-user-projects-project-{}--/2026-05-01T12-00-00-000Z_{n:08x}.jsonl", n % 50),
        "model_provider": "openai-codex", "model_id": "gpt-5.5", "thinking_level": "medium",
        "session_name": format!("session number {n}"),
        "project_dir": format!("/home/user/projects/project-{}", n % 50),
        "execution_dir": format!("/home/user/projects/project-{}", n % 50),
        "created_at": format!("2026-05-01T12:{:02}:{:02}.{:06}Z", (n / 60) % 60, n % 60, n),
        "last_active": "2026-05-02T08:00:00.000000Z"
    }))
    .unwrap()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn child(what: &str, dir: &Path, n: usize) {
    let started = Instant::now();
    let note = match what {
        "generate" => {
            let store = RedbStore::open(&dir.join("state.redb")).unwrap();
            let mut sessions = serde_json::Map::new();
            for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                let snap = Snapshot { sessions: chunk.iter().map(|i| record(*i)).collect(), ..Snapshot::default() };
                for r in &snap.sessions {
                    sessions.insert(r.piface_id.clone(), serde_json::to_value(r).unwrap());
                }
                store.merge(&snap).unwrap();
            }
            let state = json!({ "sessions": sessions, "uploads": {}, "session_upload_ids": {} });
            std::fs::write(dir.join("state.json"), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
            format!("{n} sessions")
        }
        "redb" => {
            let store = RedbStore::open(&dir.join("state.redb")).unwrap();
            let snap = store.load().unwrap();
            let count = snap.sessions.len();
            let registry = Registry::new(Arc::new(store), snap, Default::default());
            assert_eq!(registry.list().len(), count);
            format!("{count} sessions")
        }
        "json" => {
            let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
            format!("{} sessions", parse_original_state(&text).unwrap().sessions.len())
        }
        other => panic!("unknown child {other}"),
    };
    println!("{}\t{}\t{note}", started.elapsed().as_micros(), peak_rss_kib());
}

struct Measured {
    time: Duration,
    rss_kib: u64,
    note: String,
}

fn run_child(what: &str, dir: &Path, n: usize) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child", what, dir.to_str().unwrap(), &n.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.trim().splitn(3, '\t');
    Measured {
        time: Duration::from_micros(parts.next().unwrap().parse().unwrap()),
        rss_kib: parts.next().unwrap().parse().unwrap(),
        note: parts.next().unwrap_or_default().to_string(),
    }
}

fn cat(path: &Path) -> Measured {
    let started = Instant::now();
    let status = Command::new("sh").arg("-c").arg(format!("cat '{}' > /dev/null", path.display())).status().unwrap();
    assert!(status.success());
    Measured { time: started.elapsed(), rss_kib: 0, note: String::new() }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], Path::new(&args[i + 2]), args[i + 3].parse().unwrap());
        return;
    }
    let n: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let generated = run_child("generate", dir.path(), n);
    let redb_size = std::fs::metadata(dir.path().join("state.redb")).unwrap().len();
    let json_size = std::fs::metadata(dir.path().join("state.json")).unwrap().len();
    println!(
        "generated {} in {:.2?}: state.redb {:.1} MiB, state.json {:.1} MiB",
        generated.note,
        generated.time,
        redb_size as f64 / 1048576.0,
        json_size as f64 / 1048576.0
    );
    let json_path = dir.path().join("state.json");
    cat(&json_path); // warm the page cache
    let mut best: Vec<Option<Measured>> = vec![None, None, None];
    for _ in 0..ROUNDS {
        let runs = [cat(&json_path), run_child("json", dir.path(), n), run_child("redb", dir.path(), n)];
        for (slot, m) in best.iter_mut().zip(runs) {
            if slot.as_ref().is_none_or(|b| m.time < b.time) {
                *slot = Some(m);
            }
        }
    }
    let cat_time = best[0].as_ref().unwrap().time.as_secs_f64();
    for (name, m) in ["cat state.json > /dev/null", "parse state.json (original format)", "load state.redb + registry"]
        .iter()
        .zip(&best)
    {
        let m = m.as_ref().unwrap();
        let rss = if m.rss_kib > 0 {
            format!("peak RSS {:6.1} MiB", m.rss_kib as f64 / 1024.0)
        } else {
            String::from("                     ")
        };
        println!("{name:<36} {:>9.2?}  {rss}  {:6.1}x cat's time  {}", m.time, m.time.as_secs_f64() / cat_time, m.note);
    }
}
