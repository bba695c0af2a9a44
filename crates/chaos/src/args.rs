//! `seatkeeper chaos` flags.

use std::{path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

/// One client behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Scenario {
    /// Reads every slice and acks it: must be kept.
    Active,
    /// Reads and answers pings but never acks: must be kept.
    Paused,
    /// Reads about a third of the stream's bytes per second through a
    /// 32 KiB receive buffer, acking what it reads: must be kept.
    SlowLink,
    /// Stops reading for `--pause-s` at a time, then catches up (a busy
    /// app, a backgrounded tab): must be kept when the pause is shorter
    /// than the server's grace window.
    Backpressured,
    /// Stops reading entirely, default buffers: must be reaped.
    Frozen,
    /// Stops reading with a 4 MiB receive buffer that swallows the whole
    /// window: must be reaped (by the pong rule on seatkeeper).
    FrozenBigbuf,
    /// Behind a relay that stops reading pod-side and keeps TCP open: must
    /// be reaped.
    Tunnel,
    /// Behind a relay that keeps reading pod-side and throws it away (the
    /// browser left, the connector still drains): must be reaped (by the
    /// pong rule on seatkeeper: the send queue never backs up).
    TunnelDrain,
    /// Sends FIN without a close frame: the seat must be released.
    HalfClose,
    /// Resets the connection: the seat must be released.
    Rst,
    /// Upgrades and never says hello: closed 1008, no seat taken.
    NoHello,
    /// Sends messages far faster than any client should: closed 1008.
    Flood,
    /// A child client process stopped with SIGSTOP: must be reaped.
    Sigstop,
    /// A client in a network namespace whose link goes down mid-stream
    /// (the slept laptop): must be reaped. Needs root and iproute2.
    Blackhole,
    /// Creates the `blackhole` namespace and leaves it, so a server can
    /// listen on its host-side address (10.203.0.1).
    NetnsUp,
    /// Deletes the `blackhole` namespace.
    NetnsDown,
    /// Internal: the child client process of `sigstop` and `blackhole`.
    #[value(hide = true)]
    InternalChild,
}

impl Scenario {
    /// The name on the command line and in the JSON line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// The verdict a well-behaved server reaches.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Active | Self::Paused | Self::SlowLink | Self::Backpressured => "kept",
            Self::Frozen
            | Self::FrozenBigbuf
            | Self::Tunnel
            | Self::TunnelDrain
            | Self::Sigstop
            | Self::Blackhole => "reaped",
            Self::HalfClose | Self::Rst => "released",
            Self::NoHello | Self::Flood => "closed",
            Self::NetnsUp | Self::NetnsDown | Self::InternalChild => "done",
        }
    }

    /// The close code a well-behaved server sends, where the contract names one.
    pub fn expected_close(self) -> Option<u16> {
        matches!(self, Self::NoHello | Self::Flood).then_some(seatkeeper_protocol::close::POLICY)
    }

    /// Every scenario a user would run.
    pub const ALL: [Scenario; 14] = [
        Self::Active,
        Self::Paused,
        Self::SlowLink,
        Self::Backpressured,
        Self::Frozen,
        Self::FrozenBigbuf,
        Self::Tunnel,
        Self::TunnelDrain,
        Self::HalfClose,
        Self::Rst,
        Self::NoHello,
        Self::Flood,
        Self::Sigstop,
        Self::Blackhole,
    ];
}

/// `seatkeeper chaos`: plays one client behaviour against a server that
/// speaks the contract and prints one JSON line per client with the verdict.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// WebSocket URL of the server (loopback, or 10.203.0.1 for blackhole).
    #[arg(long, default_value = "ws://127.0.0.1:1318/ws")]
    pub url: String,
    /// The server's sessions route; default: /sessions on the --url's host.
    #[arg(long)]
    pub sessions_url: Option<String>,
    /// The behaviour to play.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Seconds of normal streaming (read and ack) before the behaviour starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_s: f64,
    /// Seconds a live client (active, paused, slow-link, backpressured) is
    /// watched before it counts as kept.
    #[arg(long, default_value_t = 10.0)]
    pub observe_s: f64,
    /// Longest wait, seconds, for a dead client's release or a close.
    #[arg(long, default_value_t = 120.0)]
    pub timeout_s: f64,
    /// How often `/sessions` is polled, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// backpressured: seconds of each pause in reading.
    #[arg(long, default_value_t = 2.0)]
    pub pause_s: f64,
    /// frozen-bigbuf: SO_RCVBUF, bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub bigbuf_bytes: u32,
    /// slow-link and backpressured: SO_RCVBUF, bytes.
    #[arg(long, default_value_t = 32 << 10)]
    pub small_rcvbuf_bytes: u32,
    /// slow-link: the fraction of the stream's byte rate read.
    #[arg(long, default_value_t = 1.0 / 3.0)]
    pub slow_fraction: f64,
    /// Concurrent clients playing the scenario (one JSON line each).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// `client_id` sent in hello.
    #[arg(long, default_value = "chaos")]
    pub client_id: String,
    /// Allow targets outside loopback and the chaos namespace.
    #[arg(long)]
    pub allow_remote: bool,
    /// The program run as the child client of sigstop and blackhole; it must
    /// accept `chaos --scenario internal-child …`. Default: this program.
    #[arg(long, env = "SEATKEEPER_CHAOS_CHILD")]
    pub child_exe: Option<PathBuf>,
}

impl ChaosArgs {
    /// Arguments for `scenario` against `url`, everything else default.
    pub fn new(url: impl Into<String>, scenario: Scenario) -> Self {
        Self {
            url: url.into(),
            sessions_url: None,
            scenario,
            warmup_s: 1.0,
            observe_s: 10.0,
            timeout_s: 120.0,
            poll_ms: 50,
            pause_s: 2.0,
            bigbuf_bytes: 4 << 20,
            small_rcvbuf_bytes: 32 << 10,
            slow_fraction: 1.0 / 3.0,
            clients: 1,
            client_id: "chaos".into(),
            allow_remote: false,
            child_exe: None,
        }
    }

    pub(crate) fn warmup(&self) -> Duration {
        secs(self.warmup_s)
    }

    pub(crate) fn observe(&self) -> Duration {
        secs(self.observe_s)
    }

    pub(crate) fn timeout(&self) -> Duration {
        secs(self.timeout_s)
    }

    pub(crate) fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(1))
    }
}

/// Seconds as a `Duration`; negative or NaN is zero, huge is a day.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, 86_400.0)).unwrap_or_default()
}
