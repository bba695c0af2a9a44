//! One load-generator session: connect, hello, read and ack until the end,
//! bye.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::{sync::Semaphore, time::Instant};

use crate::{
    client::{AckPolicy, Client, Event, HelloOutcome},
    hist::Histogram,
    target::Target,
};

/// Latency samples buffered per session before taking a shard's lock.
const FLUSH_EVERY: usize = 256;

/// What all sessions share.
pub(super) struct Shared {
    pub(super) target: Target,
    pub(super) end: Instant,
    pub(super) settle_until: Instant,
    pub(super) ack_each: bool,
    pub(super) bye: bool,
    pub(super) gate: Semaphore,
    pub(super) hists: Vec<Mutex<Histogram>>,
}

/// How one session went.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) ready: bool,
    pub(super) refused: Option<String>,
    pub(super) error: Option<String>,
    pub(super) slices: u64,
    pub(super) bytes: u64,
    /// `slices_dropped` from the last `stats` the server sent.
    pub(super) dropped: u64,
    /// Gaps in `seq` (slices the server counted as sent that never arrived).
    pub(super) gaps: u64,
    /// How the connection ended before the run did (`close:CODE`, `reset`, …).
    pub(super) ended: Option<String>,
}

impl Outcome {
    pub(super) fn failed(e: String) -> Self {
        Self {
            error: Some(e),
            ..Self::default()
        }
    }
}

pub(super) async fn run(shared: Arc<Shared>, index: usize) -> Outcome {
    let mut out = Outcome::default();
    let permit = shared.gate.acquire().await;
    let mut c = match Client::connect(&shared.target, None).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let ready = match c
        .hello(&json!({"client_id": format!("load-{index}")}))
        .await
    {
        Ok(HelloOutcome::Ready(r)) => r,
        Ok(HelloOutcome::Refused(v)) => {
            out.refused = Some(v["type"].as_str().unwrap_or("refused").to_owned());
            return out;
        }
        Err(e) => return Outcome::failed(e.to_string()),
    };
    drop(permit);
    out.ready = true;
    let mut acks = if shared.ack_each {
        AckPolicy::each()
    } else {
        AckPolicy::for_window(&ready)
    };
    let shard = &shared.hists[index % shared.hists.len()];
    let mut pending: Vec<u64> = Vec::with_capacity(FLUSH_EVERY);
    let mut origin: Option<(Instant, u64)> = None;
    let mut last_seq = 0;
    loop {
        let now = Instant::now();
        if now >= shared.end {
            break;
        }
        let mut limit = shared.end - now;
        if let Some(d) = acks.deadline() {
            limit = limit.min(d.saturating_duration_since(now));
        }
        let Some(ev) = c.next(limit).await else {
            if acks.deadline().is_some_and(|d| d <= Instant::now()) {
                let _ = c.ack(acks.take()).await;
            }
            continue;
        };
        match ev {
            Event::Slice(h, len, at) => {
                out.slices += 1;
                out.bytes += len as u64;
                if last_seq != 0 && h.seq > last_seq + 1 {
                    out.gaps += h.seq - last_seq - 1;
                }
                last_seq = last_seq.max(h.seq);
                let (a0, t0) = *origin.get_or_insert((at, h.timestamp_us));
                if at >= shared.settle_until {
                    let due =
                        a0 + std::time::Duration::from_micros(h.timestamp_us.saturating_sub(t0));
                    pending.push(at.saturating_duration_since(due).as_micros() as u64);
                    if pending.len() >= FLUSH_EVERY {
                        flush(shard, &mut pending);
                    }
                }
                if let Some(seq) = acks.on_slice(h.seq, len, at) {
                    let _ = c.ack(seq).await;
                }
            }
            Event::Text(v) => {
                if v["type"] == "stats" {
                    out.dropped = v["slices_dropped"].as_u64().unwrap_or(out.dropped);
                }
            }
            e => {
                out.ended = Some(match e {
                    Event::Closed(Some(code)) => format!("close:{code}"),
                    other => other.ending().unwrap_or("error").to_owned(),
                });
                break;
            }
        }
    }
    flush(shard, &mut pending);
    if out.ended.is_none() && shared.bye {
        let _ = c.send(&json!({"type": "bye"})).await;
        c.close(seatkeeper_protocol::close::NORMAL).await;
    }
    out
}

fn flush(shard: &Mutex<Histogram>, pending: &mut Vec<u64>) {
    if let Ok(mut h) = shard.lock() {
        for v in pending.drain(..) {
            h.record(v);
        }
    }
    pending.clear();
}
