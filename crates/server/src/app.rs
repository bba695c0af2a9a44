//! The state every handler and session shares, read-only but for counters.

use std::{
    ops::Deref,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    time::Instant,
};

use seatkeeper_engine::Engine;
use seatkeeper_liveness::Sampler;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use crate::admission::{Admission, Lease, Refusal};
pub use crate::session::shared::{Recent, Shared};
use crate::{config::Config, metrics};

/// Shared server state: what sessions share (see [`Shared`], which this
/// derefs to) and what only the routes need.
pub struct App {
    shared: Arc<Shared>,
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// Every spawned connection and session task.
    pub tracker: TaskTracker,
    /// Process start.
    pub started: Instant,
    /// Set by `POST /drain`: no fresh sessions, existing ones run out.
    pub draining: AtomicBool,
}

impl Deref for App {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
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
            shared: Arc::new(Shared::new(config, admission, sampler, shutdown)),
            engine,
            tracker: TaskTracker::new(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
        })
    }

    /// What sessions and connections share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
