//! The workspace's `rust-version` is honest: no crate in the locked dependency graph (for this
//! platform, default features) needs a newer Rust than the one the workspace declares. Only one
//! toolchain can be installed where CI runs, so this reads each locked crate's own declared
//! minimum (`cargo metadata`) instead of building with the old compiler.

use std::process::Command;

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[test]
fn rust_version_covers_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = piface_test_support::pi_env::workspace_root();
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform"])
        .arg(&host)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let in_graph: std::collections::HashSet<&str> =
        m["resolve"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["id"].as_str()).collect();
    let packages = m["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "piface-coordinator")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the workspace declares a rust-version");
    let mut needs: Vec<(Vec<u64>, String)> = packages
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| in_graph.contains(id)))
        .filter_map(|p| {
            let rv = p["rust_version"].as_str()?;
            Some((version(rv), format!("{} {} needs {rv}", p["name"].as_str()?, p["version"].as_str()?)))
        })
        .collect();
    needs.sort();
    let (max, who) = needs.last().expect("some locked crate declares a rust-version");
    assert!(version(ours) >= *max, "rust-version {ours} is too old: {who}");
    eprintln!("rust-version {ours}; the most demanding locked crate: {who}");
}
