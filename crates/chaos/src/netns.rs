//! The `blackhole` scenario's network: a namespace joined to the host by a
//! veth pair on a private /30 used only inside this machine. Taking the
//! namespace's end down mid-stream is the slept laptop: nothing the client
//! sends or acknowledges arrives any more, and the host end loses carrier,
//! so nothing the server sends arrives either.
//!
//! One namespace at a time (the addresses are fixed, so that the
//! loopback-only guard in [`crate::target`] can name them). The guard
//! deletes the namespace — and with it the veth pair — when dropped, on
//! error paths too.

use std::{net::Ipv4Addr, process::Command};

use crate::ChaosError;

/// The namespace's name.
pub const NAME: &str = "skchaos";
/// Host end of the veth pair.
pub const HOST_IF: &str = "skchaos0";
/// Namespace end of the veth pair.
pub const NS_IF: &str = "skchaos1";
/// Host-side address (the server listens here for `blackhole`).
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 1);
/// Namespace-side address (the client's).
pub const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 2);

/// Why the scenario cannot run here, or `None` when it can (root, and an
/// `ip` that knows network namespaces).
pub fn unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        return Some("needs root (network namespaces)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("iproute2 `ip` not found: {e}")),
    }
}

/// A live namespace. One this guard created is deleted on drop; one that
/// was already there (made by `--scenario netns-up`) gets its link back up.
#[derive(Debug)]
pub struct Netns {
    owned: bool,
}

/// Whether the namespace exists now.
pub fn exists() -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w == NAME)
        })
        .unwrap_or(false)
}

impl Netns {
    /// Uses the namespace if it exists (and leaves it on drop), else
    /// creates one (deleted on drop).
    pub fn acquire() -> Result<Self, ChaosError> {
        if let Some(why) = unavailable() {
            return Err(ChaosError::Netns(why));
        }
        if exists() {
            let ns = Self { owned: false };
            ns.link_up()?;
            return Ok(ns);
        }
        Self::create()
    }

    /// Brings the namespace's end of the link (back) up.
    pub fn link_up(&self) -> Result<(), ChaosError> {
        ip(&["-n", NAME, "link", "set", NS_IF, "up"])
    }

    /// Keeps the namespace after the guard is dropped.
    pub fn leak(mut self) {
        self.owned = false;
    }

    /// Creates the namespace and the veth pair, both ends up. A namespace
    /// of the same name left by a killed earlier run is removed first.
    pub fn create() -> Result<Self, ChaosError> {
        if let Some(why) = unavailable() {
            return Err(ChaosError::Netns(why));
        }
        teardown();
        // From here on, the guard cleans up whatever got made.
        let ns = Self { owned: true };
        let host = format!("{HOST_ADDR}/30");
        let inner = format!("{NS_ADDR}/30");
        ip(&["netns", "add", NAME])?;
        ip(&[
            "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF,
        ])?;
        ip(&["link", "set", NS_IF, "netns", NAME])?;
        ip(&["addr", "add", &host, "dev", HOST_IF])?;
        ip(&["link", "set", HOST_IF, "up"])?;
        ip(&["-n", NAME, "addr", "add", &inner, "dev", NS_IF])?;
        ip(&["-n", NAME, "link", "set", NS_IF, "up"])?;
        ip(&["-n", NAME, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Takes the namespace's end of the link down: from now on nothing
    /// crosses.
    pub fn link_down(&self) -> Result<(), ChaosError> {
        ip(&["-n", NAME, "link", "set", NS_IF, "down"])
    }

    /// A command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", NAME]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            teardown();
        } else {
            let _ = self.link_up();
        }
    }
}

/// Deletes the namespace and the host end (either may be absent).
pub fn teardown() {
    let quiet = |args: &[&str]| {
        let _ = Command::new("ip")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    quiet(&["netns", "del", NAME]);
    quiet(&["link", "del", HOST_IF]);
}

fn ip(args: &[&str]) -> Result<(), ChaosError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| ChaosError::Netns(format!("ip {}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ChaosError::Netns(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
