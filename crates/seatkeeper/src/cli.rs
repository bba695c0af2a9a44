//! The command line (contract, "Command line"): raw flags here, validated
//! into a [`Config`] before any port is bound.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use seatkeeper_engine::EngineSpec;
use seatkeeper_protocol::messages::Window;
use seatkeeper_server::{
    config::{parse_listen, AdminAddr, DEFAULT_WINDOW},
    Config, ConfigError,
};

/// seatkeeper: holds a GPU pod's seat(s), streams an engine's slices to one
/// client per seat, and reaps dead clients from kernel evidence.
#[derive(Debug, Parser)]
#[command(name = "seatkeeper", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the session server.
    Serve(Box<ServeArgs>),
    /// The Redis seat pool: claim a seat, list pods, serve claims over HTTP.
    Pool {
        /// What to do with the pool.
        #[command(subcommand)]
        command: PoolCommand,
    },
    /// Stop a running server from taking new sessions and wait for its
    /// sessions to end (a Kubernetes preStop hook).
    Drain(DrainArgs),
    /// Play one client behaviour against a server and print the verdict
    /// (would this setup reap this client, and how fast?).
    Chaos(Box<seatkeeper_chaos::ChaosArgs>),
    /// Open many sessions from one process, read and ack, report delivery.
    Load(Box<seatkeeper_chaos::load::LoadArgs>),
}

/// `seatkeeper pool …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PoolCommand {
    /// Reserve one free seat somewhere; print one JSON line (exit 3 when none).
    Claim {
        /// The pool's Redis: redis://HOST:PORT or
        /// redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER.
        // Its value may carry a password: `--help` must not print it.
        #[arg(long, env = "SEATKEEPER_POOL", hide_env_values = true)]
        redis: String,
        /// Claim only on pods with these labels: KEY=VALUE[,KEY=VALUE...].
        #[arg(long)]
        selector: Option<String>,
        /// Make the claim idempotent: the same id returns the same seat and
        /// token (22-128 characters of A-Z a-z 0-9 . _ -; keep it secret).
        #[arg(long)]
        claim_id: Option<String>,
    },
    /// Print the pods as a JSON array.
    Ls {
        /// The pool's Redis (redis:// or redis+sentinel://).
        // Its value may carry a password: `--help` must not print it.
        #[arg(long, env = "SEATKEEPER_POOL", hide_env_values = true)]
        redis: String,
    },
    /// Serve `POST /claim` over HTTP for routers.
    Allocator(AllocatorArgs),
}

/// `seatkeeper pool allocator`.
#[derive(Debug, Args)]
pub(crate) struct AllocatorArgs {
    /// The pool's Redis (redis:// or redis+sentinel://).
    // Its value may carry a password: `--help` must not print it.
    #[arg(long, env = "SEATKEEPER_POOL", hide_env_values = true)]
    pub redis: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:1319")]
    pub listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on POST /claim.
    #[arg(long, env = "SEATKEEPER_ALLOCATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Claims per second per client IP (0: no limit).
    #[arg(long, default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Claims a client may send at once before the rate applies.
    #[arg(long, default_value_t = 100.0)]
    pub rate_burst: f64,
    /// Most Redis connections lent at once (beside the shared one) to claims
    /// confirmed by WAIT (redis+sentinel:// only), 1..=1024.
    #[arg(
        long,
        value_name = "N",
        env = "SEATKEEPER_ALLOCATOR_REDIS_WAIT_CONNECTIONS",
        default_value_t = seatkeeper_pool::ClientOptions::DEFAULT_WAIT_CONNECTIONS
    )]
    pub redis_wait_connections: usize,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `seatkeeper drain`.
