//! An in-process transport for tests: one end of a `tokio::io::duplex`
//! pipe that writes vectored the way a socket does (part of the buffers,
//! stopping anywhere, even inside a header) and counts every byte it takes
//! into a [`SocketHandle`], as the listener's tracked stream does.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use seatkeeper_liveness::SocketHandle;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// Most bytes one vectored write takes: small, so writes end mid-frame.
const MAX_VECTORED: usize = 1500;

/// See the module docs.
pub(crate) struct PipeEnd {
    pub(crate) io: DuplexStream,
    pub(crate) socket: Option<Arc<SocketHandle>>,
}

impl PipeEnd {
    fn counted(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let (Poll::Ready(Ok(n)), Some(s)) = (&r, &self.socket) {
            s.count_written(*n);
        }
        r
    }
}

impl AsyncRead for PipeEnd {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PipeEnd {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.counted(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut joined = Vec::with_capacity(MAX_VECTORED);
        for b in bufs {
            let room = MAX_VECTORED - joined.len();
            joined.extend_from_slice(&b[..b.len().min(room)]);
        }
        let r = Pin::new(&mut self.io).poll_write(cx, &joined);
        self.counted(r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A stream that, like TLS, takes every write into a buffer of its own and
/// sends it on only when flushed (and does not write vectored).
pub(crate) struct HeldUntilFlush<T> {
    inner: T,
    held: Vec<u8>,
}

impl<T> HeldUntilFlush<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            held: Vec::new(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeldUntilFlush<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeldUntilFlush<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while !this.held.is_empty() {
            let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, &this.held))?;
            this.held.drain(..n);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
