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
//! Each namespace has a `tag` (0–63), which names it (`skr-N`), its
//! interfaces (`skr-Nd0`…) and its two private /30 subnets (10.213.N.0
//! data, 10.214.N.0 control), so tests run in parallel: tests take the
//! first free tag below 40, the benchmark suite fixed ones from 40. The
//! guard deletes the namespace and both pairs when dropped (on panic too);
//! a namespace left by a killed run is removed first. Needs root and
//! iproute2 (`ip`, `tc`); without them, [`Field::create`] says why. The
//! benchmark suite and the integration tests both build on it.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Command, Stdio},
};

use crate::ChaosError;

/// The port the server listens on inside the namespace (all addresses).
pub const PORT: u16 = 1318;

/// A namespace with a shaped data link and a clean control link.
#[derive(Debug)]
pub struct Field {
    tag: u8,
}

/// Whether `ip` is one of a field namespace's addresses.
pub fn is_field_addr(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v) if matches!(v.octets(), [10, 213 | 214, _, 1 | 2]))
}

/// Runs a command; its stderr is the error.
fn run(prog: &str, args: &[&str]) -> Result<(), ChaosError> {
    let what = || format!("{prog} {}", args.join(" "));
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| ChaosError::Netns(format!("{} (iproute2 needed): {e}", what())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ChaosError::Netns(format!(
            "{}: {}",
            what(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn quiet(prog: &str, args: &[&str]) {
    let _ = Command::new(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Field {
    /// Builds namespace `skr-TAG` (TAG below 64) with both links up and
    /// unshaped.
    pub fn create(tag: u8) -> Result<Self, ChaosError> {
        if tag >= 64 {
            return Err(ChaosError::Netns(format!("field tag {tag} is over 63")));
        }
        if let Some(why) = crate::netns::unavailable() {
            return Err(ChaosError::Netns(why));
        }
        // From here on the guard cleans up whatever got made.
        let f = Self { tag };
        f.teardown();
        run("ip", &["netns", "add", &f.ns()])?;
        f.links()
    }

    /// Like [`create`](Self::create) with the first tag in `tags` whose
    /// namespace does not exist yet, so runs in parallel on one machine
    /// (two checkouts' test suites) never take each other's. A namespace
    /// left by a killed run stays where it is and is skipped.
    pub fn create_free(tags: std::ops::Range<u8>) -> Result<Self, ChaosError> {
        if let Some(why) = crate::netns::unavailable() {
            return Err(ChaosError::Netns(why));
        }
        for tag in tags.clone().filter(|t| *t < 64) {
            // `ip netns add` fails when the name exists: the claim is atomic.
            if run("ip", &["netns", "add", &format!("skr-{tag}")]).is_ok() {
                let f = Self { tag };
                // Interfaces left by a killed run of this tag, if any.
                for kind in ["d", "c"] {
                    quiet("ip", &["link", "del", &f.ifname(kind, 0)]);
                }
                return f.links();
            }
        }
        Err(ChaosError::Netns(format!(
            "no free field namespace among skr-{}..skr-{}",
            tags.start, tags.end
        )))
    }

    /// The two veth pairs of a namespace just added.
    fn links(self) -> Result<Self, ChaosError> {
        let (f, tag, ns) = (&self, self.tag, self.ns());
        for (kind, net) in [("d", 213), ("c", 214)] {
            let (host, inner) = (f.ifname(kind, 0), f.ifname(kind, 1));
            run(
                "ip",
                &["link", "add", &host, "type", "veth", "peer", "name", &inner],
            )?;
            run("ip", &["link", "set", &inner, "netns", &ns])?;
            let base = format!("10.{net}.{tag}");
            run(
                "ip",
                &["addr", "add", &format!("{base}.1/30"), "dev", &host],
            )?;
            run("ip", &["link", "set", &host, "up"])?;
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
            )?;
            run("ip", &["-n", &ns, "link", "set", &inner, "up"])?;
        }
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(self)
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
    pub fn shape(&self, kbit: u32) -> Result<(), ChaosError> {
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
        )
    }

    /// Takes the client's end of the data link down: from now on nothing
    /// crosses it either way, and the server is not told.
    pub fn link_down(&self) -> Result<(), ChaosError> {
        run("ip", &["link", "set", &self.ifname("d", 0), "down"])
    }

    /// The namespace's name, for `ip netns exec NAME …`.
    pub fn name(&self) -> String {
        self.ns()
    }

    /// A command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> [String; 4] {
        ["ip".into(), "netns".into(), "exec".into(), self.ns()]
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
