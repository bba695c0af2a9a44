//! A write adapter that always takes a whole write, and takes frames built
//! elsewhere without copying them.
//!
//! tungstenite buffers each frame and writes the buffer out with
//! `Vec::drain(0..written)` after every partial write, which moves the rest
//! of the buffer each time: a 1 MiB slice written in 64 KiB steps is copied
//! about eight times over. Under this adapter a write goes straight to the
//! socket; whatever the socket does not take is kept here, once, and sent
//! before anything else. So the layer above always sees its whole buffer
//! written and never shuffles it — which also means every write it hands
//! down is whole frames.
//!
//! Frames can also be handed over directly with [`WriteThrough::push`]: a
//! small header and a shared body (`Bytes`), written later with one vectored
//! write for many frames, never copied here. Everything taken — the
//! remainder of a write from above, pushed frames — waits in one queue in
//! the order it came, and is sent before any new write: frames never
//! interleave. A slow socket still pushes back: while the queue waits, new
//! writes wait too, and the owner of pushed frames bounds the queue by
//! draining it ([`WriteThrough::poll_drain`]) once [`queued`] is large.
//!
//! [`queued`]: WriteThrough::queued

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest frame header [`WriteThrough::push`] takes.
/// (A WebSocket header and a slice header fit.)
pub const MAX_HEAD: usize = 32;

/// Most chunks one vectored write covers (two buffers each).
const MAX_CHUNKS_PER_WRITE: usize = 64;

/// Above this, an emptied queue gives its memory back, so one burst does not
/// pin memory for the session's life.
const KEEP_CHUNKS: usize = 8;

/// One piece of the queue: a header (maybe empty) and a body, of which the
/// first `sent` bytes (header first) are written.
#[derive(Debug)]
struct Chunk {
    head: [u8; MAX_HEAD],
    head_len: u8,
    body: Bytes,
    sent: usize,
}

impl Chunk {
    fn len(&self) -> usize {
        self.head_len as usize + self.body.len()
    }

    /// The unsent parts, header first.
    fn unsent(&self) -> (&[u8], &[u8]) {
        let h = self.head_len as usize;
        if self.sent < h {
            (&self.head[self.sent..h], &self.body)
        } else {
            (&[], &self.body[self.sent - h..])
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct WriteThrough<T> {
    inner: T,
    queue: VecDeque<Chunk>,
    queued: usize,
}

impl<T> WriteThrough<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            queue: VecDeque::new(),
            queued: 0,
        }
    }

    /// Bytes taken and not yet written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Frames taken and not yet fully written.
    pub fn queued_frames(&self) -> usize {
        self.queue.len()
    }
}

impl<T: AsyncWrite + Unpin> WriteThrough<T> {
    /// Takes a frame: `head` (at most [`MAX_HEAD`] bytes), then `body`,
    /// written after everything taken before. Nothing is written now; a
    /// later write, flush or [`poll_drain`](Self::poll_drain) sends it.
    pub fn push(&mut self, head: &[u8], body: Bytes) {
        assert!(head.len() <= MAX_HEAD, "frame header too long");
        if !self.inner.is_write_vectored() {
            // A plain writer would send the header alone (a tiny segment
            // per frame on a no-delay socket): join them, one copy.
            let mut joined = Vec::with_capacity(head.len() + body.len());
            joined.extend_from_slice(head);
            joined.extend_from_slice(&body);
            return self.push_chunk(&[], Bytes::from(joined));
        }
        self.push_chunk(head, body);
    }

    fn push_chunk(&mut self, head: &[u8], body: Bytes) {
        let mut h = [0u8; MAX_HEAD];
        h[..head.len()].copy_from_slice(head);
        let chunk = Chunk {
            head: h,
            head_len: head.len() as u8,
            body,
            sent: 0,
        };
        self.queued += chunk.len();
        self.queue.push_back(chunk);
    }

    /// Writes the queue out; `Ready(Ok)` once it is all written.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.queue.is_empty() {
            let mut bufs = [IoSlice::new(&[]); 2 * MAX_CHUNKS_PER_WRITE];
            let mut n_bufs = 0;
            for chunk in self.queue.iter().take(MAX_CHUNKS_PER_WRITE) {
                let (head, body) = chunk.unsent();
                for part in [head, body] {
                    if !part.is_empty() {
                        bufs[n_bufs] = IoSlice::new(part);
                        n_bufs += 1;
                    }
                }
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..n_bufs]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
        if self.queue.capacity() > KEEP_CHUNKS {
            self.queue = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Marks `n` queued bytes written.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let front = self.queue.front_mut().expect("written bytes were queued");
            let left = front.len() - front.sent;
            if n < left {
                front.sent += n;
                return;
            }
            n -= left;
            self.queue.pop_front();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteThrough<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteThrough<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        let n = match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            // Nothing kept and the socket is full: push back.
            Poll::Pending => return Poll::Pending,
        };
        if n < buf.len() && n > 0 {
            this.push_chunk(&[], Bytes::copy_from_slice(&buf[n..]));
            return Poll::Ready(Ok(buf.len()));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_io::PipeEnd;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn everything_written_arrives_in_order_through_a_slow_pipe() {
        // A 4 KiB pipe forces partial writes all the time.
        let (a, mut b) = tokio::io::duplex(4096);
        let mut w = WriteThrough::new(a);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in data.chunks(70_001) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, expected);
    }

    /// Pushed frames and plain writes, mixed, come out whole and in order
    /// through a pipe far smaller than one frame, and the queue empties.
    #[tokio::test]
    async fn pushed_frames_and_writes_keep_their_order() {
        let (a, mut b) = tokio::io::duplex(1000);
        let mut w = WriteThrough::new(PipeEnd {
            io: a,
            socket: None,
        });
        let mut expected = Vec::new();
        let mut pieces: Vec<(Vec<u8>, Option<Bytes>)> = Vec::new();
        for i in 0..40u32 {
            let body: Vec<u8> = (0..(i * 977) % 20_000).map(|j| (j % 253) as u8).collect();
            let head = vec![i as u8; (i % 11) as usize];
            expected.extend_from_slice(&head);
            expected.extend_from_slice(&body);
            pieces.push((head, Some(Bytes::from(body))));
            let plain = vec![0xA0 | (i % 16) as u8; (i as usize * 31) % 3000];
            expected.extend_from_slice(&plain);
            pieces.push((plain, None));
        }
        let writer = tokio::spawn(async move {
            for (bytes, body) in pieces {
                match body {
                    Some(body) => {
                        w.push(&bytes, body);
                        if w.queued_frames() > 3 {
                            poll_fn(|cx| w.poll_drain(cx)).await.unwrap();
                        }
                    }
                    None => w.write_all(&bytes).await.unwrap(),
                }
            }
            w.shutdown().await.unwrap();
            assert_eq!(w.queued(), 0);
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }
}
