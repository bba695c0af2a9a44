//! The pod's side of the pool: register, heartbeat, redeem, release.
//!
//! One task per pod owns the Redis connection and runs every pod-side
//! script in order: heartbeats, redeems and releases never race each other,
//! so the lease set a heartbeat publishes is exactly the agent's own.

mod backoff;
mod lease;
mod refusal;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

pub use lease::Lease;
pub use refusal::{Refusal, TokenProblem};

use crate::config::{ConfigError, PoolConfig};
use crate::conn::{Connector, Target};
use crate::metrics::PoolMetrics;
use crate::token;

/// Capacity of the agent's command queue (redeems and releases). Redeems
/// wait for room; a release that finds it full is replaced by a heartbeat
/// re-sync, so a burst of session ends can never block a drop.
pub const COMMAND_QUEUE: usize = 256;

/// What the server reports at each heartbeat. The closure that produces it
/// runs on the agent task: keep it cheap and non-blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodStatus {
    /// Sessions holding a seat right now.
    pub seats_held: u32,
    /// The engine can serve a new session.
    pub engine_ready: bool,
    /// The pod is shutting down: keep current sessions, take no new claims.
    pub draining: bool,
}

/// Handle on a pod's pool agent. Cheap to clone; the agent task runs until
/// the shutdown token fires, then removes the pod from the pool.
#[derive(Clone)]
pub struct PodAgent {
    shared: Arc<Shared>,
    stopped: CancellationToken,
}

/// State shared by the handle, the task and the leases.
struct Shared {
    cfg: PoolConfig,
    /// Random per process: tells a restarted pod from a live duplicate.
    instance: String,
    redis_ok: AtomicBool,
    registered: AtomicBool,
    /// Live leases, epoch → slot. Only the agent task inserts; a dropping
    /// lease removes itself.
    leases: Mutex<HashMap<u64, u32>>,
    /// Highest epoch this pod has redeemed; re-seeds Redis's counter after
    /// a restart that lost it, so epochs never repeat.
    max_epoch: AtomicU64,
    /// Unexpired, unredeemed claims on this pod, as of the last heartbeat
    /// (less the ones redeemed since).
    reserved: AtomicU32,
    /// Set when the pod refused a second token for a seat it holds: the
    /// next heartbeat asserts the pod's leases over Redis's view.
    assert_leases: AtomicBool,
    commands: mpsc::Sender<Command>,
    nudge: Notify,
    metrics: PoolMetrics,
}

enum Command {
    Redeem {
        hash: String,
        reply: oneshot::Sender<Result<Lease, Refusal>>,
    },
    Release {
        slot: u32,
        epoch: u64,
    },
}

impl Shared {
    fn leases(&self) -> MutexGuard<'_, HashMap<u64, u32>> {
        // Inserts and removes are single map operations: never half-done.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_redis_ok(&self, ok: bool) {
        self.redis_ok.store(ok, Ordering::Relaxed);
        self.metrics
            .redis_up
            .store(u64::from(ok), Ordering::Relaxed);
        if !ok {
            self.registered.store(false, Ordering::Relaxed);
        }
    }
}

impl PodAgent {
    /// Validates `cfg` and spawns the agent task on the current tokio
    /// runtime (call it from inside one). The first heartbeat (the
    /// registration) goes out at once; poll [`PodAgent::registered`] to know
    /// when it landed. `status` is called on every heartbeat; after changing
    /// what it reports (e.g. starting to drain), call [`PodAgent::nudge`].
    pub fn start(
        cfg: PoolConfig,
        status: impl Fn() -> PodStatus + Send + Sync + 'static,
        shutdown: CancellationToken,
    ) -> Result<PodAgent, ConfigError> {
        cfg.validate()?;
        let target = Target::parse(&cfg.redis_url)
            .map_err(|e| ConfigError::redis_url(&cfg.redis_url, &e))?;
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let conn = Connector::new(target, cfg.op_timeout());
        let shared = Arc::new(Shared {
            instance: token::mint()[..16].to_owned(),
            cfg,
            redis_ok: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            leases: Mutex::new(HashMap::new()),
            max_epoch: AtomicU64::new(0),
            reserved: AtomicU32::new(0),
            assert_leases: AtomicBool::new(false),
            commands,
            nudge: Notify::new(),
            metrics: PoolMetrics::default(),
        });
        let stopped = CancellationToken::new();
        let task = task::Task::new(Arc::clone(&shared), Box::new(status), queue, conn);
        tokio::spawn(task.run(shutdown, stopped.clone()));
        Ok(PodAgent { shared, stopped })
    }

