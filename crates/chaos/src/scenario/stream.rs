//! Reading a stream for a while, the way a given kind of client reads.

use std::time::Duration;

use tokio::time::{sleep, Instant};

use crate::client::{AckPolicy, Client, Event};

/// How the client reads.
#[derive(Debug, Clone)]
pub enum ReadMode {
    /// Reads everything; acks by the policy.
    Ack(AckPolicy),
    /// Reads everything (pings are answered); never acks.
    NoAck,
    /// Reads at most `bytes_per_s` of payload, acking each slice it reads.
    Slow {
        /// Payload bytes a second.
        bytes_per_s: f64,
    },
    /// Reads and acks for `run`, then reads nothing for `pause`, and again.
    Stutter {
        /// Time spent reading.
        run: Duration,
        /// Time spent not reading.
        pause: Duration,
    },
}

/// What a stretch of streaming saw.
#[derive(Debug, Clone, Default)]
pub struct Streamed {
    /// Slices read.
    pub slices: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// The connection's end, if it ended.
    pub ended: Option<Event>,
    /// Highest seq read.
    pub last_seq: u64,
}

/// Reads from `c` for `dur` in `mode`. Stops early when the connection ends.
pub async fn stream(c: &mut Client, dur: Duration, mut mode: ReadMode) -> Streamed {
    let start = Instant::now();
    let end = start + dur;
    let mut out = Streamed::default();
    let mut next_pause = match &mode {
        ReadMode::Stutter { run, .. } => Some(start + *run),
        _ => None,
    };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if let (Some(at), ReadMode::Stutter { run, pause }) = (next_pause, &mode) {
            if now >= at {
                // Not reading at all: the kernel buffers fill, pings wait.
                sleep((*pause).min(end - now)).await;
                next_pause = Some(Instant::now() + *run);
                continue;
            }
        }
        let mut limit = end - now;
        if let ReadMode::Ack(p) = &mode {
            if let Some(d) = p.deadline() {
                limit = limit.min(d.saturating_duration_since(now));
            }
        }
        let Some(ev) = c.next(limit).await else {
            // Timed out: flush a due ack, or the stretch is over.
            if let ReadMode::Ack(p) = &mut mode {
                if p.deadline().is_some_and(|d| d <= Instant::now()) {
                    let seq = p.take();
                    if c.ack(seq).await.is_err() {
                        continue;
                    }
                }
            }
            continue;
        };
        match ev {
            Event::Slice(h, len, at) => {
                out.slices += 1;
                out.bytes += len as u64;
                out.last_seq = out.last_seq.max(h.seq);
                let ack = match &mut mode {
                    ReadMode::Ack(p) => p.on_slice(h.seq, len, at),
                    ReadMode::NoAck => None,
                    ReadMode::Slow { .. } | ReadMode::Stutter { .. } => Some(h.seq),
                };
                if let Some(seq) = ack {
                    // A failed send shows up as the connection's end on the next read.
                    let _ = c.ack(seq).await;
                }
                if let ReadMode::Slow { bytes_per_s } = mode {
                    let due = start + Duration::from_secs_f64(out.bytes as f64 / bytes_per_s);
                    if due > Instant::now() {
                        sleep(
                            (due - Instant::now())
                                .min(end.saturating_duration_since(Instant::now())),
                        )
                        .await;
                    }
                }
            }
            Event::Text(_) => {}
            e @ (Event::Closed(_) | Event::Error(_)) => {
                out.ended = Some(e);
                break;
            }
        }
    }
    out
}
