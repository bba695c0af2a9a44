//! The server under test, as a child process.

use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::http::http;

/// A running `seatkeeper serve`.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin listener (`--admin-listen`), which every test server has
    /// unless the test names its own.
    pub admin: Option<SocketAddr>,
    /// Its log (stderr), for post-mortems.
    pub log: PathBuf,
}

/// The `seatkeeper` binary for tests outside its own package (where
/// `CARGO_BIN_EXE_seatkeeper` is not set): `$SEATKEEPER_BIN`, else the newer of
/// `target/release` and `target/debug`. Panics (the test fails, it does
/// not skip) when there is none: build it first with
/// `cargo build -p seatkeeper` (or `--release`).
pub fn bin() -> String {
    if let Ok(p) = std::env::var("SEATKEEPER_BIN") {
        assert!(
            PathBuf::from(&p).is_file(),
            "SEATKEEPER_BIN={p} does not exist"
        );
        return p;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let newest = ["release", "debug"]
        .iter()
        .map(|p| root.join(p).join("seatkeeper"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    match newest {
        Some((_, p)) => p.to_string_lossy().into_owned(),
        None => panic!(
            "no seatkeeper binary in {} (build it: cargo build -p seatkeeper) and SEATKEEPER_BIN unset",
            root.display()
        ),
    }
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh Unix socket path in the temp dir for `name` (the pid keeps
/// test binaries running at once apart).
pub fn socket_path(name: &str) -> SocketPath {
    SocketPath(
        std::env::temp_dir()
            .join(format!("seatkeeper-{}-{name}.sock", std::process::id()))
            .display()
            .to_string(),
    )
}

/// A Unix socket path for a test, removed when the test is done: the server
/// removes its socket when it exits cleanly, but a test's server is killed.
#[derive(Debug)]
pub struct SocketPath(String);

impl std::ops::Deref for SocketPath {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SocketPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Polls `check` every 50 ms until it yields `Some` or `limit` passes.
pub async fn wait_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    /// Starts `bin serve --listen 127.0.0.1:PORT ARGS…` and waits for `/healthz`.
    pub async fn start(bin: &str, args: &[&str]) -> Self {
        Self::start_with_env(bin, args, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub async fn start_with_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let log = std::env::temp_dir().join(format!(
                "seatkeeper-test-{}-{}.log",
                std::process::id(),
                addr.port()
            ));
            let admin: Option<SocketAddr> = (!args.contains(&"--admin-listen")).then(|| {
                format!("127.0.0.1:{}", free_port())
                    .parse()
                    .expect("admin addr")
            });
            let admin_args = admin
                .map(|a| vec!["--admin-listen".to_owned(), a.to_string()])
                .unwrap_or_default();
            let mut cmd = Command::new(bin);
            cmd.arg("serve")
                .arg("--listen")
                .arg(addr.to_string())
                .args(&admin_args)
                .args(args)
                .envs(env.iter().copied());
            let mut server = Self::launch(cmd, addr, admin, log);
            if server.came_up().await {
                return server;
            }
            if server.child.try_wait().ok().flatten().is_none() {
                panic!("seatkeeper did not come up: {}", server.log_text());
            }
            // The port was taken between the probe and the bind: try another.
        }
        panic!("seatkeeper could not start on a free port");
    }

    /// Spawns a prepared `serve` command (a namespace's `ip netns exec …`)
    /// with its stderr in `log`, and waits for `/healthz` at `addr`.
    pub async fn spawn(cmd: Command, addr: SocketAddr, log: PathBuf) -> Self {
        let mut server = Self::launch(cmd, addr, None, log);
        if !server.came_up().await || server.child.try_wait().ok().flatten().is_some() {
            panic!("seatkeeper did not come up: {}", server.log_text());
        }
        server
    }

    /// Starts `cmd` with the test log filter and its stderr in `log`.
    fn launch(mut cmd: Command, addr: SocketAddr, admin: Option<SocketAddr>, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .env("SEATKEEPER_LOG", "info,seatkeeper_server=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn seatkeeper");
        Self {
            child,
            addr,
            admin,
            log,
        }
    }

    /// Whether `/healthz` answers 200 within 10 s.
    async fn came_up(&self) -> bool {
        wait_until(Duration::from_secs(10), || async {
            self.get("/healthz").await.ok().filter(|(s, _)| *s == 200)
        })
        .await
        .is_some()
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A plain HTTP/1.1 request; returns status and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        http(self.addr, method, path, headers, body).await
    }

    /// A request on the admin listener (admin rights without a token).
    pub async fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let addr = self.admin.expect("this server has no admin listener");
        http(addr, method, path, &[], body).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.request("GET", path, &[], "").await
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let (_, body) = self.get(path).await.expect("GET");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// `GET /sessions`.
    pub async fn sessions(&self) -> Value {
        self.get_json("/sessions").await
    }

    /// Whether `/readyz` says 200 within `limit` (an external engine
    /// connected, not draining).
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        wait_until(limit, || async {
            (self.get("/readyz").await.ok()?.0 == 200).then_some(())
        })
        .await
        .is_some()
    }

    /// Waits until no seat is held; returns how long that took.
    pub async fn wait_released(&self, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        wait_until(limit, || async {
            let s = self.sessions().await;
            (s["lockHeld"] == false && s["sessions"].as_array().is_some_and(|a| a.is_empty()))
                .then_some(())
        })
        .await
        .map(|_| t0.elapsed())
    }

    /// Every `seatkeeper_` sample of `/metrics`, by name with labels.
    pub async fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let (_, text) = self.get("/metrics").await.expect("GET /metrics");
        text.lines()
            .filter(|l| l.starts_with("seatkeeper_"))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    /// The value of one Prometheus sample (`name{labels}` as written).
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await.ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == sample).then(|| v.parse().ok()).flatten()
        })
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()?
            .ok()
    }
}
