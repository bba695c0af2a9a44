//! seatkeeper's session server: seats, flow-controlled streaming from an
//! engine, the kernel-evidence reaper, and resume.
//!
//! The library entry is [`Server::serve`], which a test can stop through
//! the shutdown token it was built with.
//!
//! # Layout
//! - [`config`]: the validated configuration (every bound and timeout).
//! - [`app`]: shared state (what sessions share, plus what routes need).
//! - [`admission`]: the [`Admission`] hook the pool plugs into.
//! - [`registry`]: seats, sessions and resume tokens under one lock.
//! - [`session`]: a session's shared state and task, its outbox and its
//!   connections.
//! - [`net`]: the accept loop and the reuse-safe socket wrapper.
//! - [`tls`]: optional TLS (rustls) for pods exposed without a tunnel.
//! - [`write_through`]: whole writes and pushed frames, in order, written
//!   vectored; no payload copied or shuffled on partial writes.
//! - `ws`: the upgrade and the `hello` decision.
//! - `http`, `web`: the routes and the embedded web client.
//! - `access`: admin rights (never by address), the request deadline.
//! - [`admin`]: the admin listener (`--admin-listen`).
//! - [`metrics`]: counters and the Prometheus exposition.
//! - `ids`: ids, tokens, wall-clock time.
//! - `reply`: the JSON error body the routes and the upgrade share.

mod access;
pub mod admin;
pub mod admission;
pub mod app;
pub mod config;
mod http;
mod ids;
pub mod metrics;
pub mod net;
pub mod registry;
mod reply;
pub mod session;
#[cfg(test)]
mod test_io;
pub mod tls;
mod web;
pub mod write_through;
mod ws;

use std::{io, sync::Arc, time::Duration};

use seatkeeper_engine::Engine;
use seatkeeper_liveness::{DetectorConfig, Sampler};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use app::{Admission, App, Lease, Refusal};
pub use config::{Config, ConfigError};
pub use registry::SeatCount;

/// How long shutdown waits for sessions and connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Descriptors the process needs besides client sockets (listener, engine,
/// pool, logs, runtime).
const RESERVED_FDS: u64 = 64;

/// Fits `--max-connections` under the process's open-file limit, saying so
/// once: a connection over the cap gets a clear 503, where one over the
/// descriptor limit would only make `accept` fail.
fn fit_to_descriptors(config: &mut Config) {
    let Some(limit) = seatkeeper_liveness::sys::open_file_limit() else {
        return;
    };
    let usable = limit.saturating_sub(RESERVED_FDS).max(1) as usize;
    if config.max_connections > usable {
        warn!(
            max_connections = config.max_connections,
            open_file_limit = limit,
            effective = usable,
            "--max-connections is above what the open-file limit allows; capping it \
             (raise ulimit -n for more)"
        );
        config.max_connections = usable;
    }
}

/// A configured server, not yet serving.
pub struct Server {
    app: Arc<App>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    admin: Option<admin::AdminListener>,
}

impl Server {
    /// Builds the server and starts its sampler thread.
    pub fn new(
        mut config: Config,
        engine: Arc<dyn Engine>,
        admission: Option<Arc<dyn Admission>>,
        shutdown: CancellationToken,
    ) -> io::Result<Self> {
        fit_to_descriptors(&mut config);
        let sampler = Sampler::start(
            config.watchdog_interval,
            DetectorConfig {
                grace: config.stall_grace,
                pong_timeout: config.pong_timeout,
            },
        )?;
        Ok(Self {
            app: App::new(config, engine, admission, sampler, shutdown),
            tls: None,
            admin: None,
        })
    }

    /// Serves HTTPS/WSS with this acceptor (see [`tls::acceptor`]).
    pub fn with_tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Also serves the admin routes on `listener` (see [`admin`]).
    pub fn with_admin(mut self, listener: admin::AdminListener) -> Self {
        self.admin = Some(listener);
        self
    }

    /// The shared state (seat figures for the pool's heartbeat, metrics).
    pub fn app(&self) -> Arc<App> {
        Arc::clone(&self.app)
    }

    /// Serves until the shutdown token is cancelled, then closes every
    /// session with 1001 and waits up to [`SHUTDOWN_GRACE`] for them.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        let app = self.app;
        info!(
            tls = self.tls.is_some(),
            addr = %listener.local_addr()?,
            seats = app.config.seats,
            engine = %app.engine.name(),
            grace_s = app.config.stall_grace.as_secs_f64(),
            "seatkeeper serving"
        );
        if let Some(listener) = self.admin {
            let router = http::admin_router(Arc::clone(&app));
            app.tracker
                .spawn(admin::serve(listener, Arc::clone(&app), router));
        }
        let router = http::router(Arc::clone(&app));
        net::accept_loop(listener, Arc::clone(&app), router, self.tls).await;
        app.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, app.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                tasks = app.tracker.len(),
                "shutdown grace expired with tasks still running"
            );
        }
        info!("seatkeeper stopped");
        Ok(())
    }
}
