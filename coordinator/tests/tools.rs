//! Host tools through `piface serve`'s in-process agent: files (inside `--fs-root` only), git,
//! workspace config, uploads into pi's session directory, and the terminal.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use piface_test_support::piface::{git, git_repo, workspace_bin, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

async fn serve(pi: std::path::PathBuf, envs: Vec<(String, String)>, roots: &[&Path]) -> Piface {
    let mut args = Vec::new();
    for r in roots {
        args.push("--fs-root".to_string());
        args.push(r.display().to_string());
    }
    Piface::start(Options { bin: PIFACE.into(), pi_bin: pi, envs, args, data_dir: None }).await.unwrap()
}

fn enc(p: &Path) -> String {
    percent_encoding::percent_encode(p.as_os_str().as_bytes(), percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn raw(server: &Piface, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = server.http.get(server.url(path)).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn files_are_served_from_inside_the_roots_only() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("src")).unwrap();
    std::fs::create_dir_all(r.join("docs")).unwrap();
    std::fs::write(r.join("README.md"), "# Title\n\n$x^2$\n").unwrap();
    std::fs::write(r.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(r.join("page.html"), "<script>alert(1)</script>").unwrap();
    let png: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &(0..=255u8).collect::<Vec<_>>()].concat();
    std::fs::write(r.join("pixel.png"), &png).unwrap();
    std::fs::write(r.join("blob.bin"), [0u8, 159, 146, 150]).unwrap();
    std::fs::write(r.join("limit.txt"), vec![b'a'; 512 * 1024]).unwrap();
    std::fs::write(r.join("over.txt"), vec![b'a'; 512 * 1024 + 1]).unwrap();
    std::fs::write(r.join("eight.bin"), vec![7u8; 8 * 1024 * 1024]).unwrap();
    std::fs::write(r.join("nine.bin"), vec![7u8; 8 * 1024 * 1024 + 1]).unwrap();
    std::fs::write(r.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), "latin-1 name").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), r.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), r.join("docs/secret-link.txt")).unwrap();

    let server = serve(workspace_bin("fake-pi").unwrap(), vec![], &[r]).await;

    let (status, list) = server.get(&format!("/api/fs/list?path={}", enc(r))).await.unwrap();
    assert_eq!(status, 200, "{list}");
    let entries = list["entries"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"caf\u{fffd}.txt"), "a non-UTF-8 name is listed: {names:?}");
    let paths: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "sorted by path");
    assert!(entries.iter().any(|e| e["name"] == "src" && e["is_dir"] == true));
    assert!(entries.iter().any(|e| e["name"] == "README.md" && e["is_dir"] == false));

    let (_, done) = server.get(&format!("/api/fs/complete?prefix={}", enc(&r.join("s")))).await.unwrap();
    assert_eq!(done["matches"], json!([r.join("src")]));
    let (_, done) = server.get(&format!("/api/fs/complete?prefix={}", enc(outside.path()))).await.unwrap();
    assert_eq!(done["matches"], json!([]), "nothing outside the roots");

    let file = |name: &str| format!("/api/fs/file?path={}", enc(&r.join(name)));
    let (status, md) = server.get(&file("README.md")).await.unwrap();
    assert_eq!(
        (status, md["kind"].as_str(), md["content"].as_str()),
        (200, Some("markdown"), Some("# Title\n\n$x^2$\n"))
    );
    let (_, code) = server.get(&file("src/main.rs")).await.unwrap();
    assert_eq!(code["kind"], "code");
    assert!(code["raw_url"].is_null());
    let (_, bin) = server.get(&file("blob.bin")).await.unwrap();
    assert_eq!((bin["kind"].as_str(), bin["size"].as_u64()), (Some("binary"), Some(4)));
    assert!(bin["content"].is_null() && bin["raw_url"].is_null());
    let (_, img) = server.get(&file("pixel.png")).await.unwrap();
    assert_eq!((img["kind"].as_str(), img["mime_type"].as_str()), (Some("image"), Some("image/png")));
    let (status, headers, bytes) = raw(&server, img["raw_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, png, "raw bytes are identical");
    assert_eq!(headers["content-type"], "image/png");
    let (_, html) = server.get(&file("page.html")).await.unwrap();
    let (_, headers, _) = raw(&server, html["raw_url"].as_str().unwrap()).await;
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox"), "HTML cannot script Piface");

    assert_eq!(server.get(&file("limit.txt")).await.unwrap().0, 200);
    let (status, body) = server.get(&file("over.txt")).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (413, Some("File too large to preview. Max 524288 bytes.")));
    let rawp = |name: &str| format!("/api/fs/raw?path={}", enc(&r.join(name)));
    let (status, _, bytes) = raw(&server, &rawp("eight.bin")).await;
    assert_eq!((status, bytes.len()), (200, 8 * 1024 * 1024));
    assert!(bytes.iter().all(|&b| b == 7));
    let (status, _, _) = raw(&server, &rawp("nine.bin")).await;
    assert_eq!(status, 413);

    // Escapes: `..`, a symlinked directory, a symlinked file, a plain outside path.
    for path in [
        r.join("../").join(outside.path().file_name().unwrap()).join("secret.txt"),
        r.join("escape/secret.txt"),
        r.join("docs/secret-link.txt"),
        outside.path().join("secret.txt"),
    ] {
        let (status, body) = server.get(&format!("/api/fs/file?path={}", enc(&path))).await.unwrap();
        assert_eq!(status, 403, "{} → {body}", path.display());
        let (status, _, bytes) = raw(&server, &format!("/api/fs/raw?path={}", enc(&path))).await;
        assert_eq!(status, 403);
        assert!(!String::from_utf8_lossy(&bytes).contains("secret\""), "nothing leaks");
    }
    let (status, body) = server.get(&format!("/api/fs/list?path={}", enc(outside.path()))).await.unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.get("/api/fs/list?path=relative/dir").await.unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get(&file("missing.txt")).await.unwrap();
    assert_eq!((status, body["detail"].as_str().unwrap().starts_with("Not a file")), (400, true));
    let (status, body) = server.get(&file("src")).await.unwrap();
    assert_eq!(status, 400, "a directory is not a file: {body}");
    let (status, body) = server.get(&format!("/api/fs/list?path={}&agent=nobody", enc(r))).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (404, Some("Agent not found: nobody")));
    assert_eq!(server.get("/api/fs/list").await.unwrap().0, 422, "path is required");
}

