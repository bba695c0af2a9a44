//! The validated configuration, built once before any port is bound and
//! shared read-only. Every bound and timeout of the server lives here.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use seatkeeper_protocol::messages::Window;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent sessions (a GPU pod has one).
    pub seats: u32,
    /// Grace window of the send-stall rule.
    pub stall_grace: Duration,
    /// How often the sampler sweeps every session's socket.
    pub watchdog_interval: Duration,
    /// WebSocket ping cadence.
    pub ping_interval: Duration,
    /// Reap a session whose client left a ping unanswered for this long
    /// after its TCP acknowledged the ping's bytes.
    pub pong_timeout: Option<Duration>,
    /// How long a session lost by transport waits for its client.
    pub resume_window: Option<Duration>,
    /// The flow-control window announced in `ready`.
    pub window: Window,
    /// Per-session outbox bounds.
    pub outbox: OutboxLimits,
    /// Bearer token for admin routes on either listener; without it the
    /// public port refuses admin routes (`403 admin_disabled`).
    pub admin_token: Option<String>,
    /// The admin listener (`--admin-listen`): admin routes without a token.
    pub admin_listen: Option<AdminAddr>,
    /// Time from upgrade to `hello`.
    pub hello_timeout: Duration,
    /// Time for a whole HTTP request (headers and body) to arrive.
    pub header_timeout: Duration,
    /// Largest client message.
    pub max_message_bytes: usize,
    /// Client messages per second (the burst allowance is one second's worth).
    pub max_msg_rate: u32,
    /// Most open client connections (HTTP and WebSocket together).
    pub max_connections: usize,
    /// How often `stats` goes to the client.
    pub stats_interval: Duration,
    /// How long a session's farewell (close frame) may take.
    pub close_grace: Duration,
    /// `retry_after_s` in `busy`.
    pub busy_retry_after: Duration,
    /// Allowed `Origin` values for the upgrade; empty allows any.
    pub allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seats: 1,
            stall_grace: Duration::from_secs(30),
            watchdog_interval: Duration::from_millis(500),
            ping_interval: Duration::from_secs(5),
            pong_timeout: Some(Duration::from_secs(20)),
            resume_window: Some(Duration::from_secs(5)),
            window: DEFAULT_WINDOW,
            outbox: OutboxLimits::default(),
            admin_token: None,
            admin_listen: None,
            hello_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_message_bytes: 1 << 20,
            max_msg_rate: 500,
            max_connections: 16_384,
            stats_interval: Duration::from_secs(1),
            close_grace: Duration::from_secs(1),
            busy_retry_after: Duration::from_secs(2),
            allowed_origins: Vec::new(),
        }
    }
}

/// The default window: 16 slices, 4 MiB.
///
/// Sixteen demo slices are 1.6 s of audio (307 KB): enough in flight to ride
/// out a second of jitter on a tunnel, little enough that a client that
/// falls behind hears fresh media after at most 1.6 s instead of a backlog.
/// It also matters for the reaper: a frozen client stops acking, the window
/// fills, and 307 KB is more than a default Linux receive buffer (128 KB
/// initial) takes in, so the rest sits in the server's send queue where the
/// stall rule sees it. A client that set a multi-megabyte buffer swallows the
/// whole window instead; the pong rule is the backstop for that one. The byte
/// bound keeps large engine slices (video) to a few in flight.
pub const DEFAULT_WINDOW: Window = Window {
    slices: 16,
    bytes: 4 << 20,
};

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks the cross-field rules; `Ok` means the server can start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.seats == 0 {
            return fail("--seats must be at least 1".into());
        }
        if self.stall_grace.is_zero() {
            return fail("--dead-client-stall-s must be greater than 0".into());
        }
        if self.watchdog_interval < Duration::from_millis(10) {
            return fail("--watchdog-interval-ms must be at least 10".into());
        }
        if self.ping_interval.is_zero() {
            return fail("--ping-interval-s must be greater than 0".into());
        }
        if let Some(pong) = self.pong_timeout {
            if pong <= self.ping_interval {
                return fail(format!(
                    "--pong-timeout-s ({} s) must exceed --ping-interval-s ({} s), or be 0 to disable",
                    pong.as_secs_f64(),
                    self.ping_interval.as_secs_f64()
                ));
            }
        }
        if self.window.slices == 0 || self.window.bytes == 0 {
            return fail("--window-slices and --window-bytes must be at least 1".into());
        }
        if self.max_message_bytes < 256 {
            return fail("--max-message-bytes must be at least 256".into());
        }
        if self.max_msg_rate == 0 {
            return fail("--max-msg-rate must be at least 1".into());
        }
        if self.max_connections < self.seats as usize {
            return fail("--max-connections must be at least --seats".into());
        }
        if let Some(t) = &self.admin_token {
            if t.len() < 8 {
                return fail("--admin-token must be at least 8 characters".into());
            }
        }
        Ok(())
    }
}

/// Where the admin listener binds: a loopback TCP address or a Unix socket.
///
/// Only loopback: the listener grants admin rights without a token, so it
/// must be reachable only from the pod itself (a sidecar, an operator's
/// `kubectl exec`), never through a tunnel or a published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAddr {
    /// `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT`.
    Tcp(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl FromStr for AdminAddr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ConfigError("--admin-listen unix: needs a path".into()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let addr = parse_listen(s).map_err(|e| ConfigError(format!("--admin-listen: {e}")))?;
        if !addr.ip().is_loopback() {
            return Err(ConfigError(format!(
                "--admin-listen {s}: must be a loopback address or unix:PATH \
                 (it grants admin rights without a token)"
            )));
        }
        Ok(Self::Tcp(addr))
    }
}

impl fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Parses a listen address: `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`
/// (which means 127.0.0.1, never a name lookup).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: the port must be a number from 0 to 65535"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err(format!(
        "{s:?} is not an address: use IP:PORT, [IPv6]:PORT or localhost:PORT"
    ))
}

/// Queue bounds for one session's outbox (see `session::outbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Most control messages waiting to be written.
    pub control: usize,
    /// Most non-droppable slices waiting for the window.
    pub nondroppable: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            control: 256,
            nondroppable: 256,
        }
    }
}
