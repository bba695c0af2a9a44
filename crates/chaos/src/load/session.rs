//! One load-generator session: connect, hello, read and ack until the end,
//! bye.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{FutureExt, StreamExt};
use seatkeeper_protocol::{SliceHeader, SLICE_HEADER_LEN};
use serde_json::json;
use tokio::{sync::Semaphore, time::Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::{
    client::{describe, AckPolicy, Client, Event, HelloOutcome},
    hist::Histogram,
    target::Target,
};

/// Latency samples buffered per session before taking a shard's lock.
const FLUSH_EVERY: usize = 256;

/// What all sessions share.
pub(super) struct Shared {
    pub(super) target: Target,
    /// Cancelled when the run's duration is over.
    pub(super) stop: CancellationToken,
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
    let mut st = Stream {
        out,
        pending: Vec::with_capacity(FLUSH_EVERY),
        origin: None,
        last_seq: 0,
    };
    // One read batch: wait for the first message, then take every message
    // already decodable without waiting, then one cumulative ack for the
    // whole batch — the C epoll client's "one ack per read". No timer per
    // session: the end of the run is one token every session waits on.
    'run: loop {
        let first = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            m = c.ws.next() => m,
        };
        let at = Instant::now();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match st.on_message(msg, at, &shared, &mut acks) {
                Step::Go => {}
                Step::AckNow(seq) => {
                    let _ = c.ack(seq).await;
                }
                Step::Ended(how) => {
                    st.out.ended = Some(how);
                    break 'run;
                }
            }
            if st.pending.len() >= FLUSH_EVERY {
                flush(shard, &mut st.pending);
            }
            next = c.ws.next().now_or_never();
        }
        if acks.has_pending() {
            let _ = c.ack(acks.take()).await;
        }
    }
    let Stream {
        out, mut pending, ..
    } = st;
    flush(shard, &mut pending);
    if out.ended.is_none() && shared.bye {
        let _ = c.send(&json!({"type": "bye"})).await;
        c.close(seatkeeper_protocol::close::NORMAL).await;
    }
    out
}

/// The per-session state of the read loop.
struct Stream {
    out: Outcome,
    /// Latency samples not yet in the shard.
    pending: Vec<u64>,
    /// The first slice: when it arrived, its media timestamp.
    origin: Option<(Instant, u64)>,
    last_seq: u64,
}

/// What one message asks of the read loop.
enum Step {
    Go,
    AckNow(u64),
    Ended(String),
}

impl Stream {
    fn on_message(
        &mut self,
        msg: Option<Result<Message, tungstenite::Error>>,
        at: Instant,
        shared: &Shared,
        acks: &mut AckPolicy,
    ) -> Step {
        let ending = |e: Event| match e {
            Event::Closed(Some(code)) => format!("close:{code}"),
            other => other.ending().unwrap_or("error").to_owned(),
        };
        let b = match msg {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Text(t))) => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                    if v["type"] == "stats" {
                        self.out.dropped = v["slices_dropped"].as_u64().unwrap_or(self.out.dropped);
                    }
                }
                return Step::Go;
            }
            Some(Ok(Message::Close(f))) => {
                return Step::Ended(ending(Event::Closed(Some(
                    f.map_or(1005, |f| u16::from(f.code)),
                ))))
            }
            Some(Ok(_)) => return Step::Go,
            Some(Err(e)) => return Step::Ended(ending(Event::Error(describe(&e)))),
            None => return Step::Ended(ending(Event::Closed(None))),
        };
        let h = match SliceHeader::decode(&b) {
            Ok(h) => h,
            Err(e) => return Step::Ended(ending(Event::Error(format!("bad slice: {e}")))),
        };
        let len = b.len() - SLICE_HEADER_LEN;
        let out = &mut self.out;
        out.slices += 1;
        out.bytes += len as u64;
        if self.last_seq != 0 && h.seq > self.last_seq + 1 {
            out.gaps += h.seq - self.last_seq - 1;
        }
        self.last_seq = self.last_seq.max(h.seq);
        let (a0, t0) = *self.origin.get_or_insert((at, h.timestamp_us));
        if at >= shared.settle_until {
            let due = a0 + Duration::from_micros(h.timestamp_us.saturating_sub(t0));
            self.pending
                .push(at.saturating_duration_since(due).as_micros() as u64);
        }
        // A batch larger than a quarter of the window acks inside the batch
        // too, so a fast stream never waits on a closed window.
        match acks.on_slice(h.seq, len, at) {
            Some(seq) => Step::AckNow(seq),
            None => Step::Go,
        }
    }
}

fn flush(shard: &Mutex<Histogram>, pending: &mut Vec<u64>) {
    if let Ok(mut h) = shard.lock() {
        for v in pending.drain(..) {
            h.record(v);
        }
    }
    pending.clear();
}
