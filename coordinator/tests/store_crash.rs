//! The store survives `kill -9` at any moment: a child process (this test binary, re-run with
//! an environment variable) writes transactions in a loop; it is killed at random points, and
//! after each kill the store must open and hold a consistent, complete state.
//!
//! Each step is two transactions: a `merge` that adds session `s<n>` (`session_name = n`) and
//! its upload list `[n]` to two tables at once, then a `put_session` that rewrites `s<n/2>`.
//! Consistency means every session has exactly its upload list (no half-applied transaction),
//! the sessions form an unbroken run `s0..s<max>` (no commit lost before a later one), and every
//! record reads back whole.
//!
//! The file has its own `main` (`harness = false` in `Cargo.toml`): run with the variable set it
//! is the writer, otherwise it runs the one test and reports it as libtest would. A writer that
//! is a `#[test]` of its own would show as one more passing test that tested nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use piface_coordinator::record::{SessionRecord, Status};
use piface_coordinator::store::{RedbStore, Snapshot, StateStore};

const CHILD_ENV: &str = "PIFACE_STORE_CRASH_DIR";

fn record(n: u64) -> SessionRecord {
    let mut r: SessionRecord = serde_json::from_value(
        serde_json::json!({"piface_id": format!("s{n}"), "working_dir": "/w", "status": "live"}),
    )
    .unwrap();
    r.session_name = Some(n.to_string());
    r.status = if n.is_multiple_of(2) { Status::Live } else { Status::Closed };
    r
}

/// The child: writes steps until it is killed. Says `ready` once the store is open.
fn writer(dir: &Path) {
    let store = RedbStore::open(&dir.join("state.redb")).unwrap();
    let start = store.load().unwrap().sessions.len() as u64;
    println!("ready");
    for n in start.. {
        let step = Snapshot {
            sessions: vec![record(n)],
            session_uploads: [(format!("s{n}"), vec![n.to_string()])].into_iter().collect(),
            ..Snapshot::default()
        };
        store.merge(&step).unwrap();
        store.put_session(&record(n / 2)).unwrap();
    }
}

fn check(dir: &Path) -> u64 {
    let store = RedbStore::open(&dir.join("state.redb")).expect("the store opens after a crash");
    let snap = store.load().expect("the store reads after a crash");
    let mut names: Vec<u64> =
        snap.sessions.iter().map(|r| r.session_name.as_deref().unwrap().parse().unwrap()).collect();
    names.sort();
    assert!(names.iter().enumerate().all(|(i, n)| *n == i as u64), "a commit went missing: {names:?}");
    for r in &snap.sessions {
        assert_eq!(r, &{
            let mut want = record(r.session_name.as_deref().unwrap().parse().unwrap());
            want.created_at.clone_from(&r.created_at);
            want.last_active.clone_from(&r.last_active);
            want
        });
        assert_eq!(
            snap.session_uploads.get(&r.piface_id),
            Some(&vec![r.session_name.clone().unwrap()]),
            "{}",
            r.piface_id
        );
    }
    assert_eq!(snap.session_uploads.len(), snap.sessions.len());
    names.len() as u64
}

fn kill_9_during_writes_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut total = 0;
    // Deterministic but varied kill points.
    for round in 0..12u64 {
        let mut child =
            Command::new(&exe).env(CHILD_ENV, dir.path()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0, "writer ended early");
            if line.contains("ready") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20 + (round * 37) % 150));
        child.kill().unwrap();
        child.wait().unwrap();
        let now = check(dir.path());
        assert!(now >= total, "sessions went missing: {now} < {total}");
        total = now;
    }
    assert!(total > 12, "the writer made progress ({total} sessions)");
}

/// The tests of this file, by name.
const TESTS: &[(&str, fn())] =
    &[("kill_9_during_writes_leaves_a_consistent_store", kill_9_during_writes_leaves_a_consistent_store)];

/// The writer when [`CHILD_ENV`] is set; otherwise the tests that libtest's arguments select
/// (name filters, `--exact`, `--skip`, `--list`, `--ignored`), reported in libtest's words and
/// exit status so `cargo test` reads it like any other test binary.
fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        writer(Path::new(&dir));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut filters, mut skips, mut exact, mut list, mut ignored_only) = (Vec::new(), Vec::new(), false, false, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--ignored" => ignored_only = true,
            "--skip" => skips.extend(it.next().cloned()),
            // Options that take a value in the next argument.
            "--test-threads" | "--format" | "--color" | "--logfile" | "--shuffle-seed" | "-Z" => {
                it.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter.to_string()),
        }
    }
    let matches = |name: &str, pattern: &str| if exact { name == pattern } else { name.contains(pattern) };
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|_| !ignored_only)
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|s| matches(name, s)))
        .collect();
    if list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    let started = std::time::Instant::now();
    println!("\nrunning {} test{}", selected.len(), if selected.len() == 1 { "" } else { "s" });
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(test);
        println!("test {name} ... {}", if outcome.is_ok() { "ok" } else { "FAILED" });
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        TESTS.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
