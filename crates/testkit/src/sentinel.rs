//! A throwaway replicated Redis for failover tests: a master, one replica
//! and one Sentinel, each a real `redis-server` on a free loopback port,
//! with a fresh writable config in a temporary directory (Sentinel
//! rewrites its config). Killed and removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The master name the Sentinel monitors.
pub const MASTER: &str = "mymaster";

/// Master, replica and Sentinel.
pub struct SentinelSet {
    dir: PathBuf,
    /// Ports of the data nodes: `[first master, first replica]`.
    pub ports: [u16; 2],
    /// The Sentinel's port.
    pub sentinel_port: u16,
    nodes: [Option<Child>; 2],
    sentinel: Option<Child>,
}

impl SentinelSet {
    /// Starts all three and waits until the replica is linked and the
    /// Sentinel knows it (else a failover has nothing to promote). `None`
    /// when `redis-server` is missing (a failure under `CI=true`).
    pub fn start() -> Option<Self> {
        let _probe = crate::redis::RedisServer::start()?;
        let dir = std::env::temp_dir().join(format!(
            "seatkeeper-sentinel-{}-{}",
            std::process::id(),
            crate::server::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ports = [crate::server::free_port(), crate::server::free_port()];
        let sentinel_port = crate::server::free_port();
        let mut set = Self {
            dir,
            ports,
            sentinel_port,
            nodes: [None, None],
            sentinel: None,
        };
        set.nodes[0] = Some(set.spawn_node(0, None));
        wait_for(
            || cli(ports[0], &["PING"]).is_some_and(|r| r == "PONG"),
            "master up",
        );
        set.nodes[1] = Some(set.spawn_node(1, Some(ports[0])));
        wait_for(
            || info_field(ports[1], "master_link_status").as_deref() == Some("up"),
            "replica linked",
        );
        let conf = set.dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 5000\n",
                dir = set.dir.display(),
                master = ports[0],
            ),
        )
        .expect("write sentinel.conf");
        set.sentinel = Some(
            Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sentinel"),
        );
        wait_for(
            || {
                cli(sentinel_port, &["SENTINEL", "replicas", MASTER])
                    .is_some_and(|r| r.contains(&ports[1].to_string()))
            },
            "sentinel knows the replica",
        );
        Some(set)
    }

    /// `redis+sentinel://127.0.0.1:PORT/mymaster`.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{MASTER}", self.sentinel_port)
    }

    /// `redis://` of data node `i` (0: the first master).
    pub fn node_url(&self, i: usize) -> String {
        format!("redis://127.0.0.1:{}", self.ports[i])
    }

    /// The master's port as the Sentinel reports it now.
    pub fn master_port(&self) -> Option<u16> {
        let out = cli(
            self.sentinel_port,
            &["SENTINEL", "get-master-addr-by-name", MASTER],
        )?;
        out.lines().nth(1)?.trim().parse().ok()
    }

    /// SIGKILLs data node `i` (no persistence: its data is gone).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn_node(&self, i: usize, replica_of: Option<u16>) -> Child {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.ports[i].to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", &format!("node{i}.rdb")]);
        if let Some(port) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &port.to_string()]);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server")
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().chain([&mut self.sentinel]) {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p PORT ARGS…`: its stdout, `None` if it failed.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn info_field(port: u16, field: &str) -> Option<String> {
    let info = cli(port, &["INFO", "replication"])?;
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{field}:"))
            .map(str::to_owned)
    })
}

fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