#[derive(Debug, Args)]
pub(crate) struct DrainArgs {
    /// The server's public address (used with --admin-token) [default: 127.0.0.1:1318].
    #[arg(long, env = "SEATKEEPER_LISTEN", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// The server's admin listener (127.0.0.1:PORT or unix:PATH); needs no token.
    /// Used when given or when SEATKEEPER_ADMIN_LISTEN is set [default: none].
    #[arg(long = "admin-listen", env = "SEATKEEPER_ADMIN_LISTEN")]
    pub admin_listen: Option<AdminAddr>,
    /// Undo a drain: admit new sessions again (DELETE /drain).
    #[arg(long, conflicts_with = "wait")]
    pub cancel: bool,
    /// Wait until no seat is held.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    /// Admin bearer token, for the public port [default: none].
    #[arg(long, env = "SEATKEEPER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// `seatkeeper serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// One TCP port for HTTP, WebSocket and the web client (IP:PORT,
    /// [IPv6]:PORT or localhost:PORT).
    #[arg(long, env = "SEATKEEPER_LISTEN", default_value = "127.0.0.1:1318", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Concurrent sessions (a GPU pod has one).
    #[arg(long, env = "SEATKEEPER_SEATS", default_value_t = 1)]
    pub seats: u32,
    /// demo, synthetic:RATE_HZ:BYTES, unix:PATH or tcp:HOST:PORT.
    #[arg(long, env = "SEATKEEPER_ENGINE", default_value = "demo")]
    pub engine: EngineSpec,
    /// Grace window of the send-stall reaper, seconds (fractions allowed).
    /// Also read from DEMON_DEAD_CLIENT_STALL_S [default: 30].
    #[arg(long, env = "SEATKEEPER_DEAD_CLIENT_STALL_S")]
    pub dead_client_stall_s: Option<f64>,
    /// How often each session's socket is sampled, milliseconds.
    #[arg(long, default_value_t = 500)]
    pub watchdog_interval_ms: u64,
    /// WebSocket ping cadence, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub ping_interval_s: f64,
    /// Reap a session whose client left a ping unanswered for this long after
    /// its TCP acknowledged the ping; must exceed --ping-interval-s; 0 disables.
    #[arg(long, default_value_t = 20.0)]
    pub pong_timeout_s: f64,
    /// How long a session lost by transport waits for a resume; 0 disables.
    #[arg(long, default_value_t = 5.0)]
    pub resume_window_s: f64,
    /// Most slices sent and not acknowledged.
    #[arg(long, default_value_t = DEFAULT_WINDOW.slices)]
    pub window_slices: u32,
    /// Most payload bytes sent and not acknowledged.
    #[arg(long, default_value_t = DEFAULT_WINDOW.bytes)]
    pub window_bytes: u64,
    /// Bearer token for admin routes on either listener; without it the
    /// public port refuses them (403 admin_disabled) [default: none].
    #[arg(long, env = "SEATKEEPER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A second listener for sidecars and operators (127.0.0.1:PORT,
    /// localhost:PORT or unix:PATH): admin routes, /metrics and the full
    /// /sessions without a token [default: none].
    #[arg(long, env = "SEATKEEPER_ADMIN_LISTEN")]
    pub admin_listen: Option<AdminAddr>,
    /// Largest client message, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Client messages per second before the connection is closed (1008).
    #[arg(long, default_value_t = 500)]
    pub max_msg_rate: u32,
    /// Most open client connections.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Allowed Origin for the WebSocket upgrade (repeatable) [default: any].
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve HTTPS/WSS with this PEM certificate chain (needs --tls-key) [default: none].
    #[arg(long, env = "SEATKEEPER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key for --tls-cert [default: none].
    #[arg(long, env = "SEATKEEPER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Join the Redis seat pool at this URL (redis://HOST:PORT, or
    /// redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER) [default: none].
    // Its value may carry a password: `--help` must not print it.
    #[arg(long, env = "SEATKEEPER_POOL", hide_env_values = true)]
    pub pool: Option<String>,
    /// A label published with the pod (repeatable), e.g. gpu=5090 [default: none].
    #[arg(
        long = "pod-label",
        value_name = "KEY=VALUE",
        env = "SEATKEEPER_POD_LABELS",
        value_delimiter = ','
    )]
    pub pod_labels: Vec<String>,
    /// This pod's id in the pool [default: none].
    #[arg(long, env = "SEATKEEPER_POD_ID")]
    pub pod_id: Option<String>,
    /// The WebSocket URL routers hand to clients for this pod [default: none].
    #[arg(long, env = "SEATKEEPER_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Seconds without a heartbeat before the pod leaves the pool.
    #[arg(long, default_value_t = 5.0)]
    pub pool_ttl_s: f64,
    /// Seconds a claim may go unredeemed before its seat returns to the pool.
    #[arg(long, default_value_t = 30.0)]
    pub claim_ttl_s: f64,
}