#[tokio::test]
async fn git_status_and_diffs_of_a_session() {
    let repo = git_repo();
    let d = repo.path();
    std::fs::write(d.join("kept.txt"), "one\ntwo\n").unwrap();
    std::fs::write(d.join("staged.txt"), "s\n").unwrap();
    std::fs::write(d.join("doomed.txt"), "bye\n").unwrap();
    std::fs::write(d.join("old-name.txt"), "a\nb\nc\nd\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "files"]);
    git(d, &["mv", "old-name.txt", "renamed.txt"]);
    std::fs::write(d.join("kept.txt"), "one\nTWO\n").unwrap();
    std::fs::write(d.join("staged.txt"), "s2\n").unwrap();
    git(d, &["add", "staged.txt"]);
    std::fs::remove_file(d.join("doomed.txt")).unwrap();
    std::fs::write(d.join("new.txt"), "fresh\n").unwrap();

    let server = serve(workspace_bin("fake-pi").unwrap(), vec![], &[]).await;
    let id = server.new_session(&json!({"working_dir": d, "shared": true})).await;
    let (status, st) = server.get(&format!("/api/sessions/{id}/git/status")).await.unwrap();
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["is_repo"], true);
    assert_eq!(st["repo_root"].as_str().map(Path::new), Some(std::fs::canonicalize(d).unwrap().as_path()));
    assert!(st["head"].as_str().is_some_and(|h| h.len() >= 7));
    let files: Vec<(String, String)> = st["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["status"].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(String, String)> =
        [("doomed.txt", " D"), ("kept.txt", " M"), ("new.txt", "??"), ("renamed.txt", "R "), ("staged.txt", "M ")]
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .to_vec();
    assert_eq!(files, want);
    let staged = st["files"].as_array().unwrap().iter().find(|f| f["path"] == "staged.txt").unwrap();
    assert_eq!((staged["staged"].as_bool(), staged["unstaged"].as_bool()), (Some(true), Some(false)));

    let diff = |q: &str| {
        let url = format!("/api/sessions/{id}/git/diff?{q}");
        let server = &server;
        async move { server.get(&url).await }
    };
    let (_, kept) = diff("path=kept.txt").await.unwrap();
    assert!(kept["diff"].as_str().unwrap().contains("-two\n+TWO"), "{kept}");
    let (_, staged) = diff("path=staged.txt&staged=true").await.unwrap();
    assert!(staged["diff"].as_str().unwrap().contains("-s\n+s2"), "{staged}");
    let (_, unstaged) = diff("path=staged.txt").await.unwrap();
    assert_eq!(unstaged["diff"], "", "nothing unstaged in a staged file");
    let (_, new) = diff("path=new.txt").await.unwrap();
    assert!(new["diff"].as_str().unwrap().contains("+fresh"), "an untracked file shows as added: {new}");
    let (_, moved) = diff("path=renamed.txt&staged=1").await.unwrap();
    let moved = moved["diff"].as_str().unwrap();
    assert!(moved.contains("rename from old-name.txt") && moved.contains("rename to renamed.txt"), "{moved}");
    let (_, gone) = diff("path=doomed.txt").await.unwrap();
    assert!(gone["diff"].as_str().unwrap().contains("-bye"), "{gone}");
    let (_, all) = diff("").await.unwrap();
    assert!(all["path"].is_null() && all["diff"].as_str().unwrap().contains("kept.txt"));
    let (status, body) = diff("path=../outside").await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("Path must stay inside the repository")));
    assert_eq!(diff("path=%20").await.unwrap().0, 400);
    assert_eq!(diff("staged=perhaps").await.unwrap().0, 422);

    let plain = tempfile::tempdir().unwrap();
    let id2 = server.new_session(&json!({"working_dir": plain.path(), "shared": true})).await;
    let (status, st) = server.get(&format!("/api/sessions/{id2}/git/status")).await.unwrap();
    assert_eq!((status, st["is_repo"].as_bool()), (200, Some(false)));
    let (status, d2) = server.get(&format!("/api/sessions/{id2}/git/diff?path=x")).await.unwrap();
    assert_eq!((status, d2["is_repo"].as_bool()), (200, Some(false)));
    assert_eq!(server.get("/api/sessions/nope/git/status").await.unwrap().0, 404);
}

