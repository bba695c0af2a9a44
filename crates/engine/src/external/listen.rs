//! Binding the engine socket and accepting engine connections.

use std::{io, sync::Arc, time::Duration};

use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;

use super::{serve::serve, Inner};
use crate::EngineSpec;

/// Pause after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound engine socket.
pub(super) enum Listener {
    /// `unix:PATH`.
    #[cfg(unix)]
    Unix(UnixListener),
    /// `tcp:HOST:PORT`.
    Tcp(TcpListener),
}

/// Binds the socket a spec names; returns it and its address in spec form
/// (with the real port when the spec asked for port 0).
pub(super) async fn bind(spec: &EngineSpec) -> io::Result<(Listener, String)> {
    match spec {
        #[cfg(unix)]
        EngineSpec::Unix(path) => {
            let listener = bind_unix(path)?;
            Ok((Listener::Unix(listener), format!("unix:{path}")))
        }
        EngineSpec::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok((Listener::Tcp(listener), format!("tcp:{local}")))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("engine {other} is not an external engine address"),
        )),
    }
}

/// Binds a Unix socket, replacing a stale socket file but nothing else.
#[cfg(unix)]
fn bind_unix(path: &str) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket someone still listens on is not stale: taking it over
            // would silently cut off another server's engine.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{path}: another process is listening on this socket"),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{path} exists and is not a socket; refusing to replace it"),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// Accepts engine connections until shutdown, one task each.
pub(super) async fn accept_loop(listener: Listener, inner: Arc<Inner>) {
    loop {
        let permit = tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            permit = inner.connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let inner = inner.clone();
                tokio::spawn(async move {
                    serve(inner, stream, peer).await;
                    drop(permit);
                });
            }
            #[cfg(unix)]
            Ok(Accepted::Unix(stream)) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    serve(inner, stream, "unix".to_owned()).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an engine connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, String),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            Ok(Accepted::Tcp(s, peer.to_string()))
        }
        #[cfg(unix)]
        Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}
