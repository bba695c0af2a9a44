//! The soak (issue 8, item 5), against the real binary: for `SOAK_SECS`
//! seconds (default 90, so the suite stays short) workers churn the server
//! with every kind of client at once — streams ended by `bye`, resets and
//! half-closes, frozen readers, resumes after a reset or a FIN, floods, garbage,
//! upgrades that never say `hello`, plain HTTP — while a monitor checks
//! every 200 ms that held seats match listed sessions and never exceed
//! `--seats`. At the end every seat must come back, and the server's open
//! descriptors and RSS must be back near a baseline taken after warm-up.
//!
//! Long run by hand (figures in BENCHMARKS.md):
//! `SOAK_SECS=600 cargo test --release -p seatkeeper --test soak -- --nocapture`
//!
//! # Layout
//! - `polite`: well-behaved clients (testkit's `Client`): streams, drops,
//!   resumes, frozen readers.
//! - `hostile`: clients on the `Result` API and its raw escape hatch: floods, garbage,
//!   upgrades that never say `hello`; plain HTTP.
//! - `monitor`: the invariant checked every 200 ms, and the warm-up.
#![cfg(target_os = "linux")]

mod hostile;
mod monitor;
mod polite;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use seatkeeper_testkit::{
    proc::{serve_pid, usage},
    wait_until,
    ws::{
        self,
        frame::{self, BINARY, TEXT},
    },
    Client, Event, Rng, Server,
};
use serde_json::{json, Value};
use tokio::time::sleep;

use hostile::{browser, flooder, garbler, mute};
use monitor::{monitor, warm_up};
use polite::{dropper, freezer, resumer, streamer};

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
const SEATS: u64 = 8;
/// Low, so that a flood is cheap to send and still unmistakable.
const MAX_MSG_RATE: usize = 200;
/// Small, so that an over-size message is cheap to send.
const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// Every wait's bound: generous, the soak shares 2 cores with the suite.
const PATIENCE: Duration = Duration::from_secs(10);
/// Descriptors the server may hold above its baseline once idle (a
/// connection still in its close grace, the request that looks).
const FD_MARGIN: usize = 4;
/// RSS the server may keep above its baseline: allocator caches.
const RSS_MARGIN_KIB: u64 = 30 << 10;

/// What the workers share: the server, the deadline, tallies, failures.
struct Soak {
    server: Server,
    until: Instant,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<String>>,
    /// Hellos sent and hellos answered: a seat reserved for a hello whose
    /// session is still starting is held but not yet listed, so the monitor
    /// allows as many unlisted seats as hellos could be in flight.
    hellos_sent: AtomicU64,
    hellos_answered: AtomicU64,
}

impl Soak {
    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    fn count(&self, what: &'static str) {
        *self.lock_counts().entry(what).or_default() += 1;
    }

    fn counted(&self, what: &str) -> u64 {
        self.lock_counts().get(what).copied().unwrap_or(0)
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, what: String) {
        self.count("failures");
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the first ones: a broken server repeats itself.
        if f.len() < 50 {
            f.push(what);
        }
    }

    /// Waits until `GET /sessions/{id}` answers 404.
    async fn gone(&self, id: &str, limit: Duration) -> bool {
        let path = format!("/sessions/{id}");
        wait_until(limit, || async {
            matches!(self.server.get(&path).await, Ok((404, _))).then_some(())
        })
        .await
        .is_some()
    }
}

