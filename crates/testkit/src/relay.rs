//! A TCP relay between a client and the server, standing in for a tunnel.
//! Frozen, it stops reading pod-side and keeps both TCP connections open —
//! what a tunnel does when the browser behind it is gone.

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

/// A running relay.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Relay {
    /// Relays every connection made to the returned address to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let frozen = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Notify::new());
        let (f, c) = (Arc::clone(&frozen), Arc::clone(&cut));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(pod) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(client, pod, Arc::clone(&f), Arc::clone(&c)));
            }
        });
        Self { addr, frozen, cut }
    }

    /// Stops reading from the pod; both TCP connections stay open.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Drops every relayed connection at once (a network blip).
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }
}

async fn pipe(client: TcpStream, pod: TcpStream, frozen: Arc<AtomicBool>, cut: Arc<Notify>) {
    let _ = client.set_nodelay(true);
    let _ = pod.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut pr, mut pw) = pod.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || pw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            if frozen.load(Ordering::SeqCst) {
                // Hold both sockets open, read nothing, forever.
                std::future::pending::<()>().await;
            }
            match pr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if frozen.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.notified() => {}
    }
}
