use super::*;
use crate::Reason;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::mpsc,
};

struct TestHooks {
    pings: Pings,
    tx: Mutex<mpsc::Sender<Evidence>>,
    reaped: AtomicBool,
    /// Verdicts seen (one per kernel look).
    looked: AtomicUsize,
}

impl TestHooks {
    /// Hooks with no pings out, and the receiver of their reap evidence.
    fn new() -> (Arc<Self>, mpsc::Receiver<Evidence>) {
        let (tx, rx) = mpsc::channel();
        let hooks = Arc::new(Self {
            pings: Pings::default(),
            tx: Mutex::new(tx),
            reaped: AtomicBool::new(false),
            looked: AtomicUsize::new(0),
        });
        (hooks, rx)
    }
}

impl Hooks for TestHooks {
    fn pings(&self) -> &Pings {
        &self.pings
    }
    fn on_reap(&self, evidence: &Evidence) {
        self.reaped.store(true, Ordering::SeqCst);
        let _ = lock(&self.tx).send(evidence.clone());
    }
    fn observed(&self, _verdict: &Verdict) {
        self.looked.fetch_add(1, Ordering::SeqCst);
    }
}

/// A sampler sweeping every `interval`, with a stall `grace` and
/// `pong_timeout`.
fn sampler(interval: Duration, grace: Duration, pong_timeout: Option<Duration>) -> Sampler {
    Sampler::start(
        interval,
        DetectorConfig {
            grace,
            pong_timeout,
        },
    )
    .unwrap()
}

/// A connected loopback pair from `l`: (server side, client side).
fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    (l.accept().unwrap().0, client)
}

#[test]
fn a_peer_that_stops_reading_is_reaped_and_its_blocked_writer_released() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let (server, client) = pair(&l);
    let sampler = sampler(Duration::from_millis(50), Duration::from_millis(500), None);
    let (hooks, rx) = TestHooks::new();
    let handle = Arc::new(SocketHandle::new(server.as_raw_fd()));
    let _watch = sampler.watch(Arc::clone(&handle), hooks);
    // The writer blocks once both buffers are full; the reap must free it.
    let writer = thread::spawn(move || {
        let mut server = server;
        let chunk = vec![0u8; 64 * 1024];
        let err = loop {
            if let Err(e) = server.write_all(&chunk) {
                break e;
            }
        };
        (server, err)
    });
    let evidence = rx.recv_timeout(Duration::from_secs(20)).expect("reaped");
    assert_eq!(evidence.reason, Reason::SendStall);
    assert!(evidence.queue_bytes > 0);
    let (server, err) = writer.join().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    let _retired = handle.retire();
    drop(server);
    drop(client);
    // The sampler forgets a reaped socket at the end of its sweep, a
    // moment after the verdict this thread already saw.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sampler.watched() != 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sampler.watched(), 0);
}

