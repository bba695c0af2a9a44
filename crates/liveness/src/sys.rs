//! Platform figures for one TCP socket. Linux reads the kernel; elsewhere
//! every call answers [`SampleError::Unsupported`] rather than zeros that
//! would look like data.

use std::{fmt, io};

#[cfg(target_os = "linux")]
#[path = "sys/linux.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "sys/fallback.rs"]
mod imp;

pub(crate) use imp::{abort, sample};

/// CPU time used by the calling thread, where the platform says.
pub fn thread_cpu_time() -> Option<std::time::Duration> {
    imp::thread_cpu_time()
}

/// The process's limit on open descriptors, where the platform says.
pub fn open_file_limit() -> Option<u64> {
    imp::open_file_limit()
}

/// Whether this platform gives kernel figures at all.
pub const SUPPORTED: bool = cfg!(target_os = "linux");

/// TCP state as `TCP_INFO` reports it (Linux numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpState(pub u8);

impl TcpState {
    /// The connection is open both ways.
    pub const ESTABLISHED: Self = Self(1);

    /// The kernel's name for the state.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One reading of a socket's kernel figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// TCP state.
    pub state: TcpState,
    /// Bytes written and not yet acknowledged by the peer (`SIOCOUTQ`).
    pub send_queue: u32,
    /// Bytes the peer has acknowledged over the connection's life
    /// (`tcpi_bytes_acked`; `None` on kernels older than 4.1).
    pub bytes_acked: Option<u64>,
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// The peer's advertised receive window (`tcpi_snd_wnd`, kernel 5.4+).
    pub snd_wnd: Option<u32>,
    /// Bytes queued and not yet sent at all (`tcpi_notsent_bytes`).
    pub notsent_bytes: Option<u32>,
    /// Unanswered zero-window or keepalive probes.
    pub probes: u8,
    /// Retransmissions of the head segment in a row.
    pub retransmits: u8,
}

/// Why a socket could not be sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleError {
    /// This platform gives no figures.
    Unsupported,
    /// The socket was already closed by its owner.
    Closed,
    /// The kernel answered with an error.
    Os(i32),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("socket figures are not supported on this platform"),
            Self::Closed => f.write_str("socket already closed"),
            Self::Os(code) => write!(f, "{}", io::Error::from_raw_os_error(*code)),
        }
    }
}

impl std::error::Error for SampleError {}
