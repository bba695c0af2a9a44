//! The peers, each started as its own process on a free port, stopped when
//! dropped.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use seatkeeper_chaos::http::http;
use serde::Serialize;
use tokio::process::{Child, Command};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// seatkeeper.
    #[serde(rename = "seatkeeper")]
    Seatkeeper,
    /// Python `websockets`, default keepalive.
    #[serde(rename = "py-websockets")]
    PyDefault,
    /// Python `websockets` plus the send-stall watchdog.
    #[serde(rename = "py-websockets+watchdog")]
    PyWatchdog,
    /// Plain tokio-tungstenite, no reaper.
    #[serde(rename = "tokio-tungstenite")]
    TtPlain,
}

impl Kind {
    /// Every peer, seatkeeper first.
    pub const ALL: [Kind; 4] = [
        Self::Seatkeeper,
        Self::PyDefault,
        Self::PyWatchdog,
        Self::TtPlain,
    ];

    /// The name in results and plots.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seatkeeper => "seatkeeper",
            Self::PyDefault => "py-websockets",
            Self::PyWatchdog => "py-websockets+watchdog",
            Self::TtPlain => "tokio-tungstenite",
        }
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `seatkeeper`.
    pub seatkeeper: PathBuf,
    /// `tt-peer`.
    pub tt_peer: PathBuf,
    /// `raw-tcp`.
    pub raw_tcp: PathBuf,
    /// `py_peer.py`.
    pub py_peer: PathBuf,
    /// The Python interpreter.
    pub python: String,
    /// Where logs go.
    pub logs: PathBuf,
}

/// How to set a peer up.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Address to listen on (loopback, or the namespace's host side).
    pub ip: IpAddr,
    /// Seats.
    pub seats: usize,
    /// `synthetic:RATE:BYTES`.
    pub engine: String,
    /// Stall grace window (seatkeeper and the Python watchdog).
    pub grace_s: f64,
    /// Sampling interval (seatkeeper and the Python watchdog).
    pub interval_ms: u64,
    /// Window (slices, bytes); `None` is each server's default (16, 4 MiB).
    pub window: Option<(u64, u64)>,
    /// Run inside a network namespace: the command prefix
    /// (`ip netns exec NAME`) and the address (with the port it listens on,
    /// on every address) where it is reached for `/sessions`.
    pub netns: Option<([String; 4], SocketAddr)>,
}

/// A running peer.
pub struct Peer {
    child: Child,
    /// Which one.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Peer {
    /// Starts `kind` with `setup` and waits until `/sessions` answers.
    pub async fn start(kind: Kind, paths: &Paths, setup: &Setup) -> anyhow::Result<Self> {
        let (addr, listen) = match &setup.netns {
            Some((_, reach)) => (*reach, format!("0.0.0.0:{}", reach.port())),
            None => {
                let port = std::net::TcpListener::bind((setup.ip, 0))?
                    .local_addr()?
                    .port();
                let addr = SocketAddr::new(setup.ip, port);
                (addr, addr.to_string())
            }
        };
        let port = addr.port();
        let seats = setup.seats.to_string();
        let grace = setup.grace_s.to_string();
        let interval = setup.interval_ms.to_string();
        let mut cmd = match kind {
            Kind::Seatkeeper => {
                let mut c = Command::new(&paths.seatkeeper);
                c.args([
                    "serve",
                    "--listen",
                    &listen,
                    "--seats",
                    &seats,
                    "--engine",
                    &setup.engine,
                ]);
                c.args([
                    "--dead-client-stall-s",
                    &grace,
                    "--watchdog-interval-ms",
                    &interval,
                ]);
                c.env("SEATKEEPER_LOG", "warn");
                c
            }
            Kind::PyDefault | Kind::PyWatchdog => {
                let mut c = Command::new(&paths.python);
                c.arg(&paths.py_peer);
                c.args([
                    "--listen",
                    &listen,
                    "--seats",
                    &seats,
                    "--engine",
                    &setup.engine,
                ]);
                if kind == Kind::PyWatchdog {
                    c.args([
                        "--watchdog",
                        "--stall-s",
                        &grace,
                        "--interval-ms",
                        &interval,
                    ]);
                }
                c
            }
            Kind::TtPlain => {
                let mut c = Command::new(&paths.tt_peer);
                c.args([
                    "--listen",
                    &listen,
                    "--seats",
                    &seats,
                    "--engine",
                    &setup.engine,
                ]);
                c
            }
        };
        if let Some((s, b)) = setup.window {
            cmd.args([
                "--window-slices",
                &s.to_string(),
                "--window-bytes",
                &b.to_string(),
            ]);
        }
        if let Some((prefix, _)) = &setup.netns {
            let std = cmd.as_std();
            let mut inner = Command::new(&prefix[0]);
            inner
                .args(&prefix[1..])
                .arg(std.get_program())
                .args(std.get_args());
            for (k, v) in std.get_envs() {
                if let Some(v) = v {
                    inner.env(k, v);
                }
            }
            cmd = inner;
        }
        std::fs::create_dir_all(&paths.logs)?;
        let tag = setup
            .netns
            .as_ref()
            .map_or(String::new(), |(p, _)| format!("{}-", p[3]));
        let log = paths.logs.join(format!("{}-{tag}{port}.log", kind.name()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(log.with_extension("err"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let peer = Self { child, kind, addr };
        for _ in 0..100 {
            if let Ok((200, _)) = http(addr, "GET", "/sessions", &[], "").await {
                return Ok(peer);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "{} did not come up on {addr} (log: {})",
            kind.name(),
            log.display()
        )
    }

    /// Its WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// GET `path`, body only.
    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        Ok(http(self.addr, "GET", path, &[], "").await?.1)
    }

    /// One Prometheus sample from seatkeeper's `/metrics` (`None` elsewhere).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.get("/metrics").await.ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name).then(|| v.parse().ok()).flatten()
        })
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
