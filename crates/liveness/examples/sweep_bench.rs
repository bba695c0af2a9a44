//! What watching costs: one sampler sweep over N live loopback sockets.
//!
//! `cargo run --release -p seatkeeper-liveness --example sweep_bench -- 9000 [keeping-up]`
//! The client ends live in a child process (this program again, `clients
//! ADDR N`), so N can reach the open-file limit (20,000 here) less a few.
//! With `keeping-up`, every socket shows client progress and a write
//! before each sweep (as a streaming client that acks does), so the sweep
//! skips most looks; the figures are then the cost of the skip rule.

use std::{
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::Arc,
    time::{Duration, Instant},
};

use seatkeeper_liveness::{
    sampler::Batch, sys, DetectorConfig, Evidence, Hooks, Pings, Sampler, SocketHandle,
};

#[derive(Default)]
struct Quiet(Pings);

impl Hooks for Quiet {
    fn pings(&self) -> &Pings {
        &self.0
    }
    fn on_reap(&self, e: &Evidence) {
        eprintln!("unexpected reap: {e:?}");
    }
}

/// The child: connects `n` times to `addr`, then holds the connections
/// until its stdin closes (the parent exited).
fn clients(addr: &str, n: usize) {
    let held: Vec<_> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1]);
    drop(held);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("clients") {
        return clients(&args[2], args[3].parse().unwrap());
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = std::process::Command::new(&args[0])
        .args(["clients", &addr.to_string(), &n.to_string()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pairs: Vec<_> = (0..n).map(|_| (listener.accept().unwrap().0, ())).collect();
    let keeping_up = std::env::args().nth(2).as_deref() == Some("keeping-up");
    // Sweeps run below, by hand; the grace is long enough for the longest
    // gap between looks (the default settings' is 7 sweeps).
    let sampler = Sampler::start(
        Duration::from_secs(3600),
        DetectorConfig {
            grace: Duration::from_secs(3600 * 8 * 7),
            pong_timeout: None,
        },
    )
    .unwrap();
    let handles: Vec<_> = pairs
        .iter()
        .map(|(s, _)| Arc::new(SocketHandle::new(s.as_raw_fd())))
        .collect();
    let _watches: Vec<_> = handles
        .iter()
        .map(|h| sampler.watch(Arc::clone(h), Arc::new(Quiet::default())))
        .collect();
    let rounds = 70;
    let show_progress = || {
        for h in handles.iter().filter(|_| keeping_up) {
            h.mark_progress();
            h.count_written(1);
        }
    };
    let mut batch = Batch::default();
    sampler.sweep_now(&mut batch); // warm
    let (mut wall, mut cpu) = (Duration::ZERO, Some(Duration::ZERO));
    for _ in 0..rounds {
        show_progress();
        let (w, c) = (Instant::now(), sys::thread_cpu_time());
        sampler.sweep_now(&mut batch);
        wall += w.elapsed();
        cpu = cpu
            .zip(c.zip(sys::thread_cpu_time()))
            .map(|(t, (a, b))| t + (b - a));
    }
    let wall = wall / rounds;
    let cpu = cpu.map(|c| c / rounds);
    let st = sampler.stats();
    let looked = st.looks.load(std::sync::atomic::Ordering::Relaxed) as f64
        / st.samples.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{{\"sockets\":{n},\"looked_share\":{looked:.3},\"sweep_wall_us\":{:.1},\"sweep_cpu_us\":{:.1},\"per_socket_wall_ns\":{:.0},\"per_socket_cpu_ns\":{:.0},\"sweep_10k_cpu_ms\":{:.2}}}",
        wall.as_secs_f64() * 1e6,
        cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6),
        per(wall),
        cpu.map_or(f64::NAN, per),
        cpu.map_or(f64::NAN, |c| per(c) * 10_000.0 / 1e6),
    );
    // Closing its stdin lets the child go.
    drop(child.stdin.take());
    let _ = child.wait();
}
