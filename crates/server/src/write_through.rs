//! A write adapter that always takes a whole write.
//!
//! tungstenite buffers each frame and writes the buffer out with
//! `Vec::drain(0..written)` after every partial write, which moves the rest
//! of the buffer each time: a 1 MiB slice written in 64 KiB steps is copied
//! about eight times over. Under this adapter a write goes straight to the
//! socket; whatever the socket does not take is kept here, once, and sent
//! before anything else. So the layer above always sees its whole buffer
//! written and never shuffles it, and a slow socket still pushes back: while
//! a remainder is waiting, new writes wait too.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Above this, an emptied remainder buffer is given back to the allocator,
/// so one large slice does not pin memory for the session's life.
const KEEP_CAPACITY: usize = 64 << 10;

/// See the module docs.
#[derive(Debug)]
pub struct WriteThrough<T> {
    inner: T,
    rest: Vec<u8>,
    sent: usize,
}

impl<T> WriteThrough<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            rest: Vec::new(),
            sent: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> WriteThrough<T> {
    /// Sends the kept remainder; `Ready(Ok)` once it is all out.
    fn poll_rest(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.rest.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.rest[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.rest.clear();
        self.sent = 0;
        if self.rest.capacity() > KEEP_CAPACITY {
            self.rest = Vec::new();
        }
        Poll::Ready(Ok(()))
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
        ready!(this.poll_rest(cx))?;
        let n = match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            // Nothing kept and the socket is full: push back.
            Poll::Pending => return Poll::Pending,
        };
        if n < buf.len() && n > 0 {
            this.rest.extend_from_slice(&buf[n..]);
            return Poll::Ready(Ok(buf.len()));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rest(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rest(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
