//! External engines: any process (a Python model on a GPU, say) connects to
//! seatkeeper over a Unix or TCP socket, says `hello`, and from then on
//! serves sessions: it receives `session_start`, `params`, `keyframe` and
//! `session_end`, and pushes binary slices tagged with a session handle.
//! `docs/ENGINE.md` is the protocol's reference; [`frame`] is its framing.
//!
//! One engine connection serves at a time, with many sessions multiplexed
//! over it. A second engine that connects while one is live is refused
//! (`error` `engine_busy`, then closed): taking over would cut off live
//! sessions because of a stray process. As soon as the live engine's
//! connection ends (process killed, socket closed, protocol error, stopped
//! reading), its sessions fail and the next engine to connect serves.
//!
//! Nothing in the server ever waits on the engine: control messages go
//! through a bounded write queue drained by a writer task. Each session has
//! its own share of that queue; a session past it fails alone with
//! [`EngineError::Flooded`] (the client's flood), and only an engine that
//! stops reading fails sessions with [`EngineError::Stalled`].
//!
//! # Layout
//! - [`frame`]: length-prefixed frames, JSON and slice (public: Rust engines
//!   and tests use it too).
//! - `messages`: the JSON messages, both directions.
//! - `listen`: binding the socket, accepting connections.
//! - `serve`: one connection's handshake, reader loop and writer task.
//! - `conn`: one connection's state: sessions by handle, the write queue;
//!   `conn/incoming`: what it does with each message from the engine.
//! - `forward`: opening a session and forwarding its control messages.

pub mod frame;

mod conn;
mod forward;
mod listen;
mod messages;
mod serve;

use std::{
    io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{BoxFuture, Engine, EngineError, EngineSession, EngineSpec, OpenRequest};
use conn::Conn;

/// Every bound of the engine link, in one place. `Default` is what
/// `--engine unix:…`/`tcp:…` runs with; docs/ENGINE.md lists the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame length (version + type + body) accepted from an engine;
    /// a longer one drops the connection before anything is allocated.
    pub max_frame_bytes: usize,
    /// Most concurrent sessions on one engine connection (an engine may ask
    /// for fewer in its `hello`).
    pub max_sessions: usize,
    /// `params` and progress frames one session may have queued for the
    /// engine and not yet written; past it the session fails alone with
    /// `params_flood`. The write queue holds every session's share, so one
    /// session never fills it for the others.
    pub session_queue_frames: usize,
    /// Bytes of those frames one session may have queued (one frame always
    /// fits, however large).
    pub session_queue_bytes: usize,
    /// A single write to the engine that makes no progress for this long
    /// drops the connection; its sessions fail with `engine_stalled`.
    pub write_stall_timeout: Duration,
    /// Time from accepting a connection to its `hello`.
    pub hello_timeout: Duration,
    /// Time from `session_start` to `session_ready` (or `session_error`).
    pub open_timeout: Duration,
    /// Most engine connections at once, live or still handshaking; more
    /// wait in the kernel's accept backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: frame::MAX_FRAME_BYTES,
            max_sessions: 256,
            session_queue_frames: 64,
            session_queue_bytes: 1 << 20,
            write_stall_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            open_timeout: Duration::from_secs(30),
            max_connections: 8,
        }
    }
}

/// A snapshot of the engine link, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// An engine connection is live.
    pub connected: bool,
    /// The live engine said it is warm.
    pub warm: bool,
    /// The live engine's name.
    pub name: Option<String>,
    /// The live engine's version.
    pub version: Option<String>,
    /// The live engine's `hello.capabilities`.
    pub capabilities: Option<Map<String, Value>>,
    /// Sessions open (or opening) on the live connection.
    pub sessions: usize,
    /// Slices received on the live connection and handed to sessions.
    pub slices: u64,
    /// Slices received for sessions that had just ended (discarded).
    pub discarded: u64,
    /// The fields of the engine's latest `stats` message.
    pub stats: Option<Map<String, Value>>,
}

/// The external engine: the listening socket and the engine connected to it.
/// Dropping it stops listening, drops the engine connection and removes a
/// Unix socket file.
pub struct External {
    inner: Arc<Inner>,
    addr: String,
    unix_path: Option<String>,
}

