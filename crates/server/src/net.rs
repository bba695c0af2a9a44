//! The listener: accepts TCP connections, caps how many are open, wraps each
//! socket so the sampler can watch it safely, and serves HTTP/1.1 (with
//! upgrades) on it.

use std::{
    io,
    net::SocketAddr,
    os::fd::AsRawFd,
    pin::Pin,
    sync::{atomic::Ordering::Relaxed, Arc},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use seatkeeper_liveness::SocketHandle;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, error};

use crate::{
    access::{self, Listener},
    app::App,
};

/// What a request knows about its connection.
#[derive(Clone)]
pub struct ConnInfo {
    /// The peer.
    pub peer: SocketAddr,
    /// The socket, for the session's watchdog.
    pub socket: Arc<SocketHandle>,
}

/// A TCP stream whose descriptor is retired from the sampler before it is
/// closed, so a sample can never land on a reused descriptor. It also counts
/// every byte the socket takes, here below TLS, so the count is the TCP
/// stream offset the pong clock compares with the peer's acknowledged bytes.
pub struct TrackedStream {
    stream: Option<TcpStream>,
    socket: Arc<SocketHandle>,
    app: Arc<App>,
    /// The connection's place under `--max-connections`; `None` once dropped.
    permit: Option<OwnedSemaphorePermit>,
}

impl TrackedStream {
    fn io(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.stream.as_mut() {
            Some(s) => Ok(Pin::new(s)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        let _retired = self.socket.retire();
        drop(self.stream.take());
        // The place is free before the gauge says so: whoever reads
        // `connections_open` at 0 can open that many without a refusal.
        drop(self.permit.take());
        self.app.metrics.connections_open.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = self.io()?.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.socket.count_written(n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = self.io()?.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.socket.count_written(n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io()?.poll_shutdown(cx)
    }
}

/// Most connections being told "503 too many connections" at once.
const MAX_REFUSING: usize = 64;

/// How long to back off after an accept error (descriptor limit).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    router: Router,
    tls: Option<TlsAcceptor>,
) {
    let limit = Arc::new(Semaphore::new(app.config.max_connections));
    // Refusals cost a descriptor for up to a second each; under a connection
    // flood, past this many at once the rest are just closed.
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                app.metrics.accept_errors.fetch_add(1, Relaxed);
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    last_error_log = Some(Instant::now());
                    error!(
                        open = app.metrics.connections_open.load(Relaxed),
                        "accept failed: {e} (at the open-file limit? new connections wait)"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            app.metrics.connections_refused.fetch_add(1, Relaxed);
            if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                last_error_log = Some(Instant::now());
                error!(
                    max = app.config.max_connections,
                    "connection limit reached; refusing new connections"
                );
            }
            if let Ok(slot) = Arc::clone(&refusing).try_acquire_owned() {
                app.tracker.spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        app.metrics.connections_open.fetch_add(1, Relaxed);
        let socket = Arc::new(SocketHandle::new(stream.as_raw_fd()));
        let io = TrackedStream {
            stream: Some(stream),
            socket: Arc::clone(&socket),
            app: Arc::clone(&app),
            permit: Some(permit),
        };
        let info = ConnInfo { peer, socket };
        let svc = service(
            router.clone(),
            Listener::Public,
            Some(info),
            app.config.header_timeout,
        );
        let app2 = Arc::clone(&app);
        let tls = tls.clone();
        app.tracker.spawn(async move {
            let served = match tls {
                None => serve_http(io, svc, &app2).await,
                Some(acceptor) => {
                    // The handshake shares the request deadline: a client
                    // that never finishes it costs no more than a slow one.
                    match tokio::time::timeout(app2.config.header_timeout, acceptor.accept(io))
                        .await
                    {
                        Ok(Ok(tls)) => serve_http(tls, svc, &app2).await,
                        Ok(Err(e)) => {
                            debug!(%peer, "TLS handshake failed: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                debug!(%peer, "http connection ended: {e}");
            }
        });
    }
}

/// The per-connection service: marks each request with its listener, its
/// connection and its deadline, then hands it to the router.
///
/// The deadline covers headers and body. It starts when the connection
/// begins waiting for a request — at accept, then after each response —
/// which is also when hyper's header timer starts; the header timer drops a
/// connection whose headers are late, the deadline a body that trickles.
pub(crate) fn service(
    router: Router,
    listener: Listener,
    info: Option<ConnInfo>,
    timeout: Duration,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let waiting_since = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    service_fn(move |mut req: Request<Incoming>| {
        let since = *waiting_since.lock().unwrap_or_else(|e| e.into_inner());
        let ext = req.extensions_mut();
        ext.insert(listener);
        ext.insert(access::Deadline(since + timeout));
        if let Some(info) = &info {
            ext.insert(info.clone());
        }
        let router = router.clone();
        let waiting_since = Arc::clone(&waiting_since);
        async move {
            let resp = router.oneshot(req).await;
            *waiting_since.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
            resp
        }
    })
}

/// Serves HTTP/1.1 with upgrades on one connection until it ends or the
/// server shuts down. (The admin listener goes through here too; its router
/// has no upgrade route, so nothing there is ever upgraded.)
pub(crate) async fn serve_http<I, S>(io: I, svc: S, app: &App) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = axum::response::Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = app.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Tells a connection over the limit why, then closes it.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":"too_many_connections"}"#;
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Write, half-close, then drain what the client sent: closing with its
    // request unread would reset the connection before it reads the answer.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(resp.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}
