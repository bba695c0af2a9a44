//! A socket number that is safe to sample from another thread.
//!
//! A raw descriptor read by one thread while another closes it can be reused
//! by the next `accept`, and a sampler would then judge — or abort — the
//! wrong connection. The owner of the socket therefore closes it only
//! through [`SocketHandle::retire`], which takes the same lock every sample
//! and abort holds: a retired handle answers [`SampleError::Closed`].
//! Holding a duplicate descriptor instead would be simpler, but it would
//! double the descriptors per session, and the process limit is one of the
//! things that bounds how many sessions a pod can hold.

use std::{
    os::fd::RawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
};

use crate::sys::{self, Sample, SampleError};

/// A shared reference to one connection's socket.
#[derive(Debug)]
pub struct SocketHandle {
    fd: Mutex<Option<RawFd>>,
    closing: AtomicBool,
    aborted: AtomicBool,
    /// Bytes the socket took from its owner since the connection started:
    /// the stream offset that `tcpi_bytes_acked` is compared with.
    written: AtomicU64,
    /// Bumped by the owner each time the client shows it is reading (an
    /// ack or a pong arrived); lets the sampler skip a look, never reap.
    progress: AtomicU64,
}

/// Proof that the handle is retired; close the socket while holding it.
#[derive(Debug)]
pub struct Retired<'a>(#[allow(dead_code)] MutexGuard<'a, Option<RawFd>>);

impl SocketHandle {
    /// A handle on `fd`. The owner must call [`retire`](Self::retire) and
    /// close the socket while holding its guard.
    pub fn new(fd: RawFd) -> Self {
        Self {
            fd: Mutex::new(Some(fd)),
            closing: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            written: AtomicU64::new(0),
            progress: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<RawFd>> {
        // A panic while holding this lock cannot leave the Option torn.
        self.fd.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the kernel figures now.
    pub fn sample(&self) -> Result<Sample, SampleError> {
        match *self.lock() {
            Some(fd) => sys::sample(fd),
            None => Err(SampleError::Closed),
        }
    }

    /// Aborts the connection from outside its I/O: the next close sends a
    /// reset and drops the send buffer, and a blocked write returns now.
    /// Returns false when the socket was already closed.
    pub fn abort(&self) -> bool {
        let guard = self.lock();
        match *guard {
            Some(fd) => {
                self.aborted.store(true, Ordering::Release);
                sys::abort(fd)
            }
            None => false,
        }
    }

    /// Counts `n` bytes the socket accepted. The owner calls this for every
    /// successful write on the raw TCP socket (below TLS), from the
    /// connection's first byte, so the total lines up with the peer's
    /// acknowledged-byte count.
    pub fn count_written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Release);
    }

    /// Bytes written to the socket so far (see
    /// [`count_written`](Self::count_written)).
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// The client showed it reads: the owner read an ack or a pong from it.
    /// The sampler may then skip a kernel look (see [`crate::doubt`]); the
    /// mark is never evidence for a verdict.
    pub fn mark_progress(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times [`mark_progress`](Self::mark_progress) was called.
    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Whether [`abort`](Self::abort) ran.
    pub fn was_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// Marks an orderly close as under way, so its state changes are not
    /// mistaken for a peer's.
    pub fn mark_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether an orderly close is under way.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Retires the handle: no sample or abort runs from now on. Close the
    /// descriptor before dropping the guard.
    pub fn retire(&self) -> Retired<'_> {
        let mut guard = self.lock();
        *guard = None;
        Retired(guard)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        os::fd::AsRawFd,
    };

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (s, c)
    }

    #[test]
    fn samples_a_live_socket_and_counts_acked_bytes() {
        let (mut server, mut client) = pair();
        let h = SocketHandle::new(server.as_raw_fd());
        let before = h.sample().unwrap();
        assert_eq!(before.state, crate::TcpState::ESTABLISHED);
        server.write_all(&[7; 1000]).unwrap();
        let mut buf = [0; 1000];
        client.read_exact(&mut buf).unwrap();
        // Loopback acks within microseconds; allow a few tries.
        let mut acked = 0;
        for _ in 0..100 {
            let s = h.sample().unwrap();
            acked = s.bytes_acked.unwrap_or(0) - before.bytes_acked.unwrap_or(0);
            if acked >= 1000 && s.send_queue == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(acked >= 1000, "acked {acked}");
    }

    /// The pong clock compares the bytes written with `tcpi_bytes_acked`;
    /// on an accepted socket that count starts at 0 (the SYN is not in it)
    /// and ends at exactly the bytes the peer read.
    #[test]
    fn acked_bytes_line_up_exactly_with_bytes_written() {
        let (mut server, mut client) = pair();
        let h = SocketHandle::new(server.as_raw_fd());
        assert_eq!(h.sample().unwrap().bytes_acked, Some(0));
        let mut total = 0u64;
        for n in [1usize, 129, 4000, 70_000] {
            server.write_all(&vec![1; n]).unwrap();
            h.count_written(n);
            total += n as u64;
            let mut buf = vec![0; n];
            client.read_exact(&mut buf).unwrap();
            let mut acked = None;
            for _ in 0..200 {
                let s = h.sample().unwrap();
                acked = s.bytes_acked;
                if s.send_queue == 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(acked, Some(total));
            assert_eq!(h.bytes_written(), total);
        }
    }

    #[test]
    fn a_retired_handle_is_never_sampled() {
        let (server, _client) = pair();
        let h = SocketHandle::new(server.as_raw_fd());
        {
            let _retired = h.retire();
            drop(server);
        }
        assert_eq!(h.sample(), Err(SampleError::Closed));
        assert!(!h.abort());
    }

    #[test]
    fn abort_resets_the_peer() {
        let (server, mut client) = pair();
        let h = SocketHandle::new(server.as_raw_fd());
        assert!(h.abort());
        {
            let _retired = h.retire();
            drop(server);
        }
        let mut buf = [0; 8];
        let r = client.read(&mut buf);
        // A shutdown sends FIN first (read returns 0); the close then resets.
        match r {
            Ok(0) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            Ok(n) => panic!("read {n} bytes from an aborted socket"),
        }
    }
}
