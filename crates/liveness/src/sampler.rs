//! One thread sweeps every watched socket once per interval.
//!
//! The thread is not a tokio task on purpose: the sessions' runtime may be
//! busy or wedged, and the verdict must not wait for it. A sweep copies the
//! registry (a vector of `Arc`s) under a short lock and samples outside it,
//! so registering or dropping a watch never waits for a sweep. On a reap the
//! sampler tells the owner through [`Hooks::on_reap`] and then aborts the
//! socket itself (reset, shutdown); the owner's writer need not cooperate.
//!
//! A sweep asks the kernel only about sockets in doubt: one whose client
//! keeps up (an ack or a pong arrived since the previous sweep, nothing
//! waits to be written, no ping out) is skipped for up to a bounded number
//! of sweeps; [`crate::doubt`] has the rule and why it never loses a reap.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    detector::{Detector, DetectorConfig, Observation, Verdict},
    doubt::{self, Doubt, Plan, Signals, Why},
    pings::Pings,
    socket::SocketHandle,
    sys, Evidence,
};

/// What a watched connection's owner provides.
pub trait Hooks: Send + Sync + 'static {
    /// The connection's pings: the sampler marks which ones the peer's TCP
    /// has acknowledged and judges the oldest unanswered one.
    fn pings(&self) -> &Pings;
    /// Called once, from the sampler thread, just before the socket is
    /// aborted. Must not block.
    fn on_reap(&self, evidence: &Evidence);
    /// Every verdict of every kernel look (a reap's also goes to
    /// `on_reap`; a sweep that skipped the look leaves the last verdict
    /// standing), from the sampler thread, for whoever watches (the
    /// operator's page). Must not block.
    fn observed(&self, _verdict: &Verdict) {}
}

struct Entry {
    socket: Arc<SocketHandle>,
    hooks: Arc<dyn Hooks>,
    /// Touched by the sampler thread only; the mutex makes the entry `Sync`.
    state: Mutex<State>,
}

/// One socket's detector and skip rule.
pub(crate) struct State {
    pub(crate) detector: Detector,
    pub(crate) doubt: Doubt,
}

/// What one socket's turn in a sweep came to.
#[derive(Debug)]
pub(crate) enum Turn {
    /// Not in doubt: no kernel look.
    Skipped,
    /// Looked at (for this reason), and already closed by its owner.
    Closed(Why),
    /// Looked at (for this reason) and judged.
    Judged(Verdict, Why),
}

impl State {
    /// One socket's turn at `now`, I/O left to `sample` (the kernel look),
    /// so tests drive it with simulated sockets and time.
    pub(crate) fn turn(
        &mut self,
        now: Instant,
        max_gap: u32,
        pong_rule: bool,
        signals: Signals,
        pings: &Pings,
        sample: impl FnOnce() -> Result<crate::Sample, crate::SampleError>,
    ) -> Turn {
        let why = match self.doubt.plan(max_gap, signals) {
            Plan::Look(why) => why,
            Plan::Skip => return Turn::Skipped,
            Plan::SkipEmpty => {
                self.detector.still_empty(now);
                return Turn::Skipped;
            }
        };
        let sample = sample();
        let bytes_acked = match &sample {
            Ok(s) => s.bytes_acked,
            Err(_) => None,
        };
        // Off Linux (or on a kernel without the count) a ping counts from
        // its write. A closed socket's pings are not looked at.
        let ping = match (&sample, pong_rule) {
            (Ok(_) | Err(crate::SampleError::Unsupported), true) => {
                pings.acknowledged(now, bytes_acked)
            }
            _ => None,
        };
        let obs = Observation { sample, ping };
        if matches!(obs.sample, Err(crate::SampleError::Closed)) {
            return Turn::Closed(why);
        }
        let verdict = self.detector.observe(now, &obs);
        self.doubt.looked(&verdict, &obs.sample, signals.written);
        Turn::Judged(verdict, why)
    }
}

#[derive(Default)]
struct Registry {
    entries: HashMap<u64, Arc<Entry>>,
    next_id: u64,
    /// Bumped on every insert and removal, so a sweep copies the registry
    /// only when it changed.
    version: u64,
}

/// A sweep's copy of the registry, kept from sweep to sweep while the
/// registry does not change (most sweeps skip most looks, and copying
/// every `Arc` each time would then be much of a sweep's cost). A removed
/// entry lingers here until the next sweep at most.
#[derive(Default)]
pub struct Batch {
    entries: Vec<(u64, Arc<Entry>)>,
    version: Option<u64>,
}

