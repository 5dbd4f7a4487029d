//! Wire types and codec spoken between the Piface coordinator and its agents.
//!
//! This crate is deliberately small and free of runtime concerns: it knows nothing about tokio,
//! axum, quinn or processes. It holds
//! - [`protocol`]: the messages that cross the agent⇄coordinator link, versioned by
//!   [`protocol::PROTOCOL_VERSION`];
//! - [`codec`]: the one place that turns those messages into length-prefixed bincode frames;
//! - [`envelope`]: the cheap look at a pi JSON line that tells its `type` and `id` without
//!   decoding the rest, so events can be relayed as the bytes pi wrote;
//! - [`delta`]: streaming updates as a skeleton plus what changed, decoded back to pi's bytes;
#![warn(missing_docs)]

#[cfg(test)]
mod alloc_count;
pub mod codec;
pub mod delta;
pub mod envelope;
pub mod protocol;
