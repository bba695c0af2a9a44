//! The admin listener (`--admin-listen`): a second, private way in for
//! sidecars and operators. Everything that arrives here is admin, without a
//! token; so it binds only loopback or a Unix socket (checked when the
//! configuration is built), and it refuses a `Host` that is a DNS name, so
//! a web page in a browser on the same machine cannot reach it through a
//! name rebound to 127.0.0.1. It serves no sessions and no web client.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::Router;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tracing::{debug, info, warn};

use crate::{access::Listener, app::App, config::AdminAddr, net};

/// Most admin connections at once; more wait in the accept backlog.
const MAX_ADMIN_CONNECTIONS: usize = 32;

/// A bound admin listener.
pub enum AdminListener {
    /// A loopback TCP port.
    Tcp(TcpListener),
    /// A Unix socket, removed again when the listener is dropped.
    #[cfg(unix)]
    Unix(UnixListener, UnixPath),
}

/// A Unix socket path that is removed when dropped.
#[derive(Debug)]
pub struct UnixPath(PathBuf);

impl Drop for UnixPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AdminListener {
    /// Binds `addr`. A Unix socket file left by a dead process is replaced;
    /// one that a live process listens on, or any other file, is not.
    pub async fn bind(addr: &AdminAddr) -> io::Result<Self> {
        match addr {
            AdminAddr::Tcp(a) => Ok(Self::Tcp(TcpListener::bind(a).await?)),
            #[cfg(unix)]
            AdminAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                Ok(Self::Unix(l, UnixPath(path.clone())))
            }
            #[cfg(not(unix))]
            AdminAddr::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix: sockets are not available on this platform",
            )),
        }
    }

    /// Where it listens, in `--admin-listen` form.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            #[cfg(unix)]
            Self::Unix(_, p) => format!("unix:{}", p.0.display()),
        }
    }
}

#[cfg(unix)]
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another process listens on this socket", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Serves the admin listener until shutdown.
pub(crate) async fn serve(listener: AdminListener, app: Arc<App>, router: Router) {
    info!(addr = %listener.describe(), "admin listener serving (admin routes without a token)");
    let limit = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            a = accept(&listener) => a,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app2 = Arc::clone(&app);
        let router = router.clone();
        app.tracker.spawn(async move {
            match io {
                Accepted::Tcp(s) => {
                    let _ = s.set_nodelay(true);
                    run(s, router, &app2).await
                }
                #[cfg(unix)]
                Accepted::Unix(s) => run(s, router, &app2).await,
            }
            drop(permit);
        });
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &AdminListener) -> io::Result<Accepted> {
    match listener {
        AdminListener::Tcp(l) => Ok(Accepted::Tcp(l.accept().await?.0)),
        #[cfg(unix)]
        AdminListener::Unix(l, _) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

async fn run<I>(io: I, router: Router, app: &App)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = net::service(router, Listener::Admin, None, app.config.header_timeout);
    if let Err(e) = net::serve_http(io, svc, app).await {
        debug!("admin connection ended: {e}");
    }
}