/// What the accept loop, the connections and [`External`] share.
struct Inner {
    limits: Limits,
    /// Cancelled when [`External`] is dropped; parent of every connection's token.
    shutdown: CancellationToken,
    /// The engine that serves, if any (possibly just torn down).
    current: Mutex<Option<Arc<Conn>>>,
    connections: Arc<Semaphore>,
    conn_ids: AtomicU64,
}

impl Inner {
    fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn current_slot(&self) -> MutexGuard<'_, Option<Arc<Conn>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> Option<Arc<Conn>> {
        self.current_slot()
            .clone()
            .filter(|c| !c.closed.is_cancelled())
    }

    /// Makes `conn` the serving engine unless a live one holds the slot;
    /// then `Err` names it.
    fn claim(&self, conn: &Arc<Conn>) -> Result<(), String> {
        let mut slot = self.current_slot();
        match slot.as_ref() {
            Some(live) if !live.closed.is_cancelled() => Err(live.hello.name.clone()),
            _ => {
                *slot = Some(conn.clone());
                Ok(())
            }
        }
    }

    /// Empties the slot if `conn` still holds it.
    fn release(&self, conn: &Arc<Conn>) {
        let mut slot = self.current_slot();
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *slot = None;
        }
    }
}

/// Listens where `spec` says (`unix:PATH` or `tcp:HOST:PORT`) with the
/// default [`Limits`], and accepts engines in a spawned task.
pub async fn bind(spec: &EngineSpec) -> io::Result<Arc<External>> {
    bind_with(spec, Limits::default()).await
}

/// [`bind`] with explicit limits.
pub async fn bind_with(spec: &EngineSpec, limits: Limits) -> io::Result<Arc<External>> {
    if limits.session_queue_frames == 0
        || limits.session_queue_bytes == 0
        || limits.max_sessions == 0
        || limits.max_connections == 0
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "engine limits: session_queue_frames, session_queue_bytes, max_sessions and max_connections must be positive",
        ));
    }
    let (listener, addr) = listen::bind(spec).await?;
    let inner = Arc::new(Inner {
        limits,
        shutdown: CancellationToken::new(),
        current: Mutex::new(None),
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        conn_ids: AtomicU64::new(0),
    });
    tokio::spawn(listen::accept_loop(listener, inner.clone()));
    tracing::info!(addr, "waiting for an external engine");
    let unix_path = match spec {
        EngineSpec::Unix(path) => Some(path.clone()),
        _ => None,
    };
    Ok(Arc::new(External {
        inner,
        addr,
        unix_path,
    }))
}

/// The engine any spec names: built-in ones directly, external ones bound
/// and listening (see [`bind`]).
pub async fn build(spec: &EngineSpec) -> io::Result<Arc<dyn Engine>> {
    build_for(spec, Limits::default().max_sessions).await
}

/// [`build`] for a server with `seats` seats: an external engine is never
/// offered more sessions than the server can hold (`welcome.max_sessions`).
pub async fn build_for(spec: &EngineSpec, seats: usize) -> io::Result<Arc<dyn Engine>> {
    match crate::spec::built_in(spec) {
        Some(engine) => Ok(engine),
        None => {
            let defaults = Limits::default();
            let limits = Limits {
                max_sessions: defaults.max_sessions.min(seats.max(1)),
                ..defaults
            };
            Ok(bind_with(spec, limits).await?)
        }
    }
}

impl External {
    /// Where engines connect, in `--engine` form (`unix:PATH`, `tcp:IP:PORT`
    /// with the real port).
    pub fn local_addr(&self) -> &str {
        &self.addr
    }

    /// A snapshot of the live engine connection (all empty without one).
    pub fn status(&self) -> Status {
        self.inner.current().map(|c| c.status()).unwrap_or_default()
    }
}

impl Engine for External {
    fn name(&self) -> String {
        self.addr.clone()
    }

    fn is_ready(&self) -> bool {
        self.inner.current().is_some_and(|c| c.is_ready())
    }

    fn stat_gauges(&self) -> Vec<(String, f64)> {
        self.inner.current().map(|c| c.gauges()).unwrap_or_default()
    }

    fn open(&self, req: OpenRequest) -> BoxFuture<Result<EngineSession, EngineError>> {
        let conn = self.inner.current().filter(|c| c.is_ready());
        let limit = self.inner.limits.open_timeout;
        Box::pin(async move {
            match conn {
                Some(conn) => forward::open(conn, req, limit).await,
                None => Err(EngineError::NotReady),
            }
        })
    }
}

impl Drop for External {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