    /// Checks a fresh hello's seat token and takes its seat: one atomic
    /// script accepts only a token issued for this pod, unexpired and never
    /// used. Pass `""` when the hello carried no token.
    pub async fn redeem(&self, seat_token: &str) -> Result<Lease, Refusal> {
        let result = self.try_redeem(seat_token).await;
        let m = &self.shared.metrics;
        PoolMetrics::inc(match &result {
            Ok(_) => &m.redeemed,
            Err(Refusal::BadSeatToken(_)) => &m.redeem_bad_token,
            Err(Refusal::PoolUnavailable(_)) => &m.redeem_unavailable,
        });
        result
    }

    async fn try_redeem(&self, seat_token: &str) -> Result<Lease, Refusal> {
        match token::shape(seat_token) {
            token::Shape::Missing => return Err(Refusal::BadSeatToken(TokenProblem::Missing)),
            token::Shape::Malformed => return Err(Refusal::BadSeatToken(TokenProblem::Malformed)),
            token::Shape::Ok => {}
        }
        if !self.registered() {
            self.nudge();
            return Err(Refusal::PoolUnavailable("pod not registered in the pool"));
        }
        let (reply, answer) = oneshot::channel();
        let request = async {
            let hash = token::hash(seat_token);
            self.shared
                .commands
                .send(Command::Redeem { hash, reply })
                .await
                .map_err(|_| Refusal::PoolUnavailable("pool agent stopped"))?;
            // A lease sent after we gave up is dropped with the channel,
            // which releases its seat.
            answer
                .await
                .unwrap_or(Err(Refusal::PoolUnavailable("pool agent stopped")))
        };
        // Room for a heartbeat ahead of us in the queue plus our own script.
        let deadline = self.shared.cfg.op_timeout() * 3;
        tokio::time::timeout(deadline, request)
            .await
            .unwrap_or(Err(Refusal::PoolUnavailable("pool request timed out")))
    }

    /// Heartbeats now instead of at the next tick (e.g. right after the
    /// pod starts or stops draining).
    pub fn nudge(&self) {
        self.shared.nudge.notify_one();
    }

    /// True while the last Redis round trip succeeded.
    pub fn redis_ok(&self) -> bool {
        self.shared.redis_ok.load(Ordering::Relaxed)
    }

    /// True while the pod's registration is current: Redis reachable and
    /// the last heartbeat accepted. This is what Kubernetes readiness should
    /// follow in pool mode (healthy and registered, not "has a free seat").
    pub fn registered(&self) -> bool {
        self.shared.registered.load(Ordering::Relaxed)
    }

    /// Seats reserved by claims not yet redeemed, as of the last heartbeat:
    /// with the held seats, what makes the pod full for the pool.
    pub fn reserved(&self) -> u32 {
        self.shared.reserved.load(Ordering::Relaxed)
    }

    /// The pod id this agent registers.
    pub fn pod_id(&self) -> &str {
        &self.shared.cfg.pod_id
    }

    /// Pod-side pool counters, for the server's `/metrics`.
    pub fn metrics(&self) -> &PoolMetrics {
        &self.shared.metrics
    }

    /// Resolves once the agent task has ended and the pod has left the pool
    /// (after the shutdown token fired).
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}
