//! The command line (contract, "Command line"): raw flags here, validated
//! into a [`Config`] before any port is bound.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use seatkeeper_engine::EngineSpec;
use seatkeeper_protocol::messages::Window;
use seatkeeper_server::{config::DEFAULT_WINDOW, Config, ConfigError};

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
        /// The pool's Redis.
        #[arg(long)]
        redis: String,
    },
    /// Print the pods as a JSON array.
    Ls {
        /// The pool's Redis.
        #[arg(long)]
        redis: String,
    },
    /// Serve `POST /claim` over HTTP for routers.
    Allocator {
        /// The pool's Redis.
        #[arg(long)]
        redis: String,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:1319")]
        listen: SocketAddr,
    },
}

/// `seatkeeper drain`.
#[derive(Debug, Args)]
pub(crate) struct DrainArgs {
    /// The server's address.
    #[arg(long, env = "SEATKEEPER_LISTEN", default_value = "127.0.0.1:1318")]
    pub listen: SocketAddr,
    /// Wait until no seat is held.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    /// Admin bearer token, when the server has one.
    #[arg(long, env = "SEATKEEPER_ADMIN_TOKEN")]
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
    /// One TCP port for HTTP, WebSocket and the web client.
    #[arg(long, env = "SEATKEEPER_LISTEN", default_value = "127.0.0.1:1318")]
    pub listen: SocketAddr,
    /// Concurrent sessions (a GPU pod has one).
    #[arg(long, env = "SEATKEEPER_SEATS", default_value_t = 1)]
    pub seats: u32,
    /// demo, synthetic:RATE_HZ:BYTES, unix:PATH or tcp:HOST:PORT.
    #[arg(long, env = "SEATKEEPER_ENGINE", default_value = "demo")]
    pub engine: EngineSpec,
    /// Grace window of the send-stall reaper, seconds (fractions allowed).
    /// Also read from DEMON_DEAD_CLIENT_STALL_S.
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
    /// Bearer token for admin routes; without it they answer loopback peers only.
    #[arg(long, env = "SEATKEEPER_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Largest client message, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_message_bytes: usize,
    /// Client messages per second before the connection is closed (1008).
    #[arg(long, default_value_t = 500)]
    pub max_msg_rate: u32,
    /// Most open client connections.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Allowed Origin for the WebSocket upgrade (repeatable); none allows any.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve HTTPS/WSS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "SEATKEEPER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SEATKEEPER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Join the Redis seat pool at this URL (redis://HOST:PORT).
    #[arg(long, env = "SEATKEEPER_POOL")]
    pub pool: Option<String>,
    /// This pod's id in the pool.
    #[arg(long, env = "SEATKEEPER_POD_ID")]
    pub pod_id: Option<String>,
    /// The WebSocket URL routers hand to clients for this pod.
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
            if self.pod_id.is_some() || self.advertise_url.is_some() {
                return Err(ConfigError(
                    "--pod-id and --advertise-url need --pool".into(),
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
            engine: self.engine.clone(),
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