#[tokio::test]
async fn workspace_config_round_trips_and_refuses_bad_input() {
    let project = tempfile::tempdir().unwrap();
    let server = serve(workspace_bin("fake-pi").unwrap(), vec![], &[project.path()]).await;
    let q = format!("/api/workspace/config?path={}", enc(project.path()));
    let (status, got) = server.get(&q).await.unwrap();
    assert_eq!((status, got["has_config_file"].as_bool()), (200, Some(false)));
    let mut config = got["config"].clone();
    config["ui"]["theme_override"] = "dark".into();
    let put = |body: Value| {
        let server = &server;
        async move {
            let resp = server.http.put(server.url("/api/workspace/config")).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, saved) = put(json!({"path": project.path(), "config": config})).await;
    assert_eq!(status, 200, "{saved}");
    let (_, again) = server.get(&q).await.unwrap();
    assert_eq!(
        (again["has_config_file"].as_bool(), again["config"]["ui"]["theme_override"].as_str()),
        (Some(true), Some("dark"))
    );
    let (status, body) = put(json!({"path": project.path(), "config": {"version": 3}})).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().starts_with("Invalid config"), "{body}");
    assert_eq!(put(json!({"config": config})).await.1["detail"], "path is required");
    assert_eq!(put(json!({"path": project.path(), "config": {}})).await.1["detail"], "config is required");
    let (status, _) = server.get("/api/workspace/config?path=/no/such/dir").await.unwrap();
    assert_eq!(status, 400);
}

