//! The connection's transport, shared by its reader and its writer: a
//! WebSocket over any byte stream ([`Io`]) — the upgraded HTTP connection in
//! the server, one end of an in-process pipe in tests.
//!
//! The reader takes messages as tungstenite parses them (tungstenite also
//! answers pings and echoes a close on its own). The writer writes data
//! frames itself: a server frame is a 2-, 4- or 10-byte header and the
//! unmasked payload, so the header is built here and the payload — a slice
//! shared with the outbox, a control message's string — goes to the socket
//! with one vectored write for a whole burst of frames, never copied into
//! tungstenite's buffer. Pings still go through tungstenite and are flushed
//! at once (the ping clock takes the stream offset after one).
//!
//! A slice can also be written from outside the writer, by the engine's
//! push while the writer waits ([`Wire::write_now`]): only if nobody else is
//! in the stream and nothing is queued, so frames stay whole and in order;
//! what the socket does not take then waits in the queue for the writer's
//! flush.
//!
//! Both kinds of frame reach the socket through one [`WriteThrough`] queue,
//! which only ever takes whole frames, in order, so they never interleave.
//! Once the reader has seen the peer's close frame (tungstenite will echo
//! it), the writer sends nothing more: no frame may follow a close. A write
//! of any kind (data, ping, the echo) that fails after the close was seen
//! is [`SendError::Closing`] too: a peer that closed and went makes the
//! write fail, and the ending is its close, not a lost transport.

use std::{
    fmt,
    future::poll_fn,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{ready, Context, Poll, Waker},
};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    tungstenite::{self, Message},
    WebSocketStream,
};

use super::super::outbox::Stamped;
use crate::write_through::{WriteThrough, MAX_HEAD};
use seatkeeper_protocol::SLICE_HEADER_LEN;

/// A byte stream a connection can run on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// The WebSocket a connection runs on, over the byte stream `S`.
pub type WsOver<S> = WebSocketStream<WriteThrough<S>>;

/// Bytes of frames queued before the writer waits for the socket to take
/// them: a burst of small slices goes out in one vectored write.
const BATCH_BYTES: usize = 256 << 10;

/// Frames queued before the writer waits (one vectored write covers 64).
const BATCH_FRAMES: usize = 64;

/// Frame opcodes (RFC 6455 §5.2).
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;

/// Why a write did not happen.
#[derive(Debug)]
pub enum SendError {
    /// The peer closed; the connection is ending, nothing more goes out.
    Closing,
    /// tungstenite refused (a ping after the close, a failed socket).
    Ws(tungstenite::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closing => f.write_str("the peer closed"),
            Self::Ws(e) => e.fmt(f),
        }
    }
}

struct Inner<S> {
    ws: WsOver<S>,
    /// The peer's close frame (or the end of the stream) was read.
    peer_closed: bool,
}

impl<S> Inner<S> {
    /// What a failed write means: every write path goes through here.
    fn write_failed(&self, e: tungstenite::Error) -> SendError {
        if self.peer_closed {
            SendError::Closing
        } else {
            SendError::Ws(e)
        }
    }
}

/// See the module docs. Clones share the one stream.
pub struct Wire<S>(Arc<Mutex<Inner<S>>>);

