//! One floor-peer connection: its phase, its carry-over and its unsent
//! bytes (both empty in the steady state), and the one write path.

use std::io::{self, IoSlice, Write};

use mio::net::TcpStream;

/// Longest request head or partial frame a client may leave unread.
pub(super) const MAX_CARRY: usize = 16 << 10;

/// Where a connection is in its life.
pub(super) enum Phase {
    /// Reading the HTTP request.
    Http,
    /// Upgraded, waiting for `hello`.
    Hello,
    /// Streaming: in the wheel.
    Streaming,
}

/// One client.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    /// Tells a reused slot from the connection that left it (wheel entries
    /// carry it, so a stale entry is dropped, not served).
    pub(super) gen: u32,
    pub(super) phase: Phase,
    /// Bytes read that are not a whole request or frame yet (empty in the
    /// steady state; allocated only if a client splits a message).
    pub(super) carry: Vec<u8>,
    /// Bytes the socket did not take yet (empty in the steady state).
    pub(super) unsent: Vec<u8>,
    /// The wheel tick the session started on; its slices are due every
    /// `slots` ticks after it.
    pub(super) start_tick: u64,
    /// The last seq written.
    pub(super) sent: u64,
    /// The client's cumulative ack.
    pub(super) acked: u64,
}

impl Conn {
    /// Writes `parts` now if nothing waits, else queues them; whatever the
    /// socket does not take waits in `unsent` for the writable edge.
    pub(super) fn send(&mut self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut done = 0;
        if self.unsent.is_empty() {
            done = loop {
                match self.stream.write_vectored(parts) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
        }
        if done < total {
            // Rare (a full socket buffer): copy what is left, in order.
            let mut skip = done;
            for p in parts {
                let p: &[u8] = p;
                if skip >= p.len() {
                    skip -= p.len();
                } else {
                    self.unsent.extend_from_slice(&p[skip..]);
                    skip = 0;
                }
            }
        }
        Ok(())
    }

    /// Writes what waits in `unsent`, as far as the socket takes it.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            match self.stream.write(&self.unsent) {
                Ok(n) => {
                    self.unsent.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
