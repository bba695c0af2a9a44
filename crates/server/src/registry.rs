//! Seats, live sessions and resume tokens, under one short lock.
//!
//! A seat is a [`Seat`] guard: reserved by an accepted `hello`, bound to the
//! session once it exists, and released when the guard drops — which removes
//! the session and its token in the same critical section. So "held seats
//! equal live sessions" holds by construction, and `/sessions` can never
//! show a seat without its session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

struct Inner<S> {
    sessions: HashMap<String, Arc<S>>,
    /// Resume token → session id. Only the newest token of a session is here.
    tokens: HashMap<String, String>,
    /// Session id → its current token, to retire it without a scan.
    token_of: HashMap<String, String>,
    /// Seats reserved by a `hello` whose session is still starting.
    reserved: u32,
}

impl<S> Default for Inner<S> {
    fn default() -> Self {
        Self {
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            token_of: HashMap::new(),
            reserved: 0,
        }
    }
}

/// The seat and session registry. Generic over what a session is, so it
/// knows nothing of sessions but their ids (and the server's modules import
/// one way: the session uses the registry, never the reverse).
pub struct Registry<S> {
    total: u32,
    inner: Mutex<Inner<S>>,
}

/// A held seat. Dropping it releases the seat (and removes its session).
#[must_use = "dropping a Seat releases it"]
pub struct Seat<S> {
    registry: Arc<Registry<S>>,
    session: Option<String>,
}

/// Seat figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatCount {
    /// Seats configured.
    pub total: u32,
    /// Seats held (sessions plus starting ones).
    pub held: u32,
}

impl<S> Registry<S> {
    /// A registry with `total` seats.
    pub fn new(total: u32) -> Arc<Self> {
        Arc::new(Self {
            total,
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a free seat, if there is one.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Seat<S>> {
        let mut inner = self.lock();
        if inner.sessions.len() as u32 + inner.reserved >= self.total {
            return None;
        }
        inner.reserved += 1;
        Some(Seat {
            registry: Arc::clone(self),
            session: None,
        })
    }

    /// Seat figures now.
    pub fn count(&self) -> SeatCount {
        let inner = self.lock();
        SeatCount {
            total: self.total,
            held: inner.sessions.len() as u32 + inner.reserved,
        }
    }

    /// Live sessions (in no particular order) and the seat figures, read together.
    pub fn snapshot(&self) -> (SeatCount, Vec<Arc<S>>) {
        let inner = self.lock();
        let count = SeatCount {
            total: self.total,
            held: inner.sessions.len() as u32 + inner.reserved,
        };
        (count, inner.sessions.values().cloned().collect())
    }

    /// One session by id.
    pub fn get(&self, id: &str) -> Option<Arc<S>> {
        self.lock().sessions.get(id).cloned()
    }

    /// Records `token` as the only valid resume token of a live session,
    /// retiring its previous one.
    pub fn set_token(&self, session_id: &str, token: &str) {
        let mut inner = self.lock();
        if !inner.sessions.contains_key(session_id) {
            return;
        }
        if let Some(old) = inner
            .token_of
            .insert(session_id.to_owned(), token.to_owned())
        {
            inner.tokens.remove(&old);
        }
        inner.tokens.insert(token.to_owned(), session_id.to_owned());
    }

    /// Spends a resume token: the session it names, once.
    pub fn redeem(&self, token: &str) -> Option<Arc<S>> {
        let mut inner = self.lock();
        let id = inner.tokens.remove(token)?;
        inner.token_of.remove(&id);
        inner.sessions.get(&id).cloned()
    }
}

impl<S> Seat<S> {
    /// Binds the reserved seat to its session, which becomes listed.
    pub fn bind(&mut self, id: &str, session: Arc<S>) {
        let mut inner = self.registry.lock();
        inner.reserved -= 1;
        self.session = Some(id.to_owned());
        inner.sessions.insert(id.to_owned(), session);
    }
}

impl<S> Drop for Seat<S> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        match self.session.take() {
            Some(id) => {
                inner.sessions.remove(&id);
                if let Some(token) = inner.token_of.remove(&id) {
                    inner.tokens.remove(&token);
                }
            }
            None => inner.reserved -= 1,
        }
    }
}