impl<S> Clone for Wire<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// A server frame's header: FIN, `opcode`, no mask, the length (in the
/// first 2, 4 or 10 bytes; the rest is room for a slice header).
pub(crate) fn frame_head(opcode: u8, len: usize) -> ([u8; MAX_HEAD], usize) {
    let mut h = [0u8; MAX_HEAD];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if len <= 0xFFFF {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// A slice's frame header and slice header, as one piece.
fn slice_head(slice: &Stamped) -> ([u8; MAX_HEAD], usize) {
    let (mut head, n) = frame_head(OP_BINARY, slice.len());
    head[n..n + SLICE_HEADER_LEN].copy_from_slice(&slice.header);
    (head, n + SLICE_HEADER_LEN)
}

impl<S: Io> Wire<S> {
    /// Shares `ws` between a reader and a writer.
    pub fn new(ws: WsOver<S>) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            ws,
            peer_closed: false,
        })))
    }

    // Held only inside one poll, never across an await: the reader and the
    // writer each wait on their own side of the socket.
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream back, once every other clone is gone.
    pub fn into_ws(self) -> Option<WsOver<S>> {
        let inner = Arc::try_unwrap(self.0).ok()?;
        Some(inner.into_inner().unwrap_or_else(|e| e.into_inner()).ws)
    }

    /// The next message from the peer.
    pub async fn next(&self) -> Option<Result<Message, tungstenite::Error>> {
        poll_fn(|cx| {
            let mut inner = self.lock();
            let r = ready!(Pin::new(&mut inner.ws).poll_next(cx));
            if !matches!(r, Some(Ok(ref m)) if !m.is_close()) {
                inner.peer_closed = true;
            }
            Poll::Ready(r)
        })
        .await
    }

    /// A text frame.
    pub async fn send_text(&self, text: String, flush: bool) -> Result<(), SendError> {
        self.send_data(OP_TEXT, Bytes::from(text.into_bytes()), flush)
            .await
    }

    /// A slice: one binary frame, its slice header sent with the frame's
    /// own and its payload straight from the shared buffer.
    pub async fn send_slice(&self, slice: Stamped, flush: bool) -> Result<(), SendError> {
        let (head, n) = slice_head(&slice);
        self.send_frame(&head[..n], slice.payload, flush).await
    }

    /// Writes a slice now, from outside the writer, if the stream is free:
    /// nobody else is in it, nothing is queued, the peer has not closed.
    /// Only then is `take` asked for the slice, so a write declined leaves
    /// the outbox as it was. `None`: declined, or `take` had nothing;
    /// `Some(true)`: the socket took the whole frame; `Some(false)`: part
    /// of it (or, after a failed write, all of it) waits in the queue or in
    /// the stream's own buffer, and the writer must flush it — it then also
    /// meets the failure itself.
    pub fn write_now(&self, take: impl FnOnce() -> Option<Stamped>) -> Option<bool> {
        let mut inner = self.0.try_lock().ok()?;
        if inner.peer_closed || inner.ws.get_ref().queued() > 0 {
            return None;
        }
        let slice = take()?;
        let (head, n) = slice_head(&slice);
        let io = inner.ws.get_mut();
        io.push(&head[..n], slice.payload);
        // No task waits on this write: a socket that takes only part of it
        // keeps this waker for its next writable edge, until the writer's
        // flush registers its own. A flush, not only a drain: a stream that
        // holds what it is given (TLS records) sends it only when flushed.
        let mut cx = Context::from_waker(Waker::noop());
        Some(matches!(
            Pin::new(io).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ))
    }

    async fn send_data(&self, opcode: u8, body: Bytes, flush: bool) -> Result<(), SendError> {
        let (head, n) = frame_head(opcode, body.len());
        self.send_frame(&head[..n], body, flush).await
    }

    async fn send_frame(&self, head: &[u8], body: Bytes, flush: bool) -> Result<(), SendError> {
        let mut body = Some(body);
        poll_fn(|cx| {
            let mut inner = self.lock();
            if inner.peer_closed {
                return Poll::Ready(Err(SendError::Closing));
            }
            // Backpressure: past a burst's worth, the socket must take the
            // queue before another frame joins it.
            let io = inner.ws.get_ref();
            if io.queued() >= BATCH_BYTES || io.queued_frames() >= BATCH_FRAMES {
                let flushed = ready!(Pin::new(&mut inner.ws).poll_flush(cx));
                flushed.map_err(|e| inner.write_failed(e))?;
            }
            inner
                .ws
                .get_mut()
                .push(head, body.take().expect("pushed once"));
            Poll::Ready(Ok(()))
        })
        .await?;
        if flush {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes out everything queued.
    ///
    /// Through tungstenite's flush, not around it: it also sends a pong or
    /// close echo the reader left pending on a full socket, and it registers
    /// this task's waker where tungstenite wakes writers. A write the reader
    /// makes (a pong) takes over the socket's one write-readiness waker, and
    /// tungstenite passes that wake-up on only to wakers registered so; a
    /// writer waiting on the socket directly could then sleep forever.
    pub async fn flush(&self) -> Result<(), SendError> {
        poll_fn(|cx| {
            let mut inner = self.lock();
            let flushed = ready!(Pin::new(&mut inner.ws).poll_flush(cx));
            Poll::Ready(flushed.map_err(|e| inner.write_failed(e)))
        })
        .await
    }

    /// A ping, written out before this returns.
    pub async fn send_ping(&self, payload: Bytes) -> Result<(), SendError> {
        let mut msg = Some(Message::Ping(payload));
        poll_fn(|cx| {
            let mut inner = self.lock();
            if inner.peer_closed {
                return Poll::Ready(Err(SendError::Closing));
            }
            let ready = ready!(Pin::new(&mut inner.ws).poll_ready(cx));
            ready.map_err(|e| inner.write_failed(e))?;
            let msg = msg.take().expect("sent once");
            let sent = Pin::new(&mut inner.ws).start_send(msg);
            Poll::Ready(sent.map_err(|e| inner.write_failed(e)))
        })
        .await?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_the_shortest_length_form() {
        let (h, n) = frame_head(OP_BINARY, 0);
        assert_eq!((&h[..2], n), (&[0x82, 0][..], 2));
        assert_eq!(frame_head(OP_TEXT, 125).0[..2], [0x81, 125]);
        assert_eq!(frame_head(OP_BINARY, 126).0[..4], [0x82, 126, 0, 126]);
        assert_eq!(
            frame_head(OP_BINARY, 65_535).0[..4],
            [0x82, 126, 0xFF, 0xFF]
        );
        let (h, n) = frame_head(OP_BINARY, 65_536);
        assert_eq!(n, 10);
        assert_eq!(h[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(frame_head(OP_BINARY, 65_535).1, 4);
        assert_eq!(frame_head(OP_BINARY, 125).1, 2);
    }
}