/// The terminal socket of a session.
async fn terminal(
    server: &Piface,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = server.ws_request(&format!("/ws/sessions/{id}/terminal"));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Reads terminal output until it contains `needle`; everything read.
async fn read_until<S>(ws: &mut S, needle: &str) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("no {needle:?} in the terminal ({other:?}): {}", String::from_utf8_lossy(&seen)),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn the_terminal_echoes_resizes_and_keeps_its_scrollback() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(workspace_bin("fake-pi").unwrap(), vec![], &[]).await;
    let id = server.new_session(&json!({"working_dir": dir.path(), "shared": true})).await;

    let mut ws = terminal(&server, &id).await;
    ws.send(Message::Text(r#"{"type":"resize","cols":101,"rows":33}"#.into())).await.unwrap();
    ws.send(Message::Binary("echo hi-$((6*7)); stty size; pwd; echo done-$((1+1))\n".into())).await.unwrap();
    // One read to the last marker: output arrives in chunks of any size.
    let out = read_until(&mut ws, "done-2").await;
    assert!(out.contains("hi-42"), "echoed: {out}");
    assert!(out.contains("33 101"), "resized: {out}");
    assert!(out.contains(dir.path().file_name().unwrap().to_str().unwrap()), "in the session's directory: {out}");

    // A second viewer sees the same output, live.
    let mut other = terminal(&server, &id).await;
    let _ = read_until(&mut other, "hi-42").await; // scrollback first
    ws.send(Message::Binary("echo both-$((2+3))\n".into())).await.unwrap();
    let _ = read_until(&mut ws, "both-5").await;
    let _ = read_until(&mut other, "both-5").await;
    drop(ws);
    drop(other);

    // Reconnecting brings the scrollback back.
    let mut again = terminal(&server, &id).await;
    let back = read_until(&mut again, "both-5").await;
    assert!(back.contains("hi-42"), "scrollback kept across reconnects: {back}");

    // A session that is not live has no terminal.
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    let mut closed = terminal(&server, &id).await;
    loop {
        match closed.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4004);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a 4004 close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn uploads_reach_pi_follow_branches_and_go_with_their_last_session() {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let repo = git_repo();
    let server = serve(pi_bin().unwrap(), env.envs(), &[]).await;
    let body = json!({"working_dir": repo.path(), "provider": "fake", "model": "fake-model", "shared": true});
    let id = server.new_session(&body).await;
    let upload = |id: &str, files: Value| {
        let server = &server;
        let id = id.to_string();
        async move { server.post(&format!("/api/sessions/{id}/uploads"), &json!({ "files": files })).await.unwrap() }
    };
    let b64 = |s: &str| base64_encode(s.as_bytes());
    let (status, body) =
        upload(&id, json!([{"file_name": "a.txt", "mime_type": "text/plain", "data": b64("A")}])).await;
    assert_eq!(status, 409, "no session file before the first prompt: {body}");

    let (mut ws, _) = server.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "first"})).await.unwrap();
    ws.until_type("agent_end").await.unwrap();
    // The session file is known once pi reported it.
    let mut tries = 0;
    while server.get(&format!("/api/sessions/{id}")).await.unwrap().1["session_file"].is_null() {
        tries += 1;
        assert!(tries < 100, "session file never known");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, json_up) =
        upload(&id, json!([{"file_name": "../notes.txt", "mime_type": "", "data": b64("hello notes")}])).await;
    assert_eq!(status, 200, "{json_up}");
    let first = &json_up["uploads"][0];
    assert_eq!((first["file_name"].as_str(), first["size"].as_u64()), (Some("notes.txt"), Some(11)));
    assert_eq!(first["mime_type"], "application/octet-stream");
    // Multipart, streamed.
    let part = reqwest::multipart::Part::bytes(vec![9u8; 300_000])
        .file_name("data.bin")
        .mime_str("application/x-test")
        .unwrap();
    let resp = server
        .http
        .post(server.url(&format!("/api/sessions/{id}/uploads")))
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let multi: Value = resp.json().await.unwrap();
    let second = &multi["uploads"][0];
    assert_eq!((second["size"].as_u64(), second["mime_type"].as_str()), (Some(300_000), Some("application/x-test")));
    let paths = [first["path"].as_str().unwrap().to_string(), second["path"].as_str().unwrap().to_string()];
    assert!(paths.iter().all(|p| p.contains("/uploads/_shared/") && Path::new(p).is_file()));
    assert_eq!(std::fs::read(&paths[0]).unwrap(), b"hello notes");

    // Limits.
    let big = base64_encode(&vec![0u8; 10 * 1024 * 1024 + 1]);
    let (status, body) = upload(&id, json!([{"file_name": "big", "data": big}])).await;
    assert_eq!((status, body["detail"].as_str()), (413, Some("File too large. Max 10485760 bytes.")));
    assert_eq!(upload(&id, json!([{"file_name": "x", "data": "***"}])).await.0, 400);
    assert_eq!(upload(&id, json!([])).await.1["detail"], "No files provided");
    let nine: Vec<Value> = (0..9).map(|i| json!({"file_name": format!("f{i}"), "data": b64("x")})).collect();
    assert_eq!(upload(&id, Value::Array(nine)).await.1["detail"], "Too many files. Max 8 files per request.");

    // A prompt naming them gives pi the manifest.
    let ids = [first["upload_id"].clone(), second["upload_id"].clone()];
    ws.send(&json!({"type": "prompt", "message": "look", "piface_upload_ids": ids})).await.unwrap();
    ws.until_type("agent_end").await.unwrap();
    let asked = llm.chat_requests().last().unwrap().body.to_string();
    assert!(asked.contains("Attached files (session-local file paths):"), "{asked}");
    assert!(paths.iter().all(|p| asked.contains(p.as_str())), "{asked}");
    ws.send(&json!({"type": "prompt", "message": "x", "piface_upload_ids": ["not-an-upload"]})).await.unwrap();
    let err = ws.until_type("piface_error").await.unwrap().pop().unwrap();
    assert_eq!(err["message"], "Unknown upload id: not-an-upload");

    // A branch inherits the references.
    let (status, fork) = server.get(&format!("/api/sessions/{id}/fork-messages")).await.unwrap();
    assert_eq!(status, 200, "{fork}");
    let entry = fork["messages"][0]["entryId"].as_str().unwrap().to_string();
    let (status, branched) =
        server.post(&format!("/api/sessions/{id}/branch"), &json!({"entry_id": entry})).await.unwrap();
    assert_eq!(status, 201, "{branched}");
    let bid = branched["session"]["piface_id"].as_str().unwrap().to_string();
    let (mut bws, _) = server.connect(&bid).await.unwrap();
    bws.send(&json!({"type": "prompt", "message": "", "piface_upload_ids": [ids[0].clone()]})).await.unwrap();
    bws.until_type("agent_end").await.unwrap();
    let asked = llm.chat_requests().last().unwrap().body.to_string();
    assert!(asked.contains("Please inspect these files.") && asked.contains(paths[0].as_str()), "{asked}");

    // An upload of another directory's session stays when this directory goes.
    let other_repo = git_repo();
    let other = server
        .new_session(
            &json!({"working_dir": other_repo.path(), "provider": "fake", "model": "fake-model", "shared": true}),
        )
        .await;
    let (mut ows, _) = server.connect(&other).await.unwrap();
    ows.send(&json!({"type": "prompt", "message": "hi"})).await.unwrap();
    ows.until_type("agent_end").await.unwrap();
    while server.get(&format!("/api/sessions/{other}")).await.unwrap().1["session_file"].is_null() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, kept) = upload(&other, json!([{"file_name": "keep.txt", "data": b64("keep")}])).await;
    let kept_path = kept["uploads"][0]["path"].as_str().unwrap().to_string();

    // Removing the directory's records (both sessions) deletes the blobs they referenced.
    let (status, _) = server.post("/api/directories/remove", &json!({"path": repo.path()})).await.unwrap();
    assert_eq!(status, 200);
    assert!(paths.iter().all(|p| !Path::new(p).exists()), "blobs without references are deleted");
    assert!(Path::new(&kept_path).is_file(), "a referenced blob stays");
    assert_eq!(server.get(&format!("/api/sessions/{bid}")).await.unwrap().0, 404);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_non_shared_session_gets_a_worktree_with_the_workspace_config_applied() {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let repo = git_repo();
    let d = repo.path();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/file.txt"), "tracked\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "sub"]);
    std::fs::write(d.join(".env"), "SECRET=1\n").unwrap(); // untracked: only `files.copy` brings it
    std::fs::create_dir_all(d.join(".piface")).unwrap();
    std::fs::write(
        d.join(".piface/workspace.toml"),
        r#"version = 1
[files]
copy = [".env"]
[bootstrap]
script = "touch bootstrapped"
[launch]
script = "export PIFACE_LAUNCH=from-launch"
apply_to = ["pi", "pty"]
[ui]
skin_override = "winamp"
"#,
    )
    .unwrap();
    let server = serve(pi_bin().unwrap(), env.envs(), &[]).await;
    let body = json!({"working_dir": d.join("sub"), "provider": "fake", "model": "fake-model",
                      "session_name": "Fix the Bug", "shared": false});
    let (status, refused) = server.post("/api/sessions", &body).await.unwrap();
    assert_eq!(status, 409, "the file's commands wait for trust: {refused}");
    trust_workspace(&server, &d.join("sub")).await;
    let record = server.create_session(&body).await.unwrap();
    assert_eq!(record["workspace_mode"], "git_worktree", "{record}");
    assert_eq!(record["project_dir"].as_str().map(Path::new), Some(std::fs::canonicalize(d).unwrap().as_path()));
    assert_eq!(record["project_subdir"], "sub");
    assert_eq!(record["workspace_skin_override"], "winamp");
    let root = Path::new(record["workspace_root"].as_str().unwrap()).to_path_buf();
    assert!(root.starts_with(env.home()), "the default root is under the agent's home: {}", root.display());
    assert!(record["workspace_name"].as_str().unwrap().starts_with("fix-the-bug-"), "{record}");
    let exec = Path::new(record["execution_dir"].as_str().unwrap()).to_path_buf();
    assert_eq!(exec, root.join("sub"));
    assert_eq!(std::fs::read_to_string(exec.join("file.txt")).unwrap(), "tracked\n");
    assert_eq!(std::fs::read_to_string(root.join(".env")).unwrap(), "SECRET=1\n", "files.copy applied");
    assert!(root.join("bootstrapped").is_file(), "bootstrap ran in the worktree root");
    let branch = record["workspace_branch"].as_str().unwrap();
    assert!(branch.starts_with("piface/fix-the-bug-"), "{branch}");
    let branches =
        std::process::Command::new("git").args(["branch", "--list", branch]).current_dir(d).output().unwrap();
    assert!(String::from_utf8_lossy(&branches.stdout).contains(branch), "the branch exists in the project");

    // pi and the terminal run after the launch script.
    let id = record["piface_id"].as_str().unwrap();
    let (mut ws, _) = server.connect(id).await.unwrap();
    ws.send(&json!({"type": "bash", "command": "echo \"launch=$PIFACE_LAUNCH\"; pwd"})).await.unwrap();
    let resp = ws.until_type("response").await.unwrap().pop().unwrap();
    let out = resp["data"]["output"].as_str().unwrap();
    assert!(out.contains("launch=from-launch") && out.contains(&*exec.to_string_lossy()), "{resp}");
    let mut term = terminal(&server, id).await;
    term.send(Message::Binary("echo \"pty=$PIFACE_LAUNCH\"\n".into())).await.unwrap();
    read_until(&mut term, "pty=from-launch").await;

    // The same directory with `shared: true` runs in place; a bad config is refused clearly.
    let shared = server.create_session(&json!({"working_dir": d, "shared": true})).await.unwrap();
    assert_eq!((shared["workspace_mode"].as_str(), shared["execution_dir"].as_str()), (Some("shared"), d.to_str()));
    std::fs::write(d.join(".piface/workspace.toml"), "version = 1\n[git]\ncreate_branch = true\ndetach = true\n")
        .unwrap();
    let (status, err) = server.post("/api/sessions", &json!({"working_dir": d, "shared": false})).await.unwrap();
    assert_eq!(status, 400, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("cannot both be true"), "{err}");
}

