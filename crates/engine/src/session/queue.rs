//! The control queue of one engine session: bounded, one sender, one
//! receiver, and nothing allocated for it until a message is queued.
//!
//! A tokio `mpsc` channel allocates a block of 32 slots when it is created
//! (1.5 KiB per session with a 40-byte [`Control`]), although a streaming
//! session sends its engine a handful of messages in its life. Here the
//! queue is a `VecDeque` that grows on the first message and keeps only
//! what it grew to.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

use super::Control;

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the receiver; a notification sent while it is not waiting is
    /// kept as a permit, so none is missed.
    wake: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Control>,
    sender_alive: bool,
    receiver_alive: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The queue holds `capacity` messages.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The session's end.
#[derive(Debug)]
pub(crate) struct Sender(Arc<Shared>);

/// The engine's end: control messages in order; `None` once the session
/// dropped its end and everything queued was taken.
#[derive(Debug)]
pub struct Receiver(Arc<Shared>);

/// A queue of at most `capacity` messages.
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            sender_alive: true,
            receiver_alive: true,
        }),
        wake: Notify::new(),
        capacity,
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl Sender {
    /// Free slots.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity.saturating_sub(self.0.lock().queue.len())
    }

    /// Queues `msg` without waiting.
    pub(crate) fn try_send(&self, msg: Control) -> Result<(), SendError> {
        {
            let mut s = self.0.lock();
            if !s.receiver_alive {
                return Err(SendError::Closed);
            }
            if s.queue.len() >= self.0.capacity {
                return Err(SendError::Full);
            }
            s.queue.push_back(msg);
        }
        self.0.wake.notify_one();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().sender_alive = false;
        self.0.wake.notify_one();
    }
}

impl Receiver {
    /// The next message; `None` when the session is gone and nothing is left.
    /// Cancel-safe: a message is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<Control> {
        loop {
            {
                let mut s = self.0.lock();
                if let Some(msg) = s.queue.pop_front() {
                    return Some(msg);
                }
                if !s.sender_alive {
                    return None;
                }
            }
            self.0.wake.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.receiver_alive = false;
        s.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_then_none_after_the_sender_goes() {
        let (tx, mut rx) = queue(2);
        tx.try_send(Control::Keyframe).unwrap();
        tx.try_send(Control::Resumed).unwrap();
        assert_eq!(tx.try_send(Control::Keyframe), Err(SendError::Full));
        assert_eq!(tx.capacity(), 0);
        assert_eq!(rx.recv().await, Some(Control::Keyframe));
        assert_eq!(tx.capacity(), 1);
        drop(tx);
        assert_eq!(rx.recv().await, Some(Control::Resumed));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_a_gone_receiver_refuses() {
        let (tx, mut rx) = queue(4);
        let waiter = tokio::spawn(async move {
            let got = rx.recv().await;
            (got, rx)
        });
        tokio::task::yield_now().await;
        tx.try_send(Control::Keyframe).unwrap();
        let (got, rx) = waiter.await.unwrap();
        assert_eq!(got, Some(Control::Keyframe));
        drop(rx);
        assert_eq!(tx.try_send(Control::Keyframe), Err(SendError::Closed));
    }
}
