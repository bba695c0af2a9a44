//! The end of a connection, one way for every path (a refused `hello`, a
//! session's connection): the closing handshake of RFC 6455 §5.5.1, done so
//! that the client can read the code.
//!
//! - The client closed: its close frame is answered with the same code (the
//!   WebSocket library queued the echo; it is flushed here), then the TCP
//!   connection closes.
//! - The server closes: an optional `error` message, the close frame, then a
//!   FIN, and whatever the client still sends is read and discarded until it
//!   closes too or the close grace runs out. Closing a socket with unread
//!   bytes in it makes the kernel send a reset, and a reset can destroy the
//!   close frame before the client reads it — a client still writing a
//!   2 MiB message would see a reset instead of its 1009.
//! - A dead transport (reaped, lost) is reset at once: neither a blocked
//!   write nor megabytes in the kernel's send buffer outlive the verdict.

use std::time::Duration;

use futures_util::SinkExt;
use seatkeeper_liveness::SocketHandle;
use seatkeeper_protocol::ServerMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message,
};
use tracing::debug;

use super::conn::Ws;

/// How a connection is left.
#[derive(Debug, Clone)]
pub(crate) enum Goodbye {
    /// The client sent a close frame: answer it, then close.
    Echo,
    /// The server closes with this code.
    Close {
        /// Sent as a text message first.
        error: Option<ServerMsg>,
        /// Close code.
        code: u16,
        /// Close reason (at most 123 bytes on the wire; ours are short).
        reason: String,
    },
    /// Reset the connection.
    Abort,
}

/// Leaves the connection as `bye` says, within `grace` for each step.
pub(crate) async fn say(mut ws: Ws, bye: Goodbye, socket: &SocketHandle, grace: Duration) {
    match bye {
        Goodbye::Abort => {
            socket.abort();
        }
        Goodbye::Echo => {
            socket.mark_closing();
            let echoed = tokio::time::timeout(grace, async {
                ws.flush().await.ok();
                ws.get_mut().shutdown().await.ok();
            })
            .await;
            if echoed.is_err() {
                socket.abort();
            }
        }
        Goodbye::Close {
            error,
            code,
            reason,
        } => {
            socket.mark_closing();
            let sent = tokio::time::timeout(grace, async {
                if let Some(e) = error {
                    ws.feed(Message::text(e.to_json())).await?;
                }
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                ws.send(Message::Close(Some(frame))).await
            })
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!(code, "close frame not sent: {e}");
                    socket.abort();
                    return;
                }
                Err(_) => {
                    debug!(code, "close frame did not go out in time; resetting");
                    socket.abort();
                    return;
                }
            }
            linger(&mut ws, grace).await;
        }
    }
}

/// Sends a FIN, then reads and discards until the client closes or `grace`
/// passes.
async fn linger(ws: &mut Ws, grace: Duration) {
    let _ = tokio::time::timeout(grace, async {
        let io = ws.get_mut();
        io.shutdown().await.ok();
        // On the heap, only while lingering: an array here would live in
        // every connection's future (4 KiB per session, streaming or not).
        let mut sink = vec![0u8; 4096];
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