/// Sweep figures, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct SamplerStats {
    /// Completed sweeps.
    pub sweeps: AtomicU64,
    /// Sockets swept over all sweeps, looked at or skipped (so sweep time
    /// divided by this is the cost per socket per sweep).
    pub samples: AtomicU64,
    /// Kernel looks over all sweeps (sockets in doubt).
    pub looks: AtomicU64,
    /// Kernel looks over all sweeps by why the socket was in doubt, in
    /// the order of [`Why::ALL`].
    pub looks_by_why: [AtomicU64; Why::ALL.len()],
    /// Looks skipped over all sweeps (clients that kept up; see
    /// [`crate::doubt`]).
    pub exempted: AtomicU64,
    /// Kernel looks in the last sweep.
    pub last_sweep_looks: AtomicU64,
    /// Looks skipped in the last sweep.
    pub last_sweep_exempted: AtomicU64,
    /// Duration of the last sweep, nanoseconds.
    pub last_sweep_ns: AtomicU64,
    /// Sockets in the last sweep (looked at or skipped; not those being
    /// closed by their owners).
    pub last_sweep_sockets: AtomicU64,
    /// Total time spent sweeping, nanoseconds (wall clock: includes time the
    /// thread waited for a core).
    pub sweep_ns_total: AtomicU64,
    /// CPU time the sweeps used, nanoseconds (what watching costs).
    pub sweep_cpu_ns_total: AtomicU64,
}

struct Shared {
    registry: Mutex<Registry>,
    stop: Mutex<bool>,
    wake: Condvar,
    stats: SamplerStats,
    interval: Duration,
    config: DetectorConfig,
    /// Most sweeps between two looks at one socket ([`doubt::max_gap`]).
    max_gap: u32,
}

/// The sampler: a handle on the sweeping thread. The thread stops when
/// [`stop`](Self::stop) is called or the last clone is dropped.
#[derive(Clone)]
pub struct Sampler {
    shared: Arc<Shared>,
    _stopper: Arc<Stopper>,
}

struct Stopper(Arc<Shared>);

impl Drop for Stopper {
    fn drop(&mut self) {
        *self.0.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.wake.notify_all();
    }
}

