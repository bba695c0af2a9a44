//! floor-peer, really started, against the project's own client: the load
//! generator (`seatkeeper load`'s code) and the chaos client, checking the
//! bytes they check — the upgrade, `ready`, slices in `seq` order with the
//! media clock, and the ack window.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use seatkeeper_chaos::{
    client::{Client, Event},
    http::http,
    load::{measure, LoadArgs},
};
use serde_json::json;

/// The floor-peer process, killed when dropped.
struct Floor(Child, SocketAddr);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(seats: u64, extra: &[&str]) -> Floor {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(env!("CARGO_BIN_EXE_floor-peer"))
        .args(["--listen", &addr.to_string()])
        .args(["--seats", &seats.to_string()])
        .args(["--engine", "synthetic:10:1024"])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .expect("floor-peer starts");
    let mut floor = Floor(child, addr);
    for _ in 0..100 {
        if let Ok(Some(st)) = floor.0.try_wait() {
            panic!("floor-peer exited: {st}");
        }
        if let Ok((200, _)) = http(addr, "GET", "/sessions", &[], "").await {
            return floor;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("floor-peer did not answer /sessions on {addr}");
}

#[tokio::test]
async fn the_load_generator_gets_every_slice_in_order_and_says_bye() {
    let floor = start(8, &[]).await;
    let r = measure(LoadArgs::new(format!("ws://{}/ws", floor.1), 5, 2.0))
        .await
        .expect("load runs");
    assert_eq!((r.ready, r.errors), (5, 0), "{r:?}");
    assert_eq!(r.seq_gaps, 0, "{r:?}");
    assert!(r.ended_early.is_empty(), "{r:?}");
    // 2 s at 10/s is ~20 each; a loaded machine still gets a quarter.
    assert!(r.slices >= 5 * 5, "{r:?}");
    assert_eq!(r.bytes, r.slices * 1024, "{r:?}");
    assert_eq!(r.seats_held_after, Some(0), "every bye frees its seat");
}

#[tokio::test]
async fn slices_count_up_and_stop_at_the_window_until_acked() {
    let floor = start(8, &["--window-slices", "3"]).await;
    let mut c = Client::connect_addr(floor.1, None).await.expect("upgrade");
    let ready = c.hello_ready(&json!({})).await.expect("ready");
    assert_eq!(ready.window_slices, 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(slice(&mut c).await);
    }
    // The window (3) is full: at 10/s, 0.6 s would bring 6 more without it.
    let quiet = c.next(Duration::from_millis(600)).await;
    assert!(quiet.is_none(), "a slice past the window: {quiet:?}");
    c.ack(3).await.expect("ack");
    for _ in 0..3 {
        seen.push(slice(&mut c).await);
    }
    let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    // The media clock is strictly increasing, in whole periods (100 ms).
    assert!(seen.windows(2).all(|w| w[1].1 > w[0].1), "{seen:?}");
    assert!(seen.iter().all(|s| s.1 % 100_000 == 0), "{seen:?}");
}

/// The next event, which must be a slice of the engine's shape: (seq, ts).
async fn slice(c: &mut Client) -> (u64, u64) {
    match c.next(Duration::from_secs(5)).await {
        Some(Event::Slice(h, len, _)) => {
            assert_eq!((h.flags, h.kind, len), (3, 0xFFFF, 1024));
            (h.seq, h.timestamp_us)
        }
        other => panic!("expected a slice, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_house_says_busy() {
    let floor = start(1, &[]).await;
    let mut a = Client::connect_addr(floor.1, None).await.expect("upgrade");
    a.hello_ready(&json!({})).await.expect("the one seat");
    let mut b = Client::connect_addr(floor.1, None).await.expect("upgrade");
    let refused = b.hello(&json!({})).await.expect("an answer");
    assert!(
        matches!(&refused, seatkeeper_chaos::client::HelloOutcome::Refused(v) if v["type"] == "busy"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_lean_client_reads_and_acks_past_the_window() {
    // A window of 2 slices: 2 s at 10/s only streams if the acks work.
    let floor = start(8, &["--window-slices", "2"]).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_floor-peer"))
        .args(["--client", "3", "--listen", &floor.1.to_string()])
        .args(["--duration-s", "2"])
        .output()
        .await
        .expect("the client runs");
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(
        (r["ready"].as_u64(), r["errors"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(r["seq_gaps"], 0, "{r}");
    assert!(r["slices"].as_u64().unwrap_or(0) >= 3 * 5, "{r}");
}
