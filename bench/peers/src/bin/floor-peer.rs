//! The floor: the leanest server for the streaming subset `seatkeeper load`
//! and tt-peer speak (HTTP upgrade on `/ws`, `hello` → `ready` or `busy`,
//! paced binary slices with the 20-byte header under a cumulative-ack
//! window, `bye`, and `GET /sessions` answering 200). It measures what
//! this kernel charges per slice when the server does almost nothing else.
//!
//! It is a floor, NOT a server: no reaper, no pings, no resume, no seat
//! pool beyond a counter, no engines, no limits on what a client sends
//! beyond a bounded carry-over buffer, no TLS. A frozen client just stops
//! getting slices (the window closes) and keeps its connection.
//!
//! # Why each choice is the cheap one
//! - One thread, one `mio::Poll` (epoll, edge-triggered): no wake-ups
//!   across threads, no locks, no task machinery.
//! - One timer wheel for every session: all sessions stream at the same
//!   rate, so a wheel of one period (`slots` ticks of ~1 ms) lets a session
//!   live in one slot forever. A tick costs one `Vec` walk; a slice costs
//!   no timer, no heap operation, no allocation.
//! - One `writev` per due slice: the frame and slice headers (≤ 34 bytes,
//!   on the stack) plus the shared, prebuilt payload. Nothing is copied
//!   unless the socket refuses part of it (then the rest waits in a
//!   per-connection buffer, and slices due meanwhile are dropped).
//! - One `read` per readable event: a read shorter than the buffer
//!   drained the socket, and any later data raises a new edge, so the
//!   usual read-until-EAGAIN would only add a syscall per ack.
//! - Acks parsed by hand (`"type":"ack"`, `"seq":N`): no serde per ack.
//!
//! `--client N` turns it into the matching lean client (one thread, one
//! read and one cumulative ack per readable event), so the kernel's cost
//! per slice can be measured on both sides without either program's
//! own overhead in the way. Loopback only.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use seatkeeper_bench::{
    floor::{
        client::{self, ClientArgs},
        server::{self, ServerArgs},
    },
    PeerArgs,
};

/// The leanest server (or, with --client, client) for the benchmark's
/// streaming subset: a floor.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen (or, with --client, where to connect).
    #[arg(long, default_value = "127.0.0.1:1320")]
    listen: SocketAddr,
    #[command(flatten)]
    peer: PeerArgs,
    /// Be the client instead: open N sessions to --listen, read and ack,
    /// print one JSON report shaped like `seatkeeper load`'s.
    #[arg(long, value_name = "N")]
    client: Option<usize>,
    /// Client: seconds to run, from the first connect.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Client: seconds at the start left out of the latency figures.
    #[arg(long, default_value_t = 1.0)]
    settle_s: f64,
    /// Client: handshakes in progress at once.
    #[arg(long, default_value_t = 500)]
    connect_concurrency: usize,
    /// Client: ack once this many slices are unacked (1 = every read that
    /// brought one, as `seatkeeper load` does; must stay below the window).
    #[arg(long, default_value_t = 1)]
    ack_every: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if !a.listen.ip().is_loopback() {
        anyhow::bail!("floor-peer is a benchmark: loopback addresses only");
    }
    if let Some(sessions) = a.client {
        let report = client::run(&ClientArgs {
            addr: a.listen,
            sessions,
            duration: Duration::try_from_secs_f64(a.duration_s)?,
            settle: Duration::try_from_secs_f64(a.settle_s)?,
            connect_concurrency: a.connect_concurrency,
            ack_every: a.ack_every,
        })?;
        println!("{report}");
        return Ok(());
    }
    server::run(ServerArgs {
        listen: a.listen,
        seats: a.peer.seats,
        engine: a.peer.engine,
        window_slices: a.peer.window_slices,
        window_bytes: a.peer.window_bytes,
    })?;
    Ok(())
}