/// A watched socket; dropping it stops the watching.
#[must_use = "dropping a Watch stops watching the socket"]
pub struct Watch {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut reg = lock(&self.shared.registry);
        reg.entries.remove(&self.id);
        reg.version += 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sampler {
    /// Starts the sampler thread.
    pub fn start(interval: Duration, config: DetectorConfig) -> std::io::Result<Self> {
        if !sys::SUPPORTED {
            tracing::warn!(
                "kernel liveness figures are not available on this platform: \
                 the send-stall and peer-close rules are off; only the pong rule reaps"
            );
        }
        let shared = Arc::new(Shared {
            registry: Mutex::default(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            stats: SamplerStats::default(),
            interval,
            config,
            max_gap: doubt::max_gap(interval, config.grace),
        });
        let thread_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("seatkeeper-sampler".into())
            .spawn(move || run(&thread_shared))?;
        Ok(Self {
            _stopper: Arc::new(Stopper(Arc::clone(&shared))),
            shared,
        })
    }

    /// Watches `socket` until the returned guard is dropped.
    pub fn watch(&self, socket: Arc<SocketHandle>, hooks: Arc<dyn Hooks>) -> Watch {
        let entry = Arc::new(Entry {
            socket,
            hooks,
            state: Mutex::new(State {
                detector: Detector::new(self.shared.config, Instant::now()),
                doubt: Doubt::default(),
            }),
        });
        let mut reg = lock(&self.shared.registry);
        let id = reg.next_id;
        reg.next_id += 1;
        reg.version += 1;
        reg.entries.insert(id, entry);
        Watch {
            shared: Arc::clone(&self.shared),
            id,
        }
    }

    /// Sweep figures.
    pub fn stats(&self) -> &SamplerStats {
        &self.shared.stats
    }

    /// Sockets watched now.
    pub fn watched(&self) -> usize {
        lock(&self.shared.registry).entries.len()
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.shared.interval
    }

    /// Most sweeps a socket goes without a kernel look.
    pub fn max_gap(&self) -> u32 {
        self.shared.max_gap
    }

    /// Runs one sweep now on the calling thread (benchmarks); keep `batch`
    /// from sweep to sweep, as the sampler thread does.
    pub fn sweep_now(&self, batch: &mut Batch) {
        sweep(&self.shared, batch);
    }
}

fn run(shared: &Shared) {
    let mut batch = Batch::default();
    let mut next = Instant::now() + shared.interval;
    loop {
        {
            let mut stop = lock(&shared.stop);
            loop {
                if *stop {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stop = shared
                    .wake
                    .wait_timeout(stop, next - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        sweep(shared, &mut batch);
        // Fixed cadence; after a long stall, start afresh rather than burst.
        next += shared.interval;
        let now = Instant::now();
        if next < now {
            next = now + shared.interval;
        }
    }
}

/// Sockets whose signals a sweep reads before it judges any of them. Each
/// socket's counters are written by its own connection's threads, so they
/// are seldom in the sampler's cache: read one socket at a time, between
/// the locks of judging the one before, every miss is waited out in turn
/// (at 19,000 sockets under load, the first read of a socket's state was
/// most of the sweep's own time); read a chunk ahead as plain loads, the
/// core overlaps them.
const READ_AHEAD: usize = 64;

/// What `entry`'s owner shows this sweep, read without a syscall; `None`
/// once the owner is closing it (it is not swept then).
fn shown_by(shared: &Shared, entry: &Entry, now: Instant) -> Option<Signals> {
    if entry.socket.is_closing() {
        return None;
    }
    Some(Signals {
        progress: entry.socket.progress(),
        written: entry.socket.bytes_written(),
        ping_needs_look: shared.config.pong_timeout.is_some_and(|timeout| {
            entry
                .hooks
                .pings()
                .needs_look(now, timeout, shared.interval)
        }),
    })
}

fn sweep(shared: &Shared, batch: &mut Batch) {
    let started = Instant::now();
    let cpu_started = sys::thread_cpu_time();
    {
        let reg = lock(&shared.registry);
        if batch.version != Some(reg.version) {
            batch.entries.clear();
            batch
                .entries
                .extend(reg.entries.iter().map(|(id, e)| (*id, Arc::clone(e))));
            batch.version = Some(reg.version);
        }
    }
    let mut reaped = Vec::new();
    // One clock reading per sweep: a sweep is milliseconds long, far inside
    // any grace window.
    let now = Instant::now();
    let mut exempted = 0u64;
    // Looks, by why the socket was in doubt; their sum is the looks.
    let mut by_why = [0u64; Why::ALL.len()];
    for chunk in batch.entries.chunks(READ_AHEAD) {
        // First what each socket's owner shows, for the whole chunk: plain
        // loads, no lock unless a ping is out.
        let shown: [Option<Signals>; READ_AHEAD] =
            std::array::from_fn(|i| chunk.get(i).and_then(|(_, e)| shown_by(shared, e, now)));
        for ((id, entry), signals) in chunk.iter().zip(shown) {
            let Some(signals) = signals else {
                continue;
            };
            let turn = lock(&entry.state).turn(
                now,
                shared.max_gap,
                shared.config.pong_timeout.is_some(),
                signals,
                entry.hooks.pings(),
                || entry.socket.sample(),
            );
            let verdict = match turn {
                Turn::Skipped => {
                    exempted += 1;
                    continue;
                }
                Turn::Closed(why) => {
                    by_why[why.index()] += 1;
                    continue; // the owner is tearing it down
                }
                Turn::Judged(v, why) => {
                    by_why[why.index()] += 1;
                    v
                }
            };
            entry.hooks.observed(&verdict);
            if let Verdict::Reap(evidence) = verdict {
                reaped.push(*id);
                // The verdict is recorded before the abort, so whatever the
                // owner's I/O sees of the reset cannot be taken for the cause.
                entry.hooks.on_reap(&evidence);
                entry.socket.abort();
            }
        }
    }
    if !reaped.is_empty() {
        let mut reg = lock(&shared.registry);
        for id in reaped {
            reg.entries.remove(&id);
        }
        reg.version += 1;
    }
    let looks: u64 = by_why.iter().sum();
    // Sockets their owners are closing are not swept, so not counted.
    let n = looks + exempted;
    let took = started.elapsed().as_nanos() as u64;
    let s = &shared.stats;
    s.sweeps.fetch_add(1, Ordering::Relaxed);
    s.samples.fetch_add(n, Ordering::Relaxed);
    s.looks.fetch_add(looks, Ordering::Relaxed);
    for (total, n) in s.looks_by_why.iter().zip(by_why) {
        total.fetch_add(n, Ordering::Relaxed);
    }
    s.exempted.fetch_add(exempted, Ordering::Relaxed);
    s.last_sweep_looks.store(looks, Ordering::Relaxed);
    s.last_sweep_exempted.store(exempted, Ordering::Relaxed);
    s.last_sweep_ns.store(took, Ordering::Relaxed);
    s.last_sweep_sockets.store(n, Ordering::Relaxed);
    s.sweep_ns_total.fetch_add(took, Ordering::Relaxed);
    if let (Some(a), Some(b)) = (cpu_started, sys::thread_cpu_time()) {
        s.sweep_cpu_ns_total
            .fetch_add(b.saturating_sub(a).as_nanos() as u64, Ordering::Relaxed);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
