//! The reaper in the field: the real binary in a network namespace behind a
//! `tbf`-shaped link (256 kbit/s, 1 Mbit/s), clients with big receive
//! buffers, a tunnel that keeps draining, a link that goes down. Needs root
//! and iproute2 (`ip netns`, `tc`); without them these tests fail.
//!
//! Short windows keep the run short: pings every 1 s, pong timeout 5 s,
//! stall grace 5 s, sampling every 250 ms. The bounds below follow from the
//! rules, plus [`SLACK`] for a loaded 2-core machine:
//! - a frozen client whose kernel keeps acknowledging (big buffer, draining
//!   tunnel): the next ping, then whatever of the backlog stands before it
//!   at link speed (the window: at most 1 MiB here), then the pong timeout:
//!   `PING + backlog / rate + PONG + TICK`;
//! - a client whose kernel stops acknowledging (link down, buffer full): the
//!   stall grace after the queue stops moving: `GRACE + 2 TICK`, after the
//!   buffer has filled at link speed when the client froze with the link up.
//!
//! Release times are measured from the fault. Figures at the default flags
//! are in BENCHMARKS.md ("Dead clients in the field").

use std::time::{Duration, Instant};

use seatkeeper_testkit::{
    field::{self, Field},
    Client, Event, Relay, Server,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const PING: Duration = Duration::from_secs(1);
const PONG: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(250);
const SLACK: Duration = Duration::from_secs(4);

const FLAGS: [&str; 8] = [
    "--ping-interval-s",
    "1",
    "--dead-client-stall-s",
    "5",
    "--watchdog-interval-ms",
    "250",
    "--resume-window-s",
    "0",
];

/// A video-like engine: 64 KiB slices at 20 Hz, so the 16-slice window is
/// 1 MiB, eight seconds of a 1 Mbit/s link.
const VIDEO: [&str; 2] = ["--engine", "synthetic:20:65536"];

async fn field(kbit: Option<u32>, extra: &[&str]) -> (Field, Server) {
    field_with_pong(kbit, PONG, extra).await
}

async fn field_with_pong(kbit: Option<u32>, pong: Duration, extra: &[&str]) -> (Field, Server) {
    let f = field::create();
    if let Some(k) = kbit {
        f.shape(k).expect("tc tbf");
    }
    let pong = pong.as_secs().to_string();
    let mut args = FLAGS.to_vec();
    args.extend_from_slice(&["--pong-timeout-s", &pong]);
    args.extend_from_slice(extra);
    let s = field::serve(&f, BIN, &args).await;
    (f, s)
}

async fn reaps(s: &Server) -> Value {
    let mut out = json!({});
    for r in ["send_stall", "peer_close", "unresponsive"] {
        let n = s
            .metric(&format!("seatkeeper_reaps_total{{reason=\"{r}\"}}"))
            .await;
        out[r] = json!(n.unwrap_or(-1.0));
    }
    out
}

/// Reads everything as it arrives and acks every slice for `dur`, while
/// the largest ping round trip the server measured is tracked. Returns the
/// slices read and that round trip.
async fn live(c: &mut Client, s: &Server, dur: Duration) -> (u64, Duration) {
    let end = Instant::now() + dur;
    let reading = async {
        let mut n = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match c.next(left).await {
                Some(Event::Slice(h, ..)) => {
                    n += 1;
                    c.send(json!({"type": "ack", "seq": h.seq})).await;
                }
                Some(Event::Text(_)) | None => {}
                Some(other) => panic!("a live client was dropped: {other:?}"),
            }
        }
        n
    };
    let watching = async {
        let mut worst = 0u64;
        while Instant::now() < end {
            let sessions = s.sessions().await;
            worst = worst.max(sessions["sessions"][0]["ping_rtt_us"].as_u64().unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Duration::from_micros(worst)
    };
    tokio::join!(reading, watching)
}

async fn join(addr: std::net::SocketAddr, rcvbuf: Option<u32>) -> Client {
    let mut c = Client::connect_with(addr, rcvbuf).await;
    assert_eq!(c.hello(json!({})).await["type"], "ready");
    c
}

/// A live client on a slow link, watched for three pong timeouts: kept,
/// although its pings wait behind the send queue longer than the timeout.
async fn slow_link_is_kept(kbit: u32, pong: Duration, engine: &[&str]) {
    let (f, s) = field_with_pong(Some(kbit), pong, engine).await;
    let mut c = join(f.data_addr(), None).await;
    let (n, worst_rtt) = live(&mut c, &s, pong * 3 + Duration::from_secs(2)).await;
    println!("{kbit} kbit/s: {n} slices, slowest ping round trip {worst_rtt:?}");
    assert!(n > 0, "nothing arrived over the link");
    let sessions = s.sessions().await;
    assert_eq!(sessions["lockHeld"], true, "{sessions}\n{}", s.log_text());
    assert_eq!(
        reaps(&s).await,
        json!({"send_stall": 0.0, "peer_close": 0.0, "unresponsive": 0.0})
    );
    assert!(
        worst_rtt > pong,
        "pings should have waited behind the backlog longer than the pong timeout \
         (else this test proves nothing): {worst_rtt:?}"
    );
}

#[tokio::test]
async fn a_live_client_at_256_kbits_is_kept() {
    // The demo stream (1.5 Mbit/s) through 256 kbit/s: the send queue
    // holds about 7 s of the link ahead of each ping.
    slow_link_is_kept(256, PONG, &[]).await;
}

#[tokio::test]
async fn a_live_client_at_1_mbit_with_a_video_window_is_kept() {
    // About 4 s of the link ahead of each ping: a 2 s timeout shows it.
    slow_link_is_kept(1000, Duration::from_secs(2), &VIDEO).await;
}

/// Waits for the release; returns how long after `t0` it came and the
/// reaps by reason.
async fn released(s: &Server, t0: Instant, limit: Duration) -> (Duration, Value) {
    let took = s.wait_released(limit).await;
    assert!(took.is_some(), "not released: {}", s.log_text());
    let took = t0.elapsed();
    let r = reaps(s).await;
    println!("released {took:?} after the fault, reaps {r}");
    assert!(
        s.log_text().contains("reaped dead client"),
        "{}",
        s.log_text()
    );
    (took, r)
}

#[tokio::test]
async fn a_slow_link_that_freezes_is_reaped() {
    let (f, s) = field(Some(256), &[]).await;
    let mut c = join(f.data_addr(), None).await;
    live(&mut c, &s, Duration::from_secs(4)).await;
    let t0 = Instant::now(); // never read again
                             // The client's buffer (autotuned, well under 1 MiB at this rate) fills
                             // at 32 KB/s, then the stall grace runs; or a ping reaches it first.
    let bound = PING + Duration::from_secs(12) + GRACE.max(PONG) + 2 * TICK + SLACK;
    let (took, r) = released(&s, t0, bound).await;
    assert!(took <= bound, "{took:?}");
    assert_eq!(r["peer_close"], 0.0);
    assert_eq!(
        r["send_stall"].as_f64().unwrap() + r["unresponsive"].as_f64().unwrap(),
        1.0,
        "{r}"
    );
    drop(c);
}

#[tokio::test]
async fn a_frozen_client_with_a_4_mib_buffer_on_a_1_mbit_link_is_reaped_unresponsive() {
    let (f, s) = field(Some(1000), &[]).await;
    let mut c = join(f.data_addr(), Some(4 << 20)).await;
    live(&mut c, &s, Duration::from_secs(3)).await;
    let t0 = Instant::now();
    // The demo window (307 KB) is 2.5 s of this link.
    let bound = PING + Duration::from_secs(3) + PONG + TICK + SLACK;
    let (took, r) = released(&s, t0, bound).await;
    assert!(took <= bound && took >= PONG, "{took:?}");
    assert_eq!(r["unresponsive"], 1.0, "{r}");
    let log = s.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("reaped dead client"))
        .unwrap();
    for field in ["ping_written_at_ms", "ping_acked_at_ms", "stalled_ms"] {
        assert!(line.contains(field), "{line}");
    }
    drop(c);
}

#[tokio::test]
async fn a_frozen_client_whose_buffer_autotuned_is_reaped_within_the_grace() {
    // Unshaped: a fast stream read at full speed lets the kernel grow the
    // buffer (autotuning left on); then the client stops reading.
    let (f, s) = field(None, &VIDEO).await;
    let mut c = join(f.data_addr(), None).await;
    live(&mut c, &s, Duration::from_secs(3)).await;
    let t0 = Instant::now();
    let bound = (PING + PONG).max(GRACE) + 2 * TICK + SLACK;
    let (took, r) = released(&s, t0, bound).await;
    assert!(took <= bound, "{took:?}");
    assert_eq!(r["peer_close"], 0.0, "{r}");
    drop(c);
}

#[tokio::test]
async fn a_tunnel_that_keeps_draining_after_its_browser_left_is_reaped() {
    let (f, s) = field(None, &[]).await;
    let relay = Relay::start(f.data_addr()).await;
    let mut c = join(relay.addr, None).await;
    live(&mut c, &s, Duration::from_secs(2)).await;
    relay.drain();
    let t0 = Instant::now();
    let bound = PING + PONG + TICK + SLACK;
    let (took, r) = released(&s, t0, bound).await;
    assert!(took <= bound && took >= PONG, "{took:?}");
    assert_eq!(r["unresponsive"], 1.0, "{r}");
    drop(c);
}

#[tokio::test]
async fn a_laptop_that_sleeps_on_a_slow_link_is_reaped() {
    let (f, s) = field(Some(1000), &[]).await;
    let mut c = join(f.data_addr(), None).await;
    live(&mut c, &s, Duration::from_secs(3)).await;
    f.link_down().expect("link down");
    let t0 = Instant::now();
    // Nothing is acknowledged any more: the stall grace (or, for a ping the
    // client had just received, the pong timeout) from the fault.
    let bound = GRACE.max(PONG) + 2 * TICK + SLACK;
    let (took, r) = released(&s, t0, bound).await;
    assert!(took <= bound && took >= GRACE.min(PONG) - TICK, "{took:?}");
    assert_eq!(r["peer_close"], 0.0, "{r}");
    drop(c);
}

#[tokio::test]
async fn a_pong_timeout_not_above_the_ping_interval_is_refused() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--ping-interval-s", "5", "--pong-timeout-s", "5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--pong-timeout-s"), "{err}");
}
