//! Network namespaces for tests: a second "machine" on this host, joined by a veth pair, whose
//! link can be cut. Needs root and iproute2 (CI runs as root).

use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace joined to this host by a veth pair. Removed on drop.
pub struct NetNs {
    /// The namespace's name (`ip netns exec NAME …`).
    pub name: String,
    host_if: String,
    /// The host's address on the link; the namespace is [`NetNs::ns_ip`].
    pub host_ip: String,
    /// The namespace's address on the link.
    pub ns_ip: String,
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip").args(args).output().expect("ip (iproute2) is installed");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl NetNs {
    /// Makes a namespace with its own loopback and a /30 link to the host.
    #[allow(clippy::new_without_default)]
    pub fn new() -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = (std::process::id() % 1_000) * 10 + NEXT.fetch_add(1, Ordering::Relaxed) % 10;
        let (name, host_if, ns_if) = (format!("pfns{id}"), format!("pfh{id}"), format!("pfn{id}"));
        let net = format!("10.{}.{}", 200 + id / 250 % 50, id % 250);
        let (host_ip, ns_ip) = (format!("{net}.1"), format!("{net}.2"));
        let _ = std::process::Command::new("ip").args(["netns", "del", &name]).output();
        let _ = std::process::Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        NetNs { name, host_if, host_ip, ns_ip }
    }

    /// Takes the host's end of the link down or up.
    pub fn set_link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.host_if]).output();
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
