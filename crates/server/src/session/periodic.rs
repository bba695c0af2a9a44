//! A session's periodic messages, the ping and `stats`, run by one shared
//! pacer (a heap per core, the one the built-in engines' slices come from)
//! instead of two tokio timers per session that each wake its task. At
//! 10,000 sessions those timers were 12,000 timer-wheel turns and session
//! task wake-ups a second for two small messages; now a pacer task sets
//! them in the outbox directly and wakes only the writer that sends them.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use seatkeeper_engine::paced::Tick;
use seatkeeper_protocol::ServerMsg;
use tokio::time::{Duration, Instant};

use super::{lock, Session};

/// How often a session that is not streaming (detached, or not yet
/// attached) is looked at again, so a resumed client hears its ping and
/// stats within this long rather than a whole interval later.
const IDLE_RECHECK: Duration = Duration::from_millis(100);

/// When each message is next due.
#[derive(Debug)]
pub(crate) struct Due {
    ping: Instant,
    stats: Instant,
}

impl Due {
    /// Both due at once: the first ping and stats go out as soon as the
    /// session streams, as an interval's first tick did.
    pub(crate) fn now() -> Self {
        let now = Instant::now();
        Self {
            ping: now,
            stats: now,
        }
    }
}

/// Puts `session` on the server's pacer, due now.
pub(crate) fn start(session: &Arc<Session>) {
    let clock: Weak<dyn Tick> = Arc::downgrade(session) as Weak<dyn Tick>;
    session.app.periodic.slot().schedule(clock, Instant::now());
}

impl Tick for Session {
    fn tick(&self, now: Instant) -> Option<Instant> {
        let (ended, streaming) = {
            let m = self.machine();
            (m.ended(), m.streaming())
        };
        if ended {
            return None; // leaves the heap
        }
        if !streaming {
            return Some(now + IDLE_RECHECK);
        }
        let cfg = &self.app.config;
        let mut due = lock(&self.periodic);
        let (mut ping, mut stats) = (None, None);
        if now >= due.ping {
            ping = self
                .conn()
                .map(|conn| Bytes::copy_from_slice(&conn.ping_payload()));
            due.ping = now + cfg.ping_interval;
        }
        if now >= due.stats {
            stats = Some(ServerMsg::Stats(self.stats()).to_json());
            due.stats = now + cfg.stats_interval;
        }
        if ping.is_some() || stats.is_some() {
            // One outbox lock for both (the stats were read before it).
            let mut ob = self.outbox();
            if let Some(payload) = ping {
                ob.set_ping(payload);
            }
            if let Some(text) = stats {
                ob.set_stats(text);
            }
            drop(ob);
            self.wake.notify();
        }
        Some(due.ping.min(due.stats))
    }
}
