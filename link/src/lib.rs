//! The cluster link: what both ends of the QUIC link between an agent and the coordinator
//! share, and nothing else.
//!
//! - [`wire`]: codec frames over async byte streams (QUIC streams, sockets), with a per-stream
//!   frame limit.
//! - [`tls`]: join tokens, the agent's identity files, the client TLS configurations, the
//!   QUIC transport timers, the ALPN, the crypto provider both sides name, and the private
//!   file helpers (`private_dir`, `write_file_atomic`).
//! - [`hello`]: the `Hello` either side sends first.
//! - [`close`]: the application close codes of agent connections (refused, removed, standby…).
//! - [`journal`]: the bookkeeping of one agent → coordinator stream across reconnects
//!   (bounded queue, resend window, delta-coding state), without I/O.
//! - [`trace`]: W3C trace context in request frames: the sender's span context out, the
//!   handler's remote parent in (a no-op until the binary turns exporting on).
//!
//! What it is not: the wire types and their byte codec are `piface-shared`'s (pure, no tokio,
//! no TLS: the fuzz targets and in-process tests use them alone); the agent's connection loop
//! (enrollment, reconnects, stream forwarding) is `piface_agent::link`; the coordinator's
//! listener and PKI are `piface_coordinator::{quic, pki}`. Nothing here knows about pi, sessions
//! or HTTP.

pub mod close;
pub mod journal;
pub mod tls;
pub mod trace;
pub mod wire;

use piface_shared::protocol::{Hello, PROTOCOL_VERSION};

/// Our hello, as either side sends it first: protocol and software versions, this machine's
/// host name and OS. An agent adds its GPUs and model services (`piface_agent::agent_hello`);
/// the coordinator sends it as it is.
pub fn hello(pi_version: Option<String>) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: hostname(),
        os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        pi_version,
        gpus: Vec::new(),
        speech: None,
        tts: None,
    }
}

/// This machine's host name; empty when it cannot be read.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
}
