//! A TCP relay between a client and the server, standing in for a tunnel.
//! Frozen, it stops reading pod-side and keeps both TCP connections open —
//! what a tunnel does when the browser behind it is gone. Draining, it keeps
//! reading pod-side and throws the bytes away (a connector that keeps its
//! buffers empty after its browser left), so the pod's send queue never
//! backs up and only the pong rule can tell. Dropping the
//! relay ends its listener and every relayed connection, so a long run of
//! scenarios leaks nothing.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
};
use tokio_util::sync::CancellationToken;

use crate::ChaosError;

/// A running relay.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    cut: Arc<Notify>,
    stop: CancellationToken,
}

impl Relay {
    /// Relays every connection made to the returned address to `upstream`.
    ///
    /// # Panics
    /// When no loopback port can be bound (test helper; see [`Relay::bind`]).
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::bind(upstream).await.expect("bind relay")
    }

    /// Like [`start`](Self::start), reporting a failure to bind.
    pub async fn bind(upstream: SocketAddr) -> Result<Self, ChaosError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ChaosError::io("bind relay"))?;
        let addr = listener
            .local_addr()
            .map_err(ChaosError::io("relay addr"))?;
        let frozen = Arc::new(AtomicBool::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let (f, c, s) = (Arc::clone(&frozen), Arc::clone(&cut), stop.clone());
        let d = Arc::clone(&draining);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else { return };
                let Ok(pod) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (f, c, s) = (Arc::clone(&f), Arc::clone(&c), s.clone());
                let d = Arc::clone(&d);
                tokio::spawn(async move {
                    tokio::select! {
                        _ = pipe(client, pod, f, d) => {}
                        _ = c.notified() => {}
                        _ = s.cancelled() => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            frozen,
            draining,
            cut,
            stop,
        })
    }

    /// Stops reading from the pod; both TCP connections stay open.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Keeps reading from the pod but forwards nothing either way from now
    /// on: the browser is gone, the connector still drains.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Drops every relayed connection at once (a network blip); new
    /// connections are still relayed.
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn pipe(
    client: TcpStream,
    pod: TcpStream,
    frozen: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
) {
    let _ = client.set_nodelay(true);
    let _ = pod.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut pr, mut pw) = pod.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = cr.read(&mut buf).await {
            if n > 0 && draining.load(Ordering::SeqCst) {
                continue; // the browser is gone: nothing reaches the pod
            }
            if n == 0 || pw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        // Pass the client's FIN on, as a tunnel does.
        let _ = pw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            if frozen.load(Ordering::SeqCst) {
                // Hold both sockets open, read nothing, until dropped.
                std::future::pending::<()>().await;
            }
            match pr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = cw.shutdown().await; // the pod's FIN, passed on
                    break;
                }
                Ok(n) => {
                    if frozen.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    if draining.load(Ordering::SeqCst) {
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(up, down);
}
