//! Benchmark: claims/s through the allocator over HTTP, with and without
//! its bearer token, side by side in one run (rounds interleaved so the
//! fleet's fill level costs both the same). Ignored by default:
//! `cargo test --release -p seatkeeper-pool --test allocator_bench -- --ignored --nocapture`.

#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::time::{Duration, Instant};

use pods::{config, Pod};
use seatkeeper_pool::AllocatorConfig;
use seatkeeper_testkit::redis::RedisServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-allocator-token-0123456789";

/// One keep-alive connection doing `n` claims; panics on anything but 200.
async fn worker(addr: std::net::SocketAddr, auth: bool, n: usize) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut s = BufReader::new(stream);
    let header = if auth {
        format!("Authorization: Bearer {TOKEN}\r\n")
    } else {
        String::new()
    };
    let req = format!("POST /claim HTTP/1.1\r\nHost: b\r\n{header}Content-Length: 0\r\n\r\n");
    for _ in 0..n {
        s.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut len = 0;
        loop {
            line.clear();
            s.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
    }
}

async fn serve(url: &str, token: Option<&str>) -> (std::net::SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let mut cfg = AllocatorConfig::new(url);
    cfg.token = token.map(str::to_owned);
    // The limiter stays in the path, set out of the way.
    cfg.rate_per_s = 1e9;
    cfg.burst = 1e9;
    tokio::spawn(seatkeeper_pool::allocator(cfg, listener, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    (addr, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p seatkeeper-pool --test allocator_bench -- --ignored --nocapture"]
async fn allocator_claims_per_second_with_and_without_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let mut fleet = Vec::new();
    for i in 0..20 {
        let mut cfg = config(&url, &format!("bench-{i:03}"), 100);
        cfg.ttl = Duration::from_secs(5);
        fleet.push(Pod::start(cfg).await);
    }
    let (open, stop_open) = serve(&url, None).await;
    let (authed, stop_authed) = serve(&url, Some(TOKEN)).await;
    // 2,000 seats: forty rounds of 48 claims, 8 keep-alive connections
    // each, in ABBA order so neither side always meets the fuller fleet,
    // and short enough that a noisy neighbour hits both sides alike.
    let (workers, per) = (8, 6);
    let mut totals = [(0usize, Duration::ZERO); 2];
    let order = [false, true, true, false];
    for auth in order.iter().cycle().take(40).copied() {
        let addr = if auth { authed } else { open };
        let start = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| tokio::spawn(worker(addr, auth, per)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let slot = &mut totals[usize::from(auth)];
        slot.0 += workers * per;
        slot.1 += start.elapsed();
    }
    for (name, (n, took)) in ["without token", "with token"].iter().zip(totals) {
        println!(
            "allocator {name}: {:.0} claims/s ({n} claims, {workers} connections, 20 pods x 100 seats)",
            n as f64 / took.as_secs_f64()
        );
    }
    stop_open.cancel();
    stop_authed.cancel();
    for pod in &fleet {
        pod.shutdown.cancel();
        pod.agent.stopped().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p seatkeeper-pool --test allocator_bench -- --ignored --nocapture"]
async fn claims_per_second_through_sentinel_with_wait() {
    let Some(set) = seatkeeper_testkit::sentinel::SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let mut fleet = Vec::new();
    for i in 0..20 {
        let mut cfg = config(&url, &format!("bench-{i:03}"), 100);
        cfg.ttl = Duration::from_secs(5);
        fleet.push(Pod::start(cfg).await);
    }
    let client = seatkeeper_pool::PoolClient::new(&url).unwrap();
    for (label, workers, n) in [("one at a time", 1, 500), ("8 in flight", 8, 1000)] {
        let start = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..n / workers {
                        client.claim().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "through Sentinel, claim + WAIT 1, {label}: {:.0} claims/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
    for pod in &fleet {
        pod.shutdown.cancel();
        pod.agent.stopped().await;
    }
}
