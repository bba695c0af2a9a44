//! The slept laptop: a client in a network namespace whose link goes down
//! mid-stream. Needs root and iproute2 (CI has both); without them the
//! scenario's verdict is `skipped` and this test fails with the reason.

mod common;

use std::time::Duration;

use common::{args, server_bin, GRACE, SLACK, TICK};
use seatkeeper_chaos::{http::http, netns, run_many, Scenario};
use tokio::process::{Child, Command};

/// `seatkeeper serve` on the namespace's host-side address (the testkit
/// server listens on loopback only).
async fn serve_on_veth() -> (Child, std::net::SocketAddr, std::path::PathBuf) {
    let port = std::net::TcpListener::bind((netns::HOST_ADDR, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on the veth address")
        .port();
    let addr = std::net::SocketAddr::from((netns::HOST_ADDR, port));
    let log = std::env::temp_dir().join(format!("seatkeeper-blackhole-{port}.log"));
    let child = Command::new(server_bin())
        .args(["serve", "--listen", &addr.to_string()])
        .args([
            "--dead-client-stall-s",
            "3",
            "--watchdog-interval-ms",
            "250",
        ])
        .args(["--resume-window-s", "0", "--seats", "4"])
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn seatkeeper");
    for _ in 0..100 {
        if let Ok((200, _)) = http(addr, "GET", "/healthz", &[], "").await {
            return (child, addr, log);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("seatkeeper did not come up on {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_client_is_reaped() {
    if let Some(why) = netns::unavailable() {
        panic!("blackhole needs root and `ip netns`: {why}");
    }
    let ns = netns::Netns::create().expect("namespace");
    let (_server, addr, log) = serve_on_veth().await;
    let mut a = args(&format!("ws://{addr}/ws"), Scenario::Blackhole);
    a.clients = 2;
    let verdicts = run_many(a).await.expect("setup");
    drop(ns);
    assert!(!netns::exists(), "namespace left behind");
    assert_eq!(verdicts.len(), 2);
    for v in &verdicts {
        println!("{}", v.to_json_line());
        assert!(
            v.pass,
            "{}\n{}",
            v.to_json_line(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let took = v.release_s.unwrap();
        let bound = GRACE + 2 * TICK + Duration::from_secs(2) + SLACK;
        assert!(
            took >= GRACE.as_secs_f64() && took <= bound.as_secs_f64(),
            "{took}"
        );
    }
}
