//! `fake-llm`: runs the scriptable fake OpenAI-compatible server from `piface_test_support::fake_llm` as its
//! own process, for tests (or manual runs) that start pi outside the test process.
//!
//! Usage: `fake-llm [--port N] [--host ADDR]` (defaults: port 0 = ephemeral, host 127.0.0.1).
//! The first line on stdout is `listening on http://HOST:PORT` (flushed at once, so a parent can read the
//! port from it); the server then runs until killed or interrupted.

use std::io::Write;
use std::process::ExitCode;

use tokio::net::TcpListener;

const USAGE: &str = "usage: fake-llm [--port N] [--host ADDR]\n\
    \n\
    Serves a deterministic fake OpenAI-compatible API (GET /v1/models, POST /v1/chat/completions).\n\
    --port N     port to listen on; 0 (default) picks a free one\n\
    --host ADDR  address to bind (default 127.0.0.1)\n\
    Prints `listening on http://HOST:PORT` as the first stdout line.";

struct Args {
    host: String,
    port: u16,
}

/// Hand-rolled parsing keeps the binary free of a CLI dependency; accepts `--opt value` and `--opt=value`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args { host: "127.0.0.1".to_string(), port: 0 };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value()?;
                out.port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "--host" => out.host = value()?,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(out))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-llm: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-llm: cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake-llm: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SocketAddr's Display brackets IPv6 hosts, so this is a valid URL either way.
    println!("listening on http://{addr}");
    // The parent blocks on this line; flush explicitly rather than rely on stdout's buffering mode.
    let _ = std::io::stdout().flush();

    tokio::select! {
        res = piface_test_support::fake_llm::serve(listener) => {
            if let Err(e) = res {
                eprintln!("fake-llm: server error: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