/// Reviews and trusts the workspace file of `dir`'s project through the API; its trust info.
async fn trust_workspace(server: &Piface, dir: &Path) -> Value {
    let (status, info) = server.get(&format!("/api/workspace/trust?path={}", enc(dir))).await.unwrap();
    assert_eq!(status, 200, "{info}");
    let (status, trusted) =
        server.post("/api/workspace/trust", &json!({"path": dir, "sha256": info["sha256"]})).await.unwrap();
    assert_eq!((status, trusted["trusted"].as_bool()), (200, Some(true)), "{trusted}");
    trusted
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits for the terminal socket to close; its code and reason.
async fn terminal_close<S>(ws: &mut S) -> (u16, String)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return (u16::from(frame.code), frame.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_committed_workspace_file_runs_nothing_until_trusted_and_asks_again_after_a_change() {
    let markers = tempfile::tempdir().unwrap();
    let (boot, launch) = (markers.path().join("bootstrap-ran"), markers.path().join("launch-ran"));
    let repo = git_repo();
    let d = repo.path();
    std::fs::create_dir_all(d.join(".piface")).unwrap();
    let file = format!(
        "version = 1\n[bootstrap]\nscript = \"touch {}\"\n[launch]\nscript = \"touch {}\"\napply_to = [\"pi\", \"pty\"]\n",
        boot.display(),
        launch.display()
    );
    std::fs::write(d.join(".piface/workspace.toml"), &file).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "a hostile workspace file"]);
    // Worktrees go under HOME: a temporary one, inside the harness's file root.
    let home = tempfile::tempdir().unwrap();
    let envs = vec![("HOME".to_string(), home.path().display().to_string())];
    let server = serve(workspace_bin("fake-pi").unwrap(), envs, &[]).await;
    let worktrees = || {
        let out = std::process::Command::new("git").args(["worktree", "list"]).current_dir(d).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };

    // Nothing runs: not in a worktree (bootstrap, launch), not in place (launch), no worktree made.
    for shared in [false, true] {
        let (status, err) = server.post("/api/sessions", &json!({"working_dir": d, "shared": shared})).await.unwrap();
        assert_eq!(status, 409, "{err}");
        let detail = err["detail"].as_str().unwrap();
        assert!(detail.starts_with("Workspace not trusted") && detail.contains("[launch]"), "{detail}");
        assert!(detail.contains(&sha256_hex(file.as_bytes())) && detail.contains("/api/workspace/trust"), "{detail}");
        assert_eq!(detail.contains("[bootstrap]"), !shared, "{detail}");
    }
    assert!(!boot.exists() && !launch.exists(), "no workspace command ran");
    assert_eq!(worktrees(), 1, "no worktree was made");
    assert_eq!(server.get("/api/sessions").await.unwrap().1["sessions"], json!([]));

    // The API shows the commands and the hash of the file's bytes.
    let (status, info) = server.get(&format!("/api/workspace/trust?path={}", enc(d))).await.unwrap();
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sha256"], sha256_hex(file.as_bytes()));
    assert_eq!((info["needs_trust"].as_bool(), info["trusted"].as_bool()), (Some(true), Some(false)));
    assert_eq!(info["trusted_sha256"], Value::Null);
    assert_eq!(info["commands"][0]["section"], "bootstrap");
    assert_eq!(info["commands"][0]["script"], format!("touch {}", boot.display()));
    assert_eq!(
        (info["commands"][1]["section"].as_str(), info["commands"][1]["shell"].as_str()),
        (Some("launch"), Some("bash"))
    );
    assert_eq!(info["project_dir"].as_str().map(Path::new), Some(std::fs::canonicalize(d).unwrap().as_path()));
    // Trust needs the hash of what is there now.
    let (status, err) =
        server.post("/api/workspace/trust", &json!({"path": d, "sha256": "0".repeat(64)})).await.unwrap();
    assert_eq!(status, 409, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("changed since it was shown"), "{err}");
    assert_eq!(server.post("/api/workspace/trust", &json!({"path": d, "sha256": "nope"})).await.unwrap().0, 400);
    assert!(!boot.exists() && !launch.exists());

    trust_workspace(&server, d).await;
    let record = server.create_session(&json!({"working_dir": d, "shared": false})).await.unwrap();
    assert!(boot.exists(), "bootstrap ran once trusted");
    assert!(launch.exists(), "launch ran once trusted");
    let id = record["piface_id"].as_str().unwrap().to_string();

    // A change to the file asks again, for sessions and for the terminal.
    std::fs::remove_file(&boot).unwrap();
    std::fs::remove_file(&launch).unwrap();
    let changed = format!("{file}# one more line\n");
    std::fs::write(d.join(".piface/workspace.toml"), &changed).unwrap();
    let (_, info) = server.get(&format!("/api/workspace/trust?path={}", enc(d))).await.unwrap();
    assert_eq!(
        (info["trusted"].as_bool(), info["sha256"].as_str()),
        (Some(false), Some(&*sha256_hex(changed.as_bytes())))
    );
    assert_eq!(info["trusted_sha256"], sha256_hex(file.as_bytes()), "what was trusted before");
    let (status, err) = server.post("/api/sessions", &json!({"working_dir": d, "shared": true})).await.unwrap();
    assert_eq!(status, 409, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("changed since it was trusted"), "{err}");
    let mut term = terminal(&server, &id).await;
    let (code, reason) = terminal_close(&mut term).await;
    assert_eq!(code, 4409, "{reason}");
    assert!(reason.starts_with("Workspace not trusted"), "{reason}");
    assert!(!boot.exists() && !launch.exists(), "nothing ran after the change");

    trust_workspace(&server, d).await;
    let mut term = terminal(&server, &id).await;
    term.send(Message::Binary("echo trusted-$((40+2))\n".into())).await.unwrap();
    read_until(&mut term, "trusted-42").await;
    assert!(launch.exists(), "the terminal's launch ran once the new content was trusted");
    assert!(!boot.exists(), "bootstrap runs for new worktrees only");
}

