//! The life of one accepted engine connection: the `hello` handshake, the
//! claim on the engine slot, then a reader loop (this task) and a writer task.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter},
    sync::mpsc,
    time::timeout,
};

use super::{
    conn::{self, Conn, Hello, Out, ProtocolError},
    frame::{self, Incoming},
    messages::{FromEngine, ToEngine},
    Inner,
};
use crate::EngineError;

/// Socket buffer sizes on our side of the link.
const IO_BUFFER: usize = 64 << 10;
/// How long a closing connection may take to flush its last frames (an
/// `error` saying why, `session_end`s).
const DRAIN: Duration = Duration::from_secs(1);

/// Serves one accepted connection until it ends.
pub(super) async fn serve<S>(inner: Arc<Inner>, stream: S, peer: String)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let id = inner.next_conn_id();
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::with_capacity(IO_BUFFER, r);
    let limits = inner.limits;

    let hello = tokio::select! {
        _ = inner.shutdown.cancelled() => return,
        hello = timeout(limits.hello_timeout, read_hello(&mut r, limits.max_frame_bytes)) => hello,
    };
    let (hello, warm) = match hello {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            tracing::warn!(conn = id, peer, error = %e, "dropping engine connection before hello: {e}");
            refuse(w, "protocol_error", &e.to_string()).await;
            return;
        }
        Err(_) => {
            tracing::warn!(
                conn = id,
                peer,
                "dropping engine connection: no hello in time"
            );
            refuse(w, "hello_timeout", "no hello in time").await;
            return;
        }
    };
    // An engine may take fewer sessions than the server would give it.
    let hello = Hello {
        max_sessions: hello.max_sessions.clamp(1, limits.max_sessions),
        ..hello
    };

    let (tx, rx) = mpsc::channel(conn::write_queue(&limits, hello.max_sessions));
    let conn = Arc::new(Conn::new(
        id,
        hello,
        warm,
        limits,
        tx,
        inner.shutdown.child_token(),
    ));
    if let Err(live) = inner.claim(&conn) {
        let message = format!("engine {live:?} is connected; one engine at a time");
        tracing::warn!(conn = id, peer, engine = %conn.hello.name, "refusing a second engine: {message}");
        refuse(w, "engine_busy", &message).await;
        return;
    }
    tracing::info!(
        conn = id,
        peer,
        engine = %conn.hello.name,
        version = %conn.hello.version,
        warm,
        max_sessions = conn.hello.max_sessions,
        "engine connected"
    );
    let _ = conn.send(&ToEngine::Welcome {
        protocol: frame::VERSION,
        server: "seatkeeper",
        version: env!("CARGO_PKG_VERSION"),
        max_frame_bytes: limits.max_frame_bytes,
        max_sessions: conn.hello.max_sessions,
    });
    tokio::spawn(write_loop(conn.clone(), w, rx, limits.write_stall_timeout));

    match read_loop(&conn, &mut r, limits.max_frame_bytes).await {
        Ok(()) => tracing::info!(conn = id, engine = %conn.hello.name, "engine disconnected"),
        Err(e) => {
            tracing::warn!(conn = id, engine = %conn.hello.name, error = %e, "dropping engine connection: {e}");
            let _ = conn.send(&ToEngine::Error {
                code: "protocol_error",
                message: &e.to_string(),
            });
        }
    }
    conn.teardown(EngineError::Lost);
    inner.release(&conn);
}

/// Waits for the first frame, which must be a `hello`.
async fn read_hello<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(Hello, bool), ProtocolError> {
    let body = match frame::read(r, max).await? {
        Some(Incoming::Json(body)) => body,
        Some(Incoming::Slice(..)) => return Err(ProtocolError::Unexpected("a slice before hello")),
        None => return Err(ProtocolError::Unexpected("closed before hello")),
    };
    match serde_json::from_slice(&body)? {
        FromEngine::Hello {
            name,
            version,
            capabilities,
            warm,
            max_sessions,
        } => Ok((
            Hello {
                name,
                version,
                capabilities,
                max_sessions: max_sessions.unwrap_or(usize::MAX),
            },
            warm,
        )),
        _ => Err(ProtocolError::Unexpected("the first message must be hello")),
    }
}

