//! What every session and connection shares with the rest of the server:
//! the configuration, the seats, the counters, the sampler, the shutdown
//! token. The server's [`App`](crate::App) holds one and derefs to it, so
//! the session module never imports the app (imports go one way).

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use seatkeeper_engine::paced::Pacer;
use seatkeeper_liveness::Sampler;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Session;
use crate::{admission::Admission, config::Config, metrics::Metrics, registry::Registry};

/// How many reaps the operator's page remembers.
const RECENT_REAPS: usize = 32;

/// The latest reaps, newest last, bounded.
#[derive(Debug, Default)]
pub struct Recent(std::sync::Mutex<std::collections::VecDeque<serde_json::Value>>);

impl Recent {
    /// Remembers one, forgetting the oldest past the bound.
    pub fn push(&self, v: serde_json::Value) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == RECENT_REAPS {
            q.pop_front();
        }
        q.push_back(v);
    }

    /// All remembered, oldest first.
    pub fn list(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// See the module docs.
pub struct Shared {
    /// Validated configuration.
    pub config: Config,
    /// Seats and sessions.
    pub registry: Arc<Registry<Session>>,
    /// Pool admission, in pool mode.
    pub admission: Option<Arc<dyn Admission>>,
    /// The liveness sampler.
    pub sampler: Sampler,
    /// Counters.
    pub metrics: Metrics,
    /// Root of the shutdown tree.
    pub shutdown: CancellationToken,
    /// Pinged whenever a seat is released.
    pub released: Notify,
    /// The latest reaps with their evidence (the operator's page).
    pub recent_reaps: Recent,
    /// Runs every session's ping and `stats` ([`super::periodic`]).
    pub(crate) periodic: Pacer,
    next_conn: AtomicU64,
}

impl Shared {
    /// Builds the shared state.
    pub fn new(
        config: Config,
        admission: Option<Arc<dyn Admission>>,
        sampler: Sampler,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            registry: Registry::new(config.seats),
            config,
            admission,
            sampler,
            metrics: Metrics::default(),
            shutdown,
            released: Notify::new(),
            recent_reaps: Recent::default(),
            periodic: Pacer::new(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Relaxed)
    }

    /// Called after a seat is released.
    pub fn seat_released(&self) {
        self.released.notify_waiters();
        if let Some(a) = &self.admission {
            a.released();
        }
    }
}