#[tokio::test]
async fn sessions_direnv_and_worktrees_stay_inside_the_roots_and_saves_follow_no_link() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    let server = serve(workspace_bin("fake-pi").unwrap(), vec![], &[r]).await;

    // A session's working directory and direnv allow outside the roots.
    let (status, err) =
        server.post("/api/sessions", &json!({"working_dir": outside.path(), "shared": true})).await.unwrap();
    assert_eq!(status, 403, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("Outside the allowed file roots"), "{err}");
    std::os::unix::fs::symlink(outside.path(), r.join("out")).unwrap();
    let (status, _) =
        server.post("/api/sessions", &json!({"working_dir": r.join("out"), "shared": true})).await.unwrap();
    assert_eq!(status, 403, "through a symlink too");
    assert_eq!(server.get("/api/sessions").await.unwrap().1["sessions"], json!([]));
    std::fs::write(outside.path().join(".envrc"), "export EVIL=1\n").unwrap();
    let (status, err) = server.post("/api/direnv/allow", &json!({"working_dir": outside.path()})).await.unwrap();
    assert_eq!(status, 403, "{err}");
    let (status, _) = server.post("/api/direnv/allow", &json!({"working_dir": r.join("out")})).await.unwrap();
    assert_eq!(status, 403);

    // A committed workspace file may not put worktrees outside the roots (it runs nothing, so
    // it needs no trust).
    let repo = r.join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::create_dir(repo.join(".piface")).unwrap();
    std::fs::write(
        repo.join(".piface/workspace.toml"),
        format!("version = 1\n[workspace]\nroot = \"{}/wt\"\n", outside.path().display()),
    )
    .unwrap();
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    let (status, err) = server.post("/api/sessions", &json!({"working_dir": repo, "shared": false})).await.unwrap();
    assert_eq!(status, 403, "{err}");
    assert!(!outside.path().join("wt").exists(), "no worktree outside the roots");

    // A committed `workspace.toml.tmp` symlink is not followed by a save.
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, repo.join(".piface/workspace.toml.tmp")).unwrap();
    let (_, got) = server.get(&format!("/api/workspace/config?path={}", enc(&repo))).await.unwrap();
    let mut config = got["config"].clone();
    config["workspace"]["root"] = "~/.local/share/piface/worktrees/{project_slug}".into();
    let resp = server
        .http
        .put(server.url("/api/workspace/config"))
        .json(&json!({"path": repo, "config": config}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me", "the link was not followed");
    let saved = std::fs::read_to_string(repo.join(".piface/workspace.toml")).unwrap();
    assert!(saved.contains("worktrees/{project_slug}"), "{saved}");
}

#[tokio::test]
async fn a_session_made_before_the_roots_were_narrowed_does_not_resume_outside_them() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let data = tempfile::tempdir().unwrap();
    let start = |fs_root: &Path| Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: vec!["--fs-root".into(), fs_root.display().to_string()],
        data_dir: Some(data.path().to_path_buf()),
    };
    let server = Piface::start(start(root.path())).await.unwrap();
    let id = server.new_session(&json!({"working_dir": a, "shared": true})).await;
    let (status, _) = server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    assert_eq!(status, 200);
    server.stop().await.unwrap();

    // The same data dir, the roots narrowed to `b`: the record is there, its directory is not
    // inside the roots any more.
    let server = Piface::start(start(&b)).await.unwrap();
    let (status, err) = server.post(&format!("/api/sessions/{id}/resume"), &json!({})).await.unwrap();
    assert_eq!(status, 403, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("Outside the allowed file roots"), "{err}");
    let (_, record) = server.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_ne!(record["status"], "live", "{record}");
}

