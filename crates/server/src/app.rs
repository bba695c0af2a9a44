//! The state every handler and session shares, read-only but for counters.

use std::{
    any::Any,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Instant,
};

use seatkeeper_engine::{BoxFuture, Engine};
use seatkeeper_liveness::Sampler;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    metrics::{self, Metrics},
    registry::Registry,
};

/// Why a fresh `hello` was refused by the admission policy (the pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `error.code` for the client (`bad_seat_token`, `pool_unavailable`, …).
    pub code: String,
    /// What the client can act on.
    pub message: String,
    /// The close code: 1008 for a bad token, 1013 for "try again later".
    pub close_code: u16,
}

/// A lease the session holds until it ends (the pool's seat claim).
pub type Lease = Box<dyn Any + Send>;

/// Extra admission for fresh sessions (pool mode). Resumes bypass it: the
/// resumed session already holds its lease.
pub trait Admission: Send + Sync + 'static {
    /// Admits a fresh session with the `hello`'s seat token.
    fn admit(&self, seat_token: Option<String>) -> BoxFuture<Result<Lease, Refusal>>;
    /// Whether new sessions can be admitted now (feeds `/readyz`).
    fn ready(&self) -> bool;
    /// Seats reserved for sessions not yet started (unredeemed pool
    /// claims): with the held ones, they make the pod full for `/readyz`.
    fn reserved(&self) -> u32 {
        0
    }
    /// A seat was released: publish it soon.
    fn released(&self) {}
    /// Appends the admission's metrics (Prometheus text).
    fn render_metrics(&self, _out: &mut String) {}
    /// The fleet as the pool sees it (`pool ls`), for the operator's page.
    fn fleet(&self) -> BoxFuture<Option<serde_json::Value>> {
        Box::pin(async { None })
    }
}

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

/// Shared server state.
pub struct App {
    /// Validated configuration.
    pub config: Config,
    /// Seats and sessions.
    pub registry: Arc<Registry>,
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// Pool admission, in pool mode.
    pub admission: Option<Arc<dyn Admission>>,
    /// The liveness sampler.
    pub sampler: Sampler,
    /// Counters.
    pub metrics: Metrics,
    /// Root of the shutdown tree.
    pub shutdown: CancellationToken,
    /// Every spawned connection and session task.
    pub tracker: TaskTracker,
    /// Pinged whenever a seat is released.
    pub released: Notify,
    /// Process start.
    pub started: Instant,
    /// Set by `POST /drain`: no fresh sessions, existing ones run out.
    pub draining: AtomicBool,
    /// The latest reaps with their evidence (the operator's page).
    pub recent_reaps: Recent,
    next_conn: AtomicU64,
}

impl App {
    /// Builds the shared state.
    pub fn new(
        config: Config,
        engine: Arc<dyn Engine>,
        admission: Option<Arc<dyn Admission>>,
        sampler: Sampler,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            registry: Registry::new(config.seats),
            config,
            engine,
            admission,
            sampler,
            metrics: Metrics::default(),
            shutdown,
            tracker: TaskTracker::new(),
            released: Notify::new(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            recent_reaps: Recent::default(),
            next_conn: AtomicU64::new(1),
        })
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

    /// Whether a new session could start now.
    pub fn ready(&self) -> bool {
        let seats = self.registry.count();
        let reserved = self.admission.as_ref().map_or(0, |a| a.reserved());
        seats.held.saturating_add(reserved) < seats.total
            && self.engine.is_ready()
            && self.admission.as_ref().is_none_or(|a| a.ready())
            && !self.is_draining()
            && !self.shutdown.is_cancelled()
    }

    /// Whether the pod is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// The `/metrics` body: the server's families, then the admission's.
    pub fn render_metrics(&self) -> String {
        let (seats, sessions) = self.registry.snapshot();
        let mut out = metrics::render(&metrics::View {
            metrics: &self.metrics,
            seats_total: seats.total,
            seats_held: seats.held,
            detached: sessions.iter().filter(|s| s.is_detached()).count() as u64,
            engine_ready: self.engine.is_ready(),
            sweeps: self.sampler.stats(),
            engine_stats: self.engine.stat_gauges(),
        });
        if let Some(a) = &self.admission {
            a.render_metrics(&mut out);
        }
        out
    }

    /// Ready as a pool member: serving, engine warm, registered, not
    /// draining — whether or not a seat is free, so a full fleet does not
    /// look unavailable to the cluster.
    pub fn member_ready(&self) -> bool {
        self.engine.is_ready()
            && self.admission.as_ref().is_none_or(|a| a.ready())
            && !self.is_draining()
            && !self.shutdown.is_cancelled()
    }
}