fn seconds(flag: &str, v: f64) -> Result<Duration, ConfigError> {
    if !(0.0..=1e7).contains(&v) {
        return Err(ConfigError(format!(
            "--{flag} must be a number of seconds between 0 and 10000000, got {v}"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl ServeArgs {
    /// The pool settings, when `--pool` is given.
    pub(crate) fn pool_config(
        &self,
        seats: u32,
    ) -> Result<Option<seatkeeper_pool::PoolConfig>, ConfigError> {
        let Some(url) = &self.pool else {
            if self.pod_id.is_some() || self.advertise_url.is_some() || !self.pod_labels.is_empty()
            {
                return Err(ConfigError(
                    "--pod-id, --advertise-url and --pod-label need --pool".into(),
                ));
            }
            return Ok(None);
        };
        let (Some(pod_id), Some(advertise)) = (&self.pod_id, &self.advertise_url) else {
            return Err(ConfigError(
                "--pool needs --pod-id and --advertise-url".into(),
            ));
        };
        let mut cfg =
            seatkeeper_pool::PoolConfig::new(url.clone(), pod_id.clone(), advertise.clone(), seats);
        cfg.ttl = seconds("pool-ttl-s", self.pool_ttl_s)?;
        cfg.claim_ttl = seconds("claim-ttl-s", self.claim_ttl_s)?;
        for label in &self.pod_labels {
            let parsed = seatkeeper_pool::parse_labels(label)
                .map_err(|e| ConfigError(format!("--pod-label: {e}")))?;
            for (k, v) in parsed {
                if cfg.labels.get(&k).is_some_and(|old| *old != v) {
                    return Err(ConfigError(format!(
                        "--pod-label: {k:?} given twice with different values"
                    )));
                }
                cfg.labels.insert(k, v);
            }
        }
        cfg.validate().map_err(|e| ConfigError(e.to_string()))?;
        Ok(Some(cfg))
    }

    /// The grace window: the flag, else either environment variable, else 30 s.
    fn stall_grace(&self) -> Result<Duration, ConfigError> {
        let value = match self.dead_client_stall_s {
            Some(v) => v,
            None => match std::env::var("DEMON_DEAD_CLIENT_STALL_S") {
                Ok(s) => s.trim().parse().map_err(|_| {
                    ConfigError(format!(
                        "DEMON_DEAD_CLIENT_STALL_S must be a number of seconds, got {s:?}"
                    ))
                })?,
                Err(_) => 30.0,
            },
        };
        seconds("dead-client-stall-s", value)
    }

    /// Validates the flags into a configuration.
    pub(crate) fn config(&self) -> Result<Config, ConfigError> {
        let config = Config {
            seats: self.seats,
            stall_grace: self.stall_grace()?,
            watchdog_interval: Duration::from_millis(self.watchdog_interval_ms),
            ping_interval: seconds("ping-interval-s", self.ping_interval_s)?,
            pong_timeout: optional(seconds("pong-timeout-s", self.pong_timeout_s)?),
            resume_window: optional(seconds("resume-window-s", self.resume_window_s)?),
            window: Window {
                slices: self.window_slices,
                bytes: self.window_bytes,
            },
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            admin_listen: self.admin_listen.clone(),
            max_message_bytes: self.max_message_bytes,
            max_msg_rate: self.max_msg_rate,
            max_connections: self.max_connections,
            allowed_origins: self.allowed_origins.clone(),
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }
}