#[tokio::test]
async fn the_data_dir_inside_the_home_root_is_neither_listed_nor_served() {
    let home = tempfile::tempdir().unwrap();
    let h = std::fs::canonicalize(home.path()).unwrap();
    let data = h.join(".local/share/piface");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(data.join("auth/token"), h.join("token-link")).unwrap();
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![("HOME".into(), h.display().to_string())],
        // The default root, the home directory, holds the default data dir.
        args: vec!["--fs-root".into(), h.display().to_string()],
        data_dir: Some(data.clone()),
    })
    .await
    .unwrap();
    let token = data.join("auth/token");
    assert!(token.is_file(), "the login token is in the data dir");

    let (status, listed) = server.get(&format!("/api/fs/list?path={}", enc(&h.join(".local/share")))).await.unwrap();
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["entries"], json!([]), "the data dir is not listed: {listed}");
    for dir in [data.clone(), data.join("auth")] {
        let (status, body) = server.get(&format!("/api/fs/list?path={}", enc(&dir))).await.unwrap();
        assert_eq!(status, 403, "{}: {body}", dir.display());
    }
    for file in [token.clone(), data.join("state.redb"), h.join("token-link")] {
        let (status, body) = server.get(&format!("/api/fs/file?path={}", enc(&file))).await.unwrap();
        assert_eq!(status, 403, "{}: {body}", file.display());
        let (status, _, bytes) = raw(&server, &format!("/api/fs/raw?path={}", enc(&file))).await;
        assert_eq!(status, 403, "{}", file.display());
        assert!(!String::from_utf8_lossy(&bytes).contains(server.token.as_deref().unwrap()));
    }
    let (_, done) = server.get(&format!("/api/fs/complete?prefix={}", enc(&h.join(".local/share/pi")))).await.unwrap();
    assert_eq!(done["matches"], json!([]));
    // The rest of home is served as before.
    std::fs::write(h.join("notes.md"), "# mine\n").unwrap();
    let (status, note) = server.get(&format!("/api/fs/file?path={}", enc(&h.join("notes.md")))).await.unwrap();
    assert_eq!((status, note["content"].as_str()), (200, Some("# mine\n")));
}