/// A string field of a message (empty when absent).
fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_seats_equal_to_sessions_and_leaves_nothing_behind() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    let args = format!(
        "--seats {SEATS} --engine synthetic:50:4096 --dead-client-stall-s 2 \
         --watchdog-interval-ms 100 --pong-timeout-s 4 --ping-interval-s 1 \
         --resume-window-s 2 --max-msg-rate {MAX_MSG_RATE} --max-message-bytes {MAX_MESSAGE_BYTES}"
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    let server = Server::start(BIN, &args).await;
    let pid = serve_pid(server.addr).expect("the server's pid from /proc");
    warm_up(&server).await;
    let (fds0, rss0) = usage(pid);

    let started = Instant::now();
    let s = Arc::new(Soak {
        server,
        until: started + Duration::from_secs(secs),
        counts: Mutex::default(),
        failures: Mutex::default(),
        hellos_sent: AtomicU64::new(0),
        hellos_answered: AtomicU64::new(0),
    });
    let mut workers = Vec::new();
    for (i, name) in [
        "streamer", "streamer", "dropper", "resumer", "freezer", "flooder", "garbler", "mute",
        "browser",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, rng) = (Arc::clone(&s), Rng::new(i as u64));
        let task = match name {
            "streamer" => tokio::spawn(streamer(s, rng)),
            "dropper" => tokio::spawn(dropper(s, rng)),
            "resumer" => tokio::spawn(resumer(s, rng)),
            "freezer" => tokio::spawn(freezer(s, rng)),
            "flooder" => tokio::spawn(flooder(s, rng)),
            "garbler" => tokio::spawn(garbler(s, rng)),
            "mute" => tokio::spawn(mute(s, rng)),
            _ => tokio::spawn(browser(s, rng)),
        };
        workers.push((name, task));
    }
    let (samples, max_held, starting) = monitor(Arc::clone(&s)).await;
    // Each worker finishes its round: at most a frozen client's 20 s wait
    // and a few PATIENCE-bounded steps.
    for (name, task) in workers {
        match tokio::time::timeout(Duration::from_secs(60), task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => s.fail(format!("{name} worker panicked: {e}")),
            Err(_) => s.fail(format!("{name} worker did not stop within 60 s")),
        }
    }
    let churn = started.elapsed();

    // Everything is closed: every seat must come back (detached sessions
    // after their 2 s resume window), then the descriptors.
    let released = s.server.wait_released(Duration::from_secs(30)).await;
    let fds_back = wait_until(Duration::from_secs(20), || async {
        (usage(pid).0 <= fds0 + FD_MARGIN).then_some(())
    })
    .await;
    let (fds1, rss1) = usage(pid);
    let m = s.server.metrics().await;
    let metric = |k: &str| m.get(k).copied().unwrap_or(-1.0);
    let ended: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("seatkeeper_sessions_ended_total{"))
        .map(|(_, v)| v)
        .sum();

    println!(
        "soak: {secs} s of churn ({:.0} s with the drain), 8 seats",
        churn.as_secs_f64()
    );
    println!(
        "sessions: {} started, {ended} ended; /sessions sampled {samples} times, \
         max held {max_held}, {starting} samples with a seat still starting",
        metric("seatkeeper_sessions_started_total")
    );
    for (k, v) in &m {
        if k.contains("ended_total{") || k.contains("reaps_total{") {
            println!("  {k} {v}");
        }
    }
    for k in [
        "busy",
        "refused",
        "upgrades",
        "messages_received",
        "messages_refused",
        "resumes",
        "takeovers",
        "accept_errors",
    ] {
        println!(
            "  seatkeeper_{k}_total {}",
            metric(&format!("seatkeeper_{k}_total"))
        );
    }
    println!("client outcomes: {:?}", s.lock_counts());
    println!("fds: {fds0} after warm-up, {fds1} at the end (margin {FD_MARGIN})");
    println!(
        "VmRSS: {} KiB after warm-up, {} KiB at the end (+{} KiB, margin {} KiB)",
        rss0,
        rss1,
        rss1.saturating_sub(rss0),
        RSS_MARGIN_KIB
    );
    let failures = s.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for f in &failures {
        println!("FAILURE: {f}");
    }

    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        s.counted("failures"),
        failures.first()
    );
    assert!(
        released.is_some(),
        "seats still held: {}",
        s.server.sessions().await
    );
    assert!(
        fds_back.is_some(),
        "descriptors: {fds0} after warm-up, {fds1} at the end"
    );
    assert!(
        rss1 <= rss0 + RSS_MARGIN_KIB,
        "VmRSS grew from {rss0} KiB to {rss1} KiB"
    );
    assert_eq!(
        ended,
        metric("seatkeeper_sessions_started_total"),
        "every session ended"
    );
    assert!(
        samples >= secs,
        "the monitor sampled only {samples} times in {secs} s"
    );
    // The churn really happened: each kind of client got through at least once.
    for what in [
        "bye",
        "resume_after_rst",
        "resume_after_fin",
        "reaped_not_resumed",
        "frozen_reaped",
        "flood_closed_1008",
        "garbage_first_binary_1003",
        "garbage_first_not_json_1007",
        "mute_upgrade",
        "http",
    ] {
        assert!(
            s.counted(what) > 0,
            "no {what} in {secs} s: {:?}",
            s.lock_counts()
        );
    }
    let reaps: f64 = ["send_stall", "peer_close", "unresponsive"]
        .iter()
        .map(|r| metric(&format!("seatkeeper_reaps_total{{reason=\"{r}\"}}")))
        .sum();
    let frozen = s.counted("frozen_reaped") as f64;
    assert!(
        reaps >= frozen,
        "every frozen client was reaped by the reaper"
    );
    // And its session ended as reaped, not as whatever its reader saw of the
    // reaper's abort (a lost transport, or a "protocol error").
    assert!(
        metric("seatkeeper_sessions_ended_total{reason=\"reaped\"}") >= frozen,
        "{frozen} frozen clients reaped, but fewer sessions ended as reaped"
    );
    assert!(usage(pid).0 > 0, "the server is still running");
}
