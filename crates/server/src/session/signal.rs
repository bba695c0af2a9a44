//! The two signals on the per-slice path, without locks.
//!
//! - [`Stop`]: a connection's stop signal, set once, awaited by its reader
//!   and its writer. A `CancellationToken` would do, but the writer polls the
//!   signal at least twice per slice (beside every pull and every write), and
//!   polling a token locks its mutex and its `Notify`'s waiter list each
//!   time: 4.4 % of the server's CPU in a profile at 5,000 sessions. Here a
//!   poll is one atomic load and, while pending, a lock-free waker
//!   registration; each side has its own waker slot, so there is no waiter
//!   list at all.
//! - [`Wake`]: "the outbox has something", from the engine's push to the one
//!   writer that pulls. `Notify::notify_one` takes the waiter list's lock on
//!   every slice and stores a permit when the writer is busy (a spurious
//!   wake-up later); an `AtomicWaker` does neither.

use std::{
    future::poll_fn,
    sync::atomic::{AtomicBool, Ordering},
    task::Poll,
};

use futures_util::task::AtomicWaker;

/// Who waits for the signal (one waker slot each).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Reader = 0,
    Writer = 1,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    wakers: [AtomicWaker; 2],
}

impl Stop {
    /// Sets the signal and wakes both sides. Idempotent.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for w in &self.wakers {
            w.wake();
        }
    }

    /// Whether the signal is set.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Resolves once the signal is set. Only `side` may poll this future
    /// (one waker slot per side): a second waiter on the same side would
    /// take the first one's slot.
    pub(crate) async fn stopped(&self, side: Side) {
        poll_fn(|cx| {
            if self.is_stopped() {
                return Poll::Ready(());
            }
            self.wakers[side as usize].register(cx.waker());
            // Look again: a stop between the load and the registration
            // would otherwise be missed.
            if self.is_stopped() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// See the module docs. One waiter at a time: the attached connection's
/// writer (a replaced writer is stopped by its [`Stop`], not by this).
#[derive(Debug, Default)]
pub(crate) struct Wake {
    waker: AtomicWaker,
}

impl Wake {
    /// Something is ready: wake the waiting writer, if one waits.
    pub(crate) fn notify(&self) {
        self.waker.wake();
    }

    /// Resolves with the first `Some` of `ready`, looked at once now and
    /// again after every [`Wake::notify`].
    pub(crate) async fn until<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        // The fast path: something is ready, no waker to register.
        if let Some(v) = ready() {
            return v;
        }
        poll_fn(|cx| {
            // Register, then look: a push between the two is not missed.
            self.waker.register(cx.waker());
            match ready() {
                Some(v) => Poll::Ready(v),
                None => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn both_sides_wake_on_stop_and_a_late_waiter_returns_at_once() {
        let stop = Arc::new(Stop::default());
        let (a, b) = (Arc::clone(&stop), Arc::clone(&stop));
        let reader = tokio::spawn(async move { a.stopped(Side::Reader).await });
        let writer = tokio::spawn(async move { b.stopped(Side::Writer).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!reader.is_finished() && !writer.is_finished());
        stop.stop();
        tokio::time::timeout(Duration::from_secs(5), async {
            reader.await.unwrap();
            writer.await.unwrap();
        })
        .await
        .expect("both sides woke");
        stop.stopped(Side::Reader).await;
        assert!(stop.is_stopped());
    }

    #[tokio::test]
    async fn a_waiting_writer_sees_a_push_and_a_push_before_the_wait_is_not_lost() {
        use std::sync::atomic::AtomicU32;
        let wake = Arc::new(Wake::default());
        let items = Arc::new(AtomicU32::new(0));
        let take = |items: &AtomicU32| {
            let n = items.swap(0, Ordering::AcqRel);
            (n > 0).then_some(n)
        };
        // Pushed before anyone waits: found at once.
        items.store(2, Ordering::Release);
        wake.notify();
        assert_eq!(wake.until(|| take(&items)).await, 2);
        // Pushed while the writer waits: it wakes.
        let (w, i) = (Arc::clone(&wake), Arc::clone(&items));
        let writer = tokio::spawn(async move { w.until(|| take(&i)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished());
        items.store(1, Ordering::Release);
        wake.notify();
        let got = tokio::time::timeout(Duration::from_secs(5), writer).await;
        assert_eq!(got.expect("the writer woke").unwrap(), 1);
    }
}
