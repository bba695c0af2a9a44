//! What watching costs: one sampler sweep over N live loopback sockets.
//!
//! `cargo run --release -p seatkeeper-liveness --example sweep_bench -- 9000`
//! (N pairs take 2N descriptors; the open-file limit here is 20,000).

use std::{
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::Arc,
    time::{Duration, Instant},
};

use seatkeeper_liveness::{sys, DetectorConfig, Evidence, Hooks, Pings, Sampler, SocketHandle};

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

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        pairs.push((s, c));
    }
    let sampler = Sampler::start(
        Duration::from_secs(3600), // sweeps run below, by hand
        DetectorConfig {
            grace: Duration::from_secs(30),
            pong_timeout: None,
        },
    )
    .unwrap();
    let _watches: Vec<_> = pairs
        .iter()
        .map(|(s, _)| {
            sampler.watch(
                Arc::new(SocketHandle::new(s.as_raw_fd())),
                Arc::new(Quiet::default()),
            )
        })
        .collect();
    let rounds = 50;
    sampler.sweep_now(); // warm
    let wall = Instant::now();
    let cpu = sys::thread_cpu_time();
    for _ in 0..rounds {
        sampler.sweep_now();
    }
    let wall = wall.elapsed() / rounds;
    let cpu = sys::thread_cpu_time()
        .zip(cpu)
        .map(|(b, a)| (b - a) / rounds);
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{{\"sockets\":{n},\"sweep_wall_us\":{:.1},\"sweep_cpu_us\":{:.1},\"per_socket_wall_ns\":{:.0},\"per_socket_cpu_ns\":{:.0},\"sweep_10k_cpu_ms\":{:.2}}}",
        wall.as_secs_f64() * 1e6,
        cpu.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6),
        per(wall),
        cpu.map_or(f64::NAN, per),
        cpu.map_or(f64::NAN, |c| per(c) * 10_000.0 / 1e6),
    );
}