/// Reads frames until the engine closes (`Ok`), misbehaves (`Err`) or the
/// connection is torn down from elsewhere (`Ok`).
async fn read_loop<R: AsyncRead + Unpin>(
    conn: &Arc<Conn>,
    r: &mut R,
    max: usize,
) -> Result<(), ProtocolError> {
    loop {
        let frame = tokio::select! {
            biased;
            _ = conn.closed.cancelled() => return Ok(()),
            frame = frame::read(r, max) => frame?,
        };
        match frame {
            None => return Ok(()),
            Some(Incoming::Slice(head, frame)) => conn.on_slice(head, frame)?,
            Some(Incoming::Json(body)) => conn.on_json(&body)?,
        }
    }
}

/// Moves queued frames to the socket. A write that makes no progress for
/// `stall` means the engine stopped reading: the connection is torn down
/// and its sessions fail with `Stalled`.
async fn write_loop<W: AsyncWrite + Unpin>(
    conn: Arc<Conn>,
    w: W,
    mut rx: mpsc::Receiver<Out>,
    stall: Duration,
) {
    let mut w = BufWriter::with_capacity(IO_BUFFER, w);
    loop {
        let first = tokio::select! {
            biased;
            frame = rx.recv() => frame,
            _ = conn.closed.cancelled() => break,
        };
        let Some(mut next) = first else { break };
        // Write everything queued, then flush once: small control frames
        // coalesce into few syscalls.
        loop {
            if let Err(e) = write_within(&mut w, Some(&next.frame), stall).await {
                return fail_write(&conn, e, stall);
            }
            // Written: dropping `next` gives its session's quota back.
            match rx.try_recv() {
                Ok(frame) => next = frame,
                Err(_) => break,
            }
        }
        if let Err(e) = write_within(&mut w, None, stall).await {
            return fail_write(&conn, e, stall);
        }
    }
    // Closing: a last `error` or `session_end` may be queued; give it a moment.
    let _ = timeout(DRAIN, async {
        while let Ok(frame) = rx.try_recv() {
            w.write_all(&frame.frame).await?;
        }
        w.flush().await?;
        w.shutdown().await
    })
    .await;
}

/// Writes one frame (or flushes, for `None`) within `stall`; `Err(None)` on timeout.
async fn write_within<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    frame: Option<&Bytes>,
    stall: Duration,
) -> Result<(), Option<std::io::Error>> {
    let io = async {
        match frame {
            Some(f) => w.write_all(f).await,
            None => w.flush().await,
        }
    };
    match timeout(stall, io).await {
        Ok(res) => res.map_err(Some),
        Err(_) => Err(None),
    }
}

fn fail_write(conn: &Conn, err: Option<std::io::Error>, stall: Duration) {
    match err {
        None => {
            tracing::warn!(
                conn = conn.id,
                engine = %conn.hello.name,
                stall_s = stall.as_secs_f64(),
                "dropping engine connection: it stopped reading its socket"
            );
            conn.teardown(EngineError::Stalled);
        }
        Some(e) => {
            tracing::warn!(conn = conn.id, engine = %conn.hello.name, error = %e, "dropping engine connection: write failed");
            conn.teardown(EngineError::Lost);
        }
    }
}

/// Tells a connection that never got to serve why it is dropped, briefly.
async fn refuse<W: AsyncWrite + Unpin>(mut w: W, code: &str, message: &str) {
    let frame = frame::encode_json(&ToEngine::Error { code, message });
    let _ = timeout(DRAIN, async {
        w.write_all(&frame).await?;
        w.shutdown().await
    })
    .await;
}
