//! Test support for Piface.
//!
//! - [`fake_hub`]: a Hugging Face hub stand-in serving model files slowly, for download tests.
//! - [`fake_llm`]: a scriptable, deterministic OpenAI-compatible server (also the `fake-llm` binary) that the
//!   real `pi` can talk to offline; answers are driven by `[[directive:…]]`s in the user's prompt.
//! - [`pi_env`]: an isolated `HOME`/pi agent directory wired to that server, and [`pi_bin`], the pi that tests
//!   run (installed on demand by `scripts/install-pi.sh`).
//! - [`netns`]: network namespaces, a second "machine" whose link can be cut.
//! - [`otlp`]: an OTLP/HTTP receiver stand-in that collects the spans processes export.
//! - [`piface`]: runs the real `piface` binary on a free port, with HTTP and WebSocket clients.
//! - [`push_service`]: a Web Push service stand-in that checks VAPID tokens and keeps the encrypted
//!   pushes, with subscribers that decrypt them.
//! - [`sim_agent`]: light simulated agents speaking the real protocol, for cluster benchmarks.
//! - [`udp_proxy`]: a UDP relay that cuts or degrades a QUIC link on loopback.
//! - the `fake-pi` binary: a pi stand-in for edge cases (garbage lines, huge lines, crashes) and
//!   for the relay benchmark's upper bound.

pub mod etcd;
pub mod fake_hub;
pub mod fake_llm;
pub mod netns;
pub mod otlp;
pub mod pi_env;
pub mod piface;
pub mod push_service;
pub mod sim_agent;
pub mod udp_proxy;

pub use fake_llm::{router, spawn_fake_llm, spawn_fake_llm_at, Directives, FakeLlm, RecordedRequest};
pub use pi_env::{pi_bin, workspace_root, PiEnv};
