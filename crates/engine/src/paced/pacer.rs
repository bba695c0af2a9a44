//! One shared pacer for every built-in session instead of a timer per
//! session: a few tasks (one per core) each hold a heap of "session S is
//! due at T", sleep until the earliest, and run every clock that has come
//! due in that wake-up. At 10,000 sessions × 10 slices/s that is about one
//! wake-up per millisecond per shard rather than 100,000 timer wake-ups
//! and task switches a second.
//!
//! The heap holds weak references: a session that ended simply fails to
//! upgrade and is forgotten, so nothing leaks and no queue outgrows the
//! number of live sessions (each session is in the heap at most once).

use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    sync::{
        atomic::{AtomicUsize, Ordering as AtomicOrdering},
        Arc, Mutex, Once, Weak,
    },
};

use tokio::{
    sync::Notify,
    time::{sleep_until, Instant},
};

/// A clock the pacer drives.
pub trait Tick: Send + Sync + 'static {
    /// Produces what is due at `now`; returns when to be called next, or
    /// `None` to leave the heap (paused; [`Pacer::schedule`] puts it back).
    fn tick(&self, now: Instant) -> Option<Instant>;
}

/// The shared pacer. Cheap to clone; its tasks start on the first
/// session, on that session's runtime.
#[derive(Clone, Default)]
pub struct Pacer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

struct Inner {
    shards: Vec<Arc<Shard>>,
    next: AtomicUsize,
    started: Once,
}

impl Default for Inner {
    fn default() -> Self {
        // One shard per core, so CPU-heavy generators (demo) still use
        // every core; sessions are dealt round-robin.
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            shards: (0..n).map(|_| Arc::new(Shard::default())).collect(),
            next: AtomicUsize::new(0),
            started: Once::new(),
        }
    }
}

#[derive(Default)]
struct Shard {
    heap: Mutex<BinaryHeap<Due>>,
    wake: Notify,
}

struct Due {
    at: Instant,
    clock: Weak<dyn Tick>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    // Reversed: BinaryHeap is a max-heap, the earliest must come first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at)
    }
}

/// Which shard a session was dealt to.
#[derive(Clone)]
pub struct Slot(Arc<Shard>);

impl Pacer {
    /// A new pacer (its tasks start with the first session).
    pub fn new() -> Self {
        Self::default()
    }

    /// Deals a new session to a shard (starting the tasks if needed; must
    /// be called inside a tokio runtime).
    pub fn slot(&self) -> Slot {
        self.inner.started.call_once(|| {
            for s in &self.inner.shards {
                tokio::spawn(drive(Arc::clone(s)));
            }
        });
        let i = self.inner.next.fetch_add(1, AtomicOrdering::Relaxed) % self.inner.shards.len();
        Slot(Arc::clone(&self.inner.shards[i]))
    }
}

impl Slot {
    /// Puts `clock` in the heap, due at `at`. The caller keeps a clock in
    /// the heap at most once (see `Clock::scheduled`).
    pub fn schedule(&self, clock: Weak<dyn Tick>, at: Instant) {
        let earliest = {
            let Ok(mut heap) = self.0.heap.lock() else {
                return;
            };
            let earlier = heap.peek().is_none_or(|d| at < d.at);
            heap.push(Due { at, clock });
            earlier
        };
        if earliest {
            self.0.wake.notify_one();
        }
    }
}

/// One shard's loop: run everything due, sleep until the next, repeat.
async fn drive(shard: Arc<Shard>) {
    let mut due: Vec<Weak<dyn Tick>> = Vec::new();
    loop {
        let now = Instant::now();
        let next = {
            let Ok(mut heap) = shard.heap.lock() else {
                return;
            };
            while heap.peek().is_some_and(|d| d.at <= now) {
                if let Some(d) = heap.pop() {
                    due.push(d.clock);
                }
            }
            heap.peek().map(|d| d.at)
        };
        // Clocks run outside the heap's lock: a clock's own lock is taken
        // by its session task too, and pushing a slice wakes a writer.
        let mut back = Vec::with_capacity(due.len());
        for w in due.drain(..) {
            if let Some(c) = w.upgrade() {
                if let Some(at) = c.tick(now) {
                    back.push(Due { at, clock: w });
                }
            }
        }
        let next = {
            let Ok(mut heap) = shard.heap.lock() else {
                return;
            };
            let earliest = back.iter().map(|d| d.at).min();
            heap.extend(back);
            match (next, earliest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match next {
            // Behind: go round again, but let the writers this wake-up
            // fed run first (never hog a worker while catching up).
            Some(at) if at <= Instant::now() => tokio::task::yield_now().await,
            Some(at) => {
                tokio::select! {
                    () = sleep_until(at) => {}
                    () = shard.wake.notified() => {}
                }
            }
            None => shard.wake.notified().await,
        }
    }
}
