//! A field network for the reaper's tests: the server runs in a network
//! namespace of its own, reached through two veth pairs.
//!
//! - the **data** pair carries the clients' WebSockets; its namespace end is
//!   shaped with `tbf` (`netem` is not available here), so everything the
//!   server sends a client crosses a slow link, and its host end can be
//!   taken down (the slept laptop: nothing crosses any more);
//! - the **control** pair is never shaped nor cut: the test reads
//!   `/sessions` and `/metrics` through it, whatever happens to the data
//!   link.
//!
//! Each test picks its own `tag` (0–63), which names the namespace
//! (`skr-N`), its interfaces (`skr-Nd0`…) and its two private /30 subnets
//! (10.213.N.0 data, 10.214.N.0 control), so tests run in parallel. The
//! guard deletes the namespace and both pairs when dropped (on panic too);
//! a namespace left by a killed run is removed first. Needs root and
//! iproute2 (`ip`, `tc`); without them, [`Field::create`] panics with the
//! reason — a test that cannot build its network fails, it does not skip.

use std::{
    net::{Ipv4Addr, SocketAddr},
    process::{Command as StdCommand, Stdio},
};

use tokio::process::Command;

use crate::Server;

/// The port the server listens on inside the namespace (all addresses).
pub const PORT: u16 = 1318;

/// A namespace with a shaped data link and a clean control link.
#[derive(Debug)]
pub struct Field {
    tag: u8,
}

/// Runs a command, panicking with its stderr on failure.
fn run(prog: &str, args: &[&str]) {
    let out = StdCommand::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog} not runnable (iproute2 needed): {e}"));
    assert!(
        out.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn quiet(prog: &str, args: &[&str]) {
    let _ = StdCommand::new(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Field {
    /// Builds namespace `skr-TAG` with both links up and unshaped.
    pub fn create(tag: u8) -> Self {
        assert!(tag < 64, "tag {tag} out of range");
        let f = Self { tag };
        f.teardown();
        let ns = f.ns();
        run("ip", &["netns", "add", &ns]);
        for (kind, net) in [("d", 213), ("c", 214)] {
            let (host, inner) = (f.ifname(kind, 0), f.ifname(kind, 1));
            run(
                "ip",
                &["link", "add", &host, "type", "veth", "peer", "name", &inner],
            );
            run("ip", &["link", "set", &inner, "netns", &ns]);
            let base = format!("10.{net}.{tag}");
            run(
                "ip",
                &["addr", "add", &format!("{base}.1/30"), "dev", &host],
            );
            run("ip", &["link", "set", &host, "up"]);
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{base}.2/30"),
                    "dev",
                    &inner,
                ],
            );
            run("ip", &["-n", &ns, "link", "set", &inner, "up"]);
        }
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        f
    }

    fn ns(&self) -> String {
        format!("skr-{}", self.tag)
    }

    fn ifname(&self, kind: &str, end: u8) -> String {
        format!("skr-{}{kind}{end}", self.tag)
    }

    /// Where clients connect: the server over the data link.
    pub fn data_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 213, self.tag, 2), PORT))
    }

    /// Where the test asks the server how it is: over the control link.
    pub fn control_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 214, self.tag, 2), PORT))
    }

    /// Shapes what the server sends over the data link to `kbit` kbit/s
    /// (`tbf`, a 100 ms queue and a 16 KiB burst, about a home router's).
    pub fn shape(&self, kbit: u32) {
        run(
            "tc",
            &[
                "-n",
                &self.ns(),
                "qdisc",
                "replace",
                "dev",
                &self.ifname("d", 1),
                "root",
                "tbf",
                "rate",
                &format!("{kbit}kbit"),
                "burst",
                "16kb",
                "latency",
                "100ms",
            ],
        );
    }

    /// Takes the client's end of the data link down: from now on nothing
    /// crosses it either way, and the server is not told.
    pub fn link_down(&self) {
        run("ip", &["link", "set", &self.ifname("d", 0), "down"]);
    }

    /// Starts `bin serve` inside the namespace on every address, port
    /// [`PORT`], and waits until it answers over the control link.
    pub async fn serve(&self, bin: &str, args: &[&str]) -> Server {
        let log = std::env::temp_dir().join(format!(
            "seatkeeper-field-{}-{}.log",
            self.ns(),
            std::process::id()
        ));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(), bin, "serve", "--listen"])
            .arg(format!("0.0.0.0:{PORT}"))
            .args(args);
        Server::spawn(cmd, self.control_addr(), log).await
    }

    fn teardown(&self) {
        quiet("ip", &["netns", "del", &self.ns()]);
        for kind in ["d", "c"] {
            quiet("ip", &["link", "del", &self.ifname(kind, 0)]);
        }
    }
}

impl Drop for Field {
    fn drop(&mut self) {
        self.teardown();
    }
}