/// A ping behind a backlog the peer has not read is not counted; once
/// the peer's kernel has the ping's bytes, an unanswered ping is.
#[test]
fn the_pong_clock_starts_when_the_peer_acknowledges_the_ping() {
    use std::io::Read;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // Default buffers: a peer that reads nothing takes in far less than
    // the server's send buffer holds, so the last byte stays queued.
    let (mut server, client) = pair(&l);
    server.set_nonblocking(true).unwrap();
    let handle = Arc::new(SocketHandle::new(server.as_raw_fd()));
    // Fill both buffers: the peer reads nothing yet.
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match server.write(&chunk) {
            Ok(n) => handle.count_written(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let timeout = Duration::from_millis(300);
    let sampler = sampler(
        Duration::from_millis(25),
        Duration::from_secs(3600),
        Some(timeout),
    );
    let (hooks, rx) = TestHooks::new();
    // The "ping" is the last byte written so far.
    let written_at = Instant::now();
    hooks.pings.written(1, handle.bytes_written(), written_at);
    let _watch = sampler.watch(Arc::clone(&handle), hooks.clone());
    assert!(
        rx.recv_timeout(timeout * 5).is_err(),
        "a ping stuck behind unread bytes must not be counted"
    );
    // The peer reads everything (its kernel acknowledges the ping) and
    // never answers.
    let read_from = Instant::now();
    let mut client = client;
    client.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let evidence = loop {
        let _ = client.read(&mut buf);
        if let Ok(e) = rx.try_recv() {
            break e;
        }
        assert!(read_from.elapsed() < Duration::from_secs(20), "not reaped");
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(evidence.reason, Reason::Unresponsive);
    assert!(evidence.stalled_for >= timeout);
    let ping = evidence.ping.expect("the ping is the evidence");
    assert_eq!(ping.written_at, written_at);
    let acked = ping.acked_at.expect("acknowledged");
    assert!(acked >= read_from, "counted before the peer had the ping");
    let _retired = handle.retire();
}

/// A sweep counts the sockets it swept: one its owner is closing is neither
/// looked at nor counted (the figure is sessions watched, not sockets
/// being torn down).
#[test]
fn a_closing_socket_is_not_swept_nor_counted() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let pairs: Vec<_> = (0..3).map(|_| pair(&l)).collect();
    // A long interval: this test sweeps by hand.
    let sampler = sampler(Duration::from_secs(3600), Duration::from_secs(30), None);
    let handles: Vec<_> = pairs
        .iter()
        .map(|(s, _)| Arc::new(SocketHandle::new(s.as_raw_fd())))
        .collect();
    let _watches: Vec<_> = handles
        .iter()
        .map(|h| sampler.watch(Arc::clone(h), TestHooks::new().0))
        .collect();
    handles[1].mark_closing();
    let mut batch = Batch::default();
    sampler.sweep_now(&mut batch);
    let s = sampler.stats();
    assert_eq!(s.last_sweep_sockets.load(Ordering::Relaxed), 2);
    assert_eq!(s.last_sweep_looks.load(Ordering::Relaxed), 2);
    assert_eq!(s.samples.load(Ordering::Relaxed), 2);
    // Both first looks: nothing cleared them yet.
    let by_why: Vec<u64> = s
        .looks_by_why
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    assert_eq!(by_why, [2, 0, 0, 0, 0]);
    // Sweeps an hour apart against a 30 s grace: every sweep must look,
    // and says so.
    sampler.sweep_now(&mut batch);
    assert_eq!(s.looks_by_why[Why::Gap.index()].load(Ordering::Relaxed), 2);
}

/// A sweep reads what the owners show a chunk of sockets ahead of judging
/// them: across chunk edges (the first and last of a chunk, a last chunk
/// that is not full) each socket's look still goes to that socket, and
/// only the ones their owners are closing are left out.
#[test]
fn sockets_read_a_chunk_ahead_are_judged_each_as_itself() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let n = 2 * READ_AHEAD + 22;
    let closing = [0, READ_AHEAD - 1, READ_AHEAD, 2 * READ_AHEAD + 1, n - 1];
    let pairs: Vec<_> = (0..n).map(|_| pair(&l)).collect();
    let sampler = sampler(Duration::from_secs(3600), Duration::from_secs(30), None);
    let watched: Vec<_> = pairs
        .iter()
        .map(|(s, _)| {
            let handle = Arc::new(SocketHandle::new(s.as_raw_fd()));
            let (hooks, _rx) = TestHooks::new();
            let watch = sampler.watch(Arc::clone(&handle), hooks.clone());
            (handle, hooks, watch)
        })
        .collect();
    for &i in &closing {
        watched[i].0.mark_closing();
    }
    let mut batch = Batch::default();
    sampler.sweep_now(&mut batch);
    sampler.sweep_now(&mut batch);
    let s = sampler.stats();
    assert_eq!(
        s.samples.load(Ordering::Relaxed),
        2 * (n - closing.len()) as u64
    );
    for (i, (_, hooks, _)) in watched.iter().enumerate() {
        // Every sweep looks (an hour between sweeps against a 30 s grace).
        let want = if closing.contains(&i) { 0 } else { 2 };
        assert_eq!(hooks.looked.load(Ordering::SeqCst), want, "socket {i}");
    }
}
