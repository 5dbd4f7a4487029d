//! Application close codes of agent connections: what the coordinator tells an agent when it
//! ends the connection, so the agent can tell "try again later" from "try elsewhere".

/// The certificate is not (or no longer) that of an enrolled agent.
pub const REFUSED: u32 = 1;
/// The agent was removed while connected.
pub const REMOVED: u32 = 2;
/// Protocol violation (bad first frame, unexpected stream).
pub const PROTOCOL: u32 = 3;
/// Enrollment took longer than its deadline.
pub const TIMEOUT: u32 = 4;
/// This coordinator is a standby (another one leads the cluster). The reason is the leader's
/// agent address (`HOST:PORT`) when the standby knows it, else empty: the agent goes there, or
/// to the next coordinator it was given.
pub const STANDBY: u32 = 5;

/// The leader's address a [`STANDBY`] close names, if any (at most 255 bytes of UTF-8).
pub fn standby_redirect(reason: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(reason).ok()?.trim();
    (!text.is_empty() && text.len() <= 255).then_some(text)
}
