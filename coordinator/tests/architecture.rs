//! ARCHITECTURE.md names files and folders of the tree in backticks; each must exist, so the
//! codemap cannot silently drift from the code. A name with a slash must be the end of a real
//! path (`coordinator/tests/deploy.rs`, `chat/reducer.ts`); a bare file name (`hub.rs`) must be
//! some file's name. Placeholders (`<target>`, `{id}`, `*`), URL paths (`/api/…`), home paths
//! (`~/…`) and what builds and runs make (the UI build, `deploy/prebuilt`, `deploy/secrets`)
//! are not files of the tree.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every file and folder of the tree, relative to the root, with `/` separators.
fn tree() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), ".git" | "target" | "node_modules" | ".pi-runtime" | ".svelte-kit") {
                continue;
            }
            let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            out.push(if is_dir { format!("{path}/") } else { path.clone() });
            if is_dir {
                walk(&entry.path(), &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), "", &mut out);
    out
}

/// Named in backticks but not files of the tree, each for its reason.
const NOT_IN_TREE: [&str; 6] = [
    "uploads/_shared/",             // made at run time in the data dir
    "worktrees/",                   // made at run time in the data dir
    "load/store_matrix_sync",       // a benchmark's label
    "piface/1",                     // the QUIC ALPN
    "docs/rpc.md",                  // pi's documentation, in its npm package
    "shared/contract/websocket.md", // the original's contract, beside the checkout
];

fn looks_like_a_path(token: &str) -> bool {
    const KINDS: [&str; 9] = [".rs", ".ts", ".svelte", ".mjs", ".sh", ".md", ".toml", ".yaml", ".cuh"];
    let placeholder = token.contains(['<', '{', '*', ' ', '(', ':', '=']);
    let elsewhere =
        token.starts_with('/') || token.starts_with('~') || token.starts_with('.') && !token.starts_with(".ci/");
    let made = ["frontend/build", "deploy/prebuilt", "deploy/secrets", "frontend/test-output"]
        .iter()
        .any(|m| token.starts_with(m));
    !placeholder
        && !elsewhere
        && !made
        && !NOT_IN_TREE.contains(&token)
        && (token.contains('/') || KINDS.iter().any(|k| token.ends_with(k)))
}

#[test]
fn every_path_architecture_md_names_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let tree = tree();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, chunk) in text.split('`').enumerate() {
        if i % 2 == 0 || !looks_like_a_path(chunk) {
            continue;
        }
        checked += 1;
        let found = if chunk.contains('/') {
            let with_dir = chunk.trim_end_matches('/');
            tree.iter().any(|p| {
                let p = p.trim_end_matches('/');
                p == with_dir || p.ends_with(&format!("/{with_dir}"))
            })
        } else {
            tree.iter().any(|p| p.rsplit('/').next() == Some(chunk))
        };
        if !found {
            missing.push(chunk.to_string());
        }
    }
    assert!(checked > 50, "only {checked} paths found: is the pattern still right?");
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}
