//! Pool mode end to end (issue 6, "How it is checked"; contract, "Pool"):
//! the real `seatkeeper` binary as pods, `pool claim` / `pool ls` /
//! `pool allocator` / `drain` as child processes, and a real `redis-server`
//! per test on a free loopback port. Short TTLs (heartbeat every third of
//! `--pool-ttl-s`), generous bounds: timing figures are printed, not
//! asserted tightly (run with `--nocapture` to see them).
//!
//! Without `redis-server` the tests skip with a message, except under
//! `CI=true`, where they fail.

use std::{
    net::SocketAddr,
    process::{Command as StdCommand, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use seatkeeper_testkit::{
    redis::RedisServer as Redis, server::http, wait_until, Client, Event, Server,
};
use serde_json::{json, Value};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
/// Slack for a loaded 2-core machine on top of each contract bound.
const SLACK: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- redis

macro_rules! redis_or_skip {
    () => {
        match Redis::start() {
            Some(r) => r,
            None => return,
        }
    };
}

// ---------------------------------------------------------------- pods

/// Flags every pod gets unless the test overrides them.
const POD_DEFAULTS: &[(&str, &str)] = &[
    ("--seats", "1"),
    ("--pool-ttl-s", "1"),
    ("--claim-ttl-s", "2"),
    ("--dead-client-stall-s", "3"),
    ("--watchdog-interval-ms", "250"),
    ("--resume-window-s", "0"),
];

fn advertised(id: &str) -> String {
    format!("ws://{id}.test:1318/ws")
}

/// Starts `serve` in pool mode and waits until `/readyz/pool` says it is
/// registered and `pool ls` shows it ready (claimable). The two can differ
/// for up to one heartbeat after start: the first heartbeat may go out
/// before the server exists and publish `ready: 0` (reported to the lead).
async fn pod(redis: &Redis, id: &str, overrides: &[(&str, &str)]) -> Server {
    let url = redis.url();
    let advertise = advertised(id);
    let mut args: Vec<&str> = vec![
        "--pool",
        &url,
        "--pod-id",
        id,
        "--advertise-url",
        &advertise,
    ];
    for (flag, value) in POD_DEFAULTS {
        let value = overrides
            .iter()
            .find(|(f, _)| f == flag)
            .map_or(*value, |(_, v)| *v);
        args.extend([*flag, value]);
    }
    for (flag, value) in overrides {
        if !POD_DEFAULTS.iter().any(|(f, _)| f == flag) {
            args.extend([*flag, *value]);
        }
    }
    let s = Server::start(BIN, &args).await;
    let up = wait_until(Duration::from_secs(10), || async {
        (pool_ready(&s).await == 200).then_some(())
    })
    .await;
    assert!(up.is_some(), "{id} never registered: {}", s.log_text());
    let t0 = Instant::now();
    let listed = wait_row(&url, id, Duration::from_secs(10), |r| {
        r.is_some_and(|r| r["ready"] == true)
    })
    .await;
    assert!(
        listed.is_some(),
        "{id} not ready in pool ls: {}",
        s.log_text()
    );
    if t0.elapsed() > Duration::from_millis(100) {
        eprintln!(
            "NOTE: {id}: /readyz/pool was 200 {:?} before pool ls showed it ready",
            t0.elapsed()
        );
    }
    s
}

async fn pool_ready(s: &Server) -> u16 {
    s.get("/readyz/pool").await.map_or(0, |(code, _)| code)
}

/// The pid of the `serve` process listening on `addr`, from /proc.
fn pid_of(addr: SocketAddr) -> Option<u32> {
    let want = addr.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        let serve = args.iter().any(|a| *a == b"serve");
        let listen = args
            .windows(2)
            .any(|w| w[0] == b"--listen" && w[1] == want.as_bytes());
        if serve && listen {
            return Some(pid);
        }
    }
    None
}

// ---------------------------------------------------------------- CLI

/// Starts `pool allocator` on a free port; waits for its `/healthz`.
async fn allocator(url: &str) -> (SocketAddr, tokio::process::Child) {
    for _ in 0..5 {
        let addr: SocketAddr = format!("127.0.0.1:{}", seatkeeper_testkit::server::free_port())
            .parse()
            .expect("addr");
        let mut child = Command::new(BIN)
            .args(["pool", "allocator", "--redis", url, "--listen"])
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn allocator");
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = loop {
            if child.try_wait().ok().flatten().is_some() {
                break false; // exited: the port was taken
            }
            let healthy = http(addr, "GET", "/healthz", &[], "").await;
            if healthy.is_ok_and(|(status, _)| status == 200) {
                break child.try_wait().ok().flatten().is_none();
            }
            assert!(
                Instant::now() < deadline,
                "the allocator did not come up on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if up {
            return (addr, child);
        }
    }
    panic!("the allocator could not start on a free port");
}

/// Runs the binary; returns exit code, stdout and stderr.
async fn run(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("seatkeeper {args:?} did not finish in 20 s"))
    .expect("spawn seatkeeper");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pool claim`: exit code and its JSON line.
async fn claim(url: &str) -> (i32, Value) {
    let (code, out, err) = run(&["pool", "claim", "--redis", url]).await;
    let line = out.trim();
    let v = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("pool claim printed no JSON ({e}): {out:?} / {err}"));
    assert_eq!(line.lines().count(), 1, "one JSON line: {out:?}");
    (code, v)
}

/// A granted claim, checked against the contract's shape.
async fn granted(url: &str) -> Value {
    let (code, v) = claim(url).await;
    if code != 0 {
        panic!("claim refused: {v}; pool ls: {:?}", try_ls(url).await);
    }
    check_claim(&v);
    v
}

fn check_claim(v: &Value) {
    let token = v["seat_token"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(
        (22..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()),
        "{v}"
    );
    assert!(v["pod_id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    assert!(
        v["url"].as_str().is_some_and(|u| u.starts_with("ws://")),
        "{v}"
    );
    assert!(v["expires_in_s"].as_f64().is_some_and(|s| s > 0.0), "{v}");
}

fn token(claim: &Value) -> &str {
    claim["seat_token"].as_str().expect("seat_token")
}

/// `pool ls`, or `None` when it fails (Redis down).
async fn try_ls(url: &str) -> Option<Vec<Value>> {
    let (code, out, _) = run(&["pool", "ls", "--redis", url]).await;
    if code != 0 {
        return None;
    }
    let v: Value = serde_json::from_str(out.trim()).ok()?;
    v.as_array().cloned()
}

async fn ls(url: &str) -> Vec<Value> {
    try_ls(url).await.expect("pool ls failed")
}

fn row<'a>(pods: &'a [Value], id: &str) -> Option<&'a Value> {
    pods.iter().find(|p| p["pod_id"] == id)
}

/// Waits until `id`'s row satisfies `ok`; returns how long it took.
async fn wait_row(
    url: &str,
    id: &str,
    limit: Duration,
    ok: impl Fn(Option<&Value>) -> bool,
) -> Option<Duration> {
    let t0 = Instant::now();
    wait_until(limit, || async {
        let pods = try_ls(url).await?;
        ok(row(&pods, id)).then_some(())
    })
    .await
    .map(|()| t0.elapsed())
}

fn free(r: Option<&Value>) -> Option<u64> {
    r.and_then(|r| r["seats_free"].as_u64())
}

// ---------------------------------------------------------------- sessions

/// A hello with `extra` (e.g. a seat token) on `pod`; the client and its
/// first reply.
async fn hello(pod: &Server, extra: Value) -> (Client, Value) {
    let mut c = Client::connect(pod.addr).await;
    let reply = c.hello(extra).await;
    (c, reply)
}

/// A hello with a claim's token that must be admitted.
async fn enter(pod: &Server, claim: &Value) -> (Client, Value) {
    let (c, ready) = hello(pod, json!({"seat_token": token(claim)})).await;
    assert_eq!(ready["type"], "ready", "{ready}\n{}", pod.log_text());
    (c, ready)
}

/// A hello that must be refused with `error` `code` and close `close`.
async fn refused(pod: &Server, extra: Value, code: &str, close: u16) {
    let (mut c, reply) = hello(pod, extra.clone()).await;
    assert_eq!(reply["type"], "error", "{extra} → {reply}");
    assert_eq!(reply["code"], code, "{extra} → {reply}");
    let end = c.until_closed(Duration::from_secs(5)).await;
    assert!(
        matches!(end, Some(Event::Closed(Some(c))) if c == close),
        "{extra}: expected close {close}, got {end:?}"
    );
}

/// Streams (and acks) until `stop`; fails on a close or a 3 s silence.
/// Returns slices seen, the longest gap between two, and the client.
async fn keep_streaming(
    mut c: Client,
    stop: Arc<AtomicBool>,
) -> Result<(u64, Duration, Client), String> {
    let (mut n, mut last, mut gap) = (0u64, Instant::now(), Duration::ZERO);
    while !stop.load(Ordering::SeqCst) {
        match c.next(Duration::from_secs(3)).await {
            Some(Event::Slice(h, _)) => {
                n += 1;
                gap = gap.max(last.elapsed());
                last = Instant::now();
                c.send(json!({"type": "ack", "seq": h.seq})).await;
            }
            Some(Event::Text(_)) => {}
            None => return Err(format!("no slice for 3 s after {n} slices")),
            Some(end) => return Err(format!("stream ended after {n} slices: {end:?}")),
        }
    }
    Ok((n, gap, c))
}

async fn held(pod: &Server) -> u64 {
    pod.sessions().await["seats"]["held"]
        .as_u64()
        .expect("seats.held")
}

async fn metric(pod: &Server, sample: &str) -> f64 {
    pod.metric(sample).await.unwrap_or(-1.0)
}

const BAD_TOKEN_REFUSALS: &str = "seatkeeper_pool_redeems_refused_total{code=\"bad_seat_token\"}";
const UNAVAILABLE_REFUSALS: &str =
    "seatkeeper_pool_redeems_refused_total{code=\"pool_unavailable\"}";

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn pods_register_and_pool_ls_shows_their_figures() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, b, _c) = tokio::join!(
        pod(&redis, "pod-a", &[]),
        pod(&redis, "pod-b", &[("--seats", "2")]),
        pod(&redis, "pod-c", &[("--pool-ttl-s", "2")]),
    );
    let pods = ls(&url).await;
    let ids: Vec<&str> = pods.iter().filter_map(|p| p["pod_id"].as_str()).collect();
    assert_eq!(ids, ["pod-a", "pod-b", "pod-c"], "{pods:?}");
    for p in &pods {
        let id = p["pod_id"].as_str().unwrap();
        let total = if id == "pod-b" { 2 } else { 1 };
        assert_eq!(p["url"], advertised(id), "{p}");
        assert_eq!(p["seats_total"], total, "{p}");
        assert_eq!(p["seats_free"], total, "{p}");
        assert_eq!(p["lockHeld"], false, "{p}");
        assert_eq!(p["ready"], true, "{p}");
        assert!(p["age_ms"].as_u64().is_some_and(|ms| ms < 60_000), "{p}");
    }

    // The claim goes to the pod with the most free seats (docs/FLEET.md).
    let c1 = granted(&url).await;
    assert_eq!(c1["pod_id"], "pod-b", "{c1}");
    assert_eq!(c1["url"], advertised("pod-b"), "{c1}");
    assert_eq!(c1["expires_in_s"].as_f64(), Some(2.0), "{c1}");
    let pods = ls(&url).await;
    let rb = row(&pods, "pod-b").unwrap();
    assert_eq!(rb["seats_free"], 1, "a claim reserves: {rb}");
    assert_eq!(rb["lockHeld"], false, "claimed is not held: {rb}");

    let (mut s, _) = enter(&b, &c1).await;
    s.take_slices(3).await;
    let pods = ls(&url).await;
    let rb = row(&pods, "pod-b").unwrap();
    assert_eq!(rb["seats_free"], 1, "{rb}");
    assert_eq!(rb["lockHeld"], true, "{rb}");
    assert_eq!(row(&pods, "pod-a").unwrap()["lockHeld"], false);
    assert_eq!(held(&b).await, 1);
    assert_eq!(held(&a).await, 0);
    assert_eq!(
        metric(&b, "seatkeeper_pool_claims_redeemed_total").await,
        1.0
    );
    assert!(metric(&b, "seatkeeper_pool_registrations_total").await >= 1.0);
    assert_eq!(metric(&b, "seatkeeper_pool_redis_up").await, 1.0);
}

#[tokio::test]
async fn twenty_concurrent_claims_for_two_seats_grant_exactly_two() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, b) = tokio::join!(pod(&redis, "pod-a", &[]), pod(&redis, "pod-b", &[]));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let url = url.clone();
        set.spawn(async move { claim(&url).await });
    }
    let mut grants = Vec::new();
    let mut full = 0;
    while let Some(r) = set.join_next().await {
        match r.expect("claim task") {
            (0, v) => {
                check_claim(&v);
                grants.push(v);
            }
            (3, v) => {
                assert_eq!(v, json!({"error": "no_free_seat"}));
                full += 1;
            }
            (code, v) => panic!("pool claim exited {code}: {v}"),
        }
    }
    assert_eq!(grants.len(), 2, "exactly two granted: {grants:?}");
    assert_eq!(full, 18);
    assert_ne!(token(&grants[0]), token(&grants[1]), "distinct tokens");
    let mut pods: Vec<&str> = grants.iter().filter_map(|g| g["pod_id"].as_str()).collect();
    pods.sort_unstable();
    assert_eq!(pods, ["pod-a", "pod-b"], "one seat on each pod");
    assert!(ls(&url).await.iter().all(|p| p["seats_free"] == 0));

    // Each token lets its hello in, on its own pod, and slices flow.
    let mut clients = Vec::new();
    for g in &grants {
        let p = if g["pod_id"] == "pod-a" { &a } else { &b };
        let (mut c, ready) = enter(p, g).await;
        assert_eq!(ready["resumed"], false);
        let (n, _) = c.stream_for(Duration::from_secs(1), true).await;
        assert!(n >= 3, "slices flow: {n}");
        clients.push(c);
    }
    let pods = ls(&url).await;
    assert!(
        pods.iter()
            .all(|p| p["seats_free"] == 0 && p["lockHeld"] == true),
        "{pods:?}"
    );
    assert_eq!(claim(&url).await.0, 3, "still full");
}

#[tokio::test]
async fn the_allocator_serves_claims_over_http_200_then_503() {
    let mut redis = redis_or_skip!();
    let url = redis.url();
    let (_a, _b) = tokio::join!(
        pod(&redis, "pod-a", &[]),
        pod(&redis, "pod-b", &[("--claim-ttl-s", "30")])
    );
    let (addr, _allocator) = allocator(&url).await;

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        set.spawn(async move { http(addr, "POST", "/claim", &[], "").await });
    }
    let (mut ok, mut full) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        let (status, body) = r.expect("task").expect("POST /claim");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        match status {
            200 => {
                check_claim(&v);
                ok.push(v);
            }
            503 => {
                assert_eq!(v, json!({"error": "no_free_seat"}));
                full += 1;
            }
            other => panic!("POST /claim: {other} {body}"),
        }
    }
    assert_eq!(ok.len(), 2, "{ok:?}");
    assert_eq!(full, 18);
    assert_ne!(ok[0]["seat_token"], ok[1]["seat_token"]);
    assert_ne!(ok[0]["pod_id"], ok[1]["pod_id"]);

    let (status, body) = http(addr, "GET", "/metrics", &[], "").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("seatkeeper_pool_claims_total{outcome=\"granted\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("seatkeeper_pool_claims_total{outcome=\"no_free_seat\"} 18"),
        "{body}"
    );
    let (status, body) = http(addr, "GET", "/nope", &[], "").await.unwrap();
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "not_found"
    );
    assert_eq!(http(addr, "GET", "/claim", &[], "").await.unwrap().0, 405);

    // pod-a's claim lapses after 2 s: the allocator grants it again, 200 then 503.
    let lapsed = wait_until(Duration::from_secs(2) + SLACK, || async {
        let (status, body) = http(addr, "POST", "/claim", &[], "").await.ok()?;
        (status == 200).then_some(body)
    })
    .await
    .expect("the lapsed seat comes back");
    let again: Value = serde_json::from_str(&lapsed).unwrap();
    assert_eq!(again["pod_id"], "pod-a", "{again}");
    let (status, body) = http(addr, "POST", "/claim", &[], "").await.unwrap();
    assert_eq!((status, body.trim()), (503, r#"{"error":"no_free_seat"}"#));

    // Redis gone: 503 pool_unavailable, and the allocator stays up.
    redis.stop();
    let (status, body) = http(addr, "POST", "/claim", &[], "").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "pool_unavailable",
        "{body}"
    );
    assert_eq!(http(addr, "GET", "/healthz", &[], "").await.unwrap().0, 200);
}

#[tokio::test]
async fn wrong_pod_missing_malformed_and_reused_tokens_are_refused_1008_and_hold_nothing() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, b) = tokio::join!(
        pod(
            &redis,
            "pod-a",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        ),
        pod(
            &redis,
            "pod-b",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        )
    );
    let c = granted(&url).await;
    let (mine, other) = if c["pod_id"] == "pod-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let tok = token(&c).to_owned();

    // Wrong pod, missing, malformed, unknown (well-formed but never issued).
    refused(other, json!({"seat_token": tok}), "bad_seat_token", 1008).await;
    refused(other, json!({}), "bad_seat_token", 1008).await;
    refused(mine, json!({}), "bad_seat_token", 1008).await;
    refused(mine, json!({"seat_token": "short"}), "bad_seat_token", 1008).await;
    let unknown = "0".repeat(64);
    refused(mine, json!({"seat_token": unknown}), "bad_seat_token", 1008).await;
    assert_eq!(held(mine).await, 0, "a refused hello holds no seat");
    assert_eq!(held(other).await, 0, "a refused hello holds no seat");

    // The wrong-pod attempt did not spend the token: it works on its pod, once.
    let (mut s, _) = enter(mine, &c).await;
    s.take_slices(2).await;
    refused(mine, json!({"seat_token": tok}), "bad_seat_token", 1008).await;
    assert_eq!(held(mine).await, 1, "only the redeemed session holds");
    assert_eq!(held(other).await, 0);
    s.take_slices(2).await;

    // Nothing refused took a seat in the pool either.
    let pods = ls(&url).await;
    let mine_id = c["pod_id"].as_str().unwrap();
    let other_id = if mine_id == "pod-a" { "pod-b" } else { "pod-a" };
    assert_eq!(free(row(&pods, mine_id)), Some(1), "{pods:?}");
    assert_eq!(free(row(&pods, other_id)), Some(2), "{pods:?}");
    assert_eq!(metric(mine, BAD_TOKEN_REFUSALS).await, 4.0);
    assert_eq!(metric(other, BAD_TOKEN_REFUSALS).await, 2.0);
    assert_eq!(
        metric(mine, "seatkeeper_pool_claims_redeemed_total").await,
        1.0
    );

    // After bye, the spent token is still no way in.
    s.send(json!({"type": "bye"})).await;
    assert!(mine.wait_released(Duration::from_secs(5)).await.is_some());
    refused(mine, json!({"seat_token": tok}), "bad_seat_token", 1008).await;
    assert_eq!(held(mine).await, 0);
}

#[tokio::test]
async fn on_a_full_pod_a_reused_or_missing_token_is_still_bad_seat_token() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(&redis, "pod-full", &[("--claim-ttl-s", "30")]).await;
    let c = granted(&url).await;
    let (mut s, _) = enter(&p, &c).await;
    s.take_slices(2).await;
    assert_eq!(held(&p).await, 1, "the pod is full");
    // Not busy/1013: a caller without a good token learns nothing of seats.
    refused(&p, json!({"seat_token": token(&c)}), "bad_seat_token", 1008).await;
    refused(&p, json!({}), "bad_seat_token", 1008).await;
    refused(
        &p,
        json!({"seat_token": "0".repeat(64)}),
        "bad_seat_token",
        1008,
    )
    .await;
    s.take_slices(3).await;
    assert_eq!(held(&p).await, 1);
}

#[tokio::test]
async fn an_unredeemed_claim_lapses_and_its_seat_returns() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(&redis, "pod-a", &[]).await; // --claim-ttl-s 2
    let t0 = Instant::now();
    let first = granted(&url).await;
    assert_eq!(free(row(&ls(&url).await, "pod-a")), Some(0));
    let (code, v) = claim(&url).await;
    assert_eq!((code, v), (3, json!({"error": "no_free_seat"})));

    let back = wait_row(&url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
        free(r) == Some(1)
    })
    .await;
    assert!(back.is_some(), "the claim never lapsed");
    let lapse = t0.elapsed();
    eprintln!("claim lapse: seat free in pool ls {lapse:?} after the claim (claim TTL 2 s)");
    assert!(
        lapse >= Duration::from_millis(1500),
        "lapsed early: {lapse:?}"
    );

    // The lapsed token is refused; a new claim gets the seat and works.
    refused(
        &p,
        json!({"seat_token": token(&first)}),
        "bad_seat_token",
        1008,
    )
    .await;
    let second = granted(&url).await;
    assert_eq!(second["pod_id"], "pod-a");
    let (mut s, _) = enter(&p, &second).await;
    s.take_slices(2).await;
    let lapsed = wait_until(Duration::from_secs(3), || async {
        (metric(&p, "seatkeeper_pool_claims_lapsed_total").await == 1.0).then_some(())
    })
    .await;
    assert!(
        lapsed.is_some(),
        "lapsed_total = {}",
        metric(&p, "seatkeeper_pool_claims_lapsed_total").await
    );
}

#[tokio::test]
async fn bye_returns_the_seat_to_the_pool_within_a_heartbeat() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(&redis, "pod-a", &[]).await; // heartbeat every 333 ms
    for round in 0..2 {
        let c = granted(&url).await;
        let (mut s, _) = enter(&p, &c).await;
        s.take_slices(3).await;
        assert_eq!(claim(&url).await.0, 3);
        let t0 = Instant::now();
        s.send(json!({"type": "bye"})).await;
        let took = wait_row(&url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
            free(r) == Some(1) && r.is_some_and(|r| r["lockHeld"] == false)
        })
        .await;
        let took = took.unwrap_or_else(|| panic!("seat not back after bye: {}", p.log_text()));
        eprintln!("bye → seat free in pool ls: {took:?} (round {round})");
        assert!(t0.elapsed() < Duration::from_secs(1) + SLACK);
        assert_eq!(held(&p).await, 0);
        drop(s);
    }
    assert_eq!(
        metric(&p, "seatkeeper_pool_claims_redeemed_total").await,
        2.0
    );
    let released = metric(&p, "seatkeeper_pool_releases_total{how=\"release\"}").await
        + metric(&p, "seatkeeper_pool_releases_total{how=\"resync\"}").await;
    assert_eq!(released, 2.0);
}

#[tokio::test]
async fn a_frozen_client_is_reaped_and_its_seat_returns_to_the_pool() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(&redis, "pod-a", &[]).await; // grace 3 s, sampling 250 ms
    let c = granted(&url).await;
    let (mut s, _) = enter(&p, &c).await;
    s.stream_for(Duration::from_secs(1), true).await;
    // Stop reading: keep the socket open, never poll it again.
    let frozen_at = Instant::now();
    let took = wait_row(&url, "pod-a", Duration::from_secs(3) + 2 * SLACK, |r| {
        free(r) == Some(1) && r.is_some_and(|r| r["lockHeld"] == false)
    })
    .await;
    assert!(took.is_some(), "frozen client not reaped: {}", p.log_text());
    let took = frozen_at.elapsed();
    eprintln!("freeze → reaped and seat free in pool ls: {took:?} (grace 3 s)");
    assert!(took >= Duration::from_secs(3), "before the grace: {took:?}");
    assert_eq!(
        metric(&p, "seatkeeper_reaps_total{reason=\"send_stall\"}").await,
        1.0,
        "{}",
        p.log_text()
    );
    let again = granted(&url).await;
    assert_eq!(again["pod_id"], "pod-a");
    let (mut s2, _) = enter(&p, &again).await;
    s2.take_slices(2).await;
    drop(s);
}

#[tokio::test]
async fn a_sigkilled_pod_leaves_the_pool_within_its_ttl() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let ttl = [("--pool-ttl-s", "2")];
    let (a, _b) = tokio::join!(pod(&redis, "pod-a", &ttl), pod(&redis, "pod-b", &ttl));
    assert_eq!(ls(&url).await.len(), 2);
    let pid = pid_of(a.addr).expect("pod-a's pid in /proc");
    let t0 = Instant::now();
    let status = StdCommand::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let gone = wait_row(&url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
        r.is_none()
    })
    .await;
    let took = t0.elapsed();
    assert!(gone.is_some(), "pod-a still listed {took:?} after SIGKILL");
    eprintln!("SIGKILL → pod gone from pool ls: {took:?} (pool TTL 2 s)");
    let pods = ls(&url).await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["pod_id"], "pod-b");
    // Claims only find the live pod now.
    assert_eq!(granted(&url).await["pod_id"], "pod-b");
    assert_eq!(claim(&url).await.0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_session_and_double_grants_no_seat() {
    let mut redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(
        &redis,
        "pod-a",
        &[("--seats", "3"), ("--claim-ttl-s", "30")],
    )
    .await;
    // Three seats: a session that lives through the outage, one that ends
    // during it, and a claim made before it and never redeemed.
    let (mut s1, ready1) = enter(&p, &granted(&url).await).await;
    s1.take_slices(3).await;
    let (mut s0, _) = enter(&p, &granted(&url).await).await;
    s0.take_slices(2).await;
    let stale = granted(&url).await;
    assert_eq!(free(row(&ls(&url).await, "pod-a")), Some(0));

    let stop = Arc::new(AtomicBool::new(false));
    let streamer = tokio::spawn(keep_streaming(s1, Arc::clone(&stop)));

    redis.stop();
    let t_stop = Instant::now();
    let down = wait_until(Duration::from_secs(5), || async {
        (pool_ready(&p).await == 503).then_some(())
    })
    .await;
    assert!(down.is_some(), "/readyz/pool stayed 200 without Redis");
    eprintln!("redis stopped → /readyz/pool 503: {:?}", t_stop.elapsed());
    // No claim, and no fresh hello: the pod cannot check a token.
    let (code, v) = claim(&url).await;
    assert!(code != 0 && code != 3, "a claim without Redis: {code} {v}");
    assert_eq!(v["error"], "pool_unavailable", "{v}");
    s0.send(json!({"type": "bye"})).await;
    let s0_gone = wait_until(Duration::from_secs(5), || async {
        (held(&p).await == 1).then_some(())
    })
    .await;
    assert!(s0_gone.is_some(), "bye during the outage");
    refused(
        &p,
        json!({"seat_token": token(&stale)}),
        "pool_unavailable",
        1013,
    )
    .await;
    assert!(metric(&p, UNAVAILABLE_REFUSALS).await >= 1.0);
    assert_eq!(held(&p).await, 1);
    assert!(try_ls(&url).await.is_none());
    // Stay down past the pool TTL (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !streamer.is_finished(),
        "the live session stopped streaming"
    );

    redis.restart();
    let t_restart = Instant::now();
    let back = wait_row(&url, "pod-a", Duration::from_secs(5), |r| r.is_some()).await;
    assert!(
        back.is_some(),
        "pod-a never re-registered: {}",
        p.log_text()
    );
    eprintln!(
        "redis restarted → pod-a back in pool ls: {:?}",
        t_restart.elapsed()
    );
    let ready = wait_until(Duration::from_secs(5), || async {
        (pool_ready(&p).await == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "/readyz/pool stayed 503");
    let pods = ls(&url).await;
    let r = row(&pods, "pod-a").unwrap();
    assert_eq!(
        r["seats_free"], 2,
        "the live session's seat is held, the others are free: {r}"
    );
    assert_eq!(r["lockHeld"], true, "{r}");
    assert!(r["age_ms"].as_u64().unwrap() < 10_000, "re-registered: {r}");

    // Claims from before the restart are gone; exactly two seats are offered.
    refused(
        &p,
        json!({"seat_token": token(&stale)}),
        "bad_seat_token",
        1008,
    )
    .await;
    let mut fresh = Vec::new();
    for _ in 0..2 {
        let c = granted(&url).await;
        assert_eq!(c["pod_id"], "pod-a");
        fresh.push(c);
    }
    assert_eq!(
        claim(&url).await,
        (3, json!({"error": "no_free_seat"})),
        "the live session's seat must not be granted again"
    );
    let mut newcomers = Vec::new();
    for c in &fresh {
        let (mut s, ready) = enter(&p, c).await;
        s.take_slices(2).await;
        assert_ne!(ready["session_id"], ready1["session_id"]);
        newcomers.push(s);
    }
    assert_eq!(held(&p).await, 3);
    assert_eq!(free(row(&ls(&url).await, "pod-a")), Some(0));

    stop.store(true, Ordering::SeqCst);
    let (n, gap, mut s1) = streamer
        .await
        .expect("streamer task")
        .unwrap_or_else(|e| panic!("the live session broke: {e}\n{}", p.log_text()));
    let span = t_stop.elapsed();
    eprintln!("live session across the outage: {n} slices in {span:?}, longest gap {gap:?}");
    assert!(gap < Duration::from_secs(2), "a {gap:?} gap in the stream");
    assert!(
        n as f64 >= span.as_secs_f64() * 3.0,
        "{n} slices in {span:?}"
    );
    let sessions = p.sessions().await;
    let live = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == ready1["session_id"])
        .cloned()
        .unwrap_or_else(|| panic!("{sessions}"));
    assert_eq!(live["state"], "streaming", "{live}");
    assert!(metric(&p, "seatkeeper_pool_registrations_total").await >= 2.0);
    assert!(metric(&p, "seatkeeper_pool_heartbeat_errors_total").await >= 1.0);

    // And the surviving session's seat still comes back on bye.
    s1.send(json!({"type": "bye"})).await;
    let back = wait_row(&url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
        free(r) == Some(1)
    })
    .await;
    assert!(back.is_some(), "{}", p.log_text());
    for s in &mut newcomers {
        s.take_slices(1).await;
    }
}

#[tokio::test]
async fn a_resume_needs_no_seat_token_and_an_expired_window_returns_the_seat() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(&redis, "pod-a", &[("--resume-window-s", "2")]).await;
    let c = granted(&url).await;
    let (mut s, ready) = enter(&p, &c).await;
    let last = s.take_slices(5).await;
    s.rst();
    let detached = wait_until(Duration::from_secs(5), || async {
        (p.sessions().await["sessions"][0]["state"] == "detached").then_some(())
    })
    .await;
    assert!(detached.is_some(), "{}", p.sessions().await);
    let r = ls(&url).await;
    assert_eq!(
        free(row(&r, "pod-a")),
        Some(0),
        "detached still holds: {r:?}"
    );

    let resume = ready["resume_token"].as_str().unwrap();
    let (mut s2, again) = hello(&p, json!({"resume": resume})).await;
    assert_eq!(again["type"], "ready", "{again}");
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["session_id"], ready["session_id"]);
    assert!(s2.take_slices(3).await > last, "seq continues");
    assert_eq!(metric(&p, BAD_TOKEN_REFUSALS).await, 0.0);
    assert_eq!(
        metric(&p, "seatkeeper_pool_claims_redeemed_total").await,
        1.0
    );
    assert_eq!(held(&p).await, 1);
    assert_eq!(free(row(&ls(&url).await, "pod-a")), Some(0));

    // Lost again and never resumed: the window ends, the seat returns to
    // the pool, and the last resume token is a plain hello, which needs a
    // seat token.
    let resume2 = again["resume_token"].as_str().unwrap().to_owned();
    s2.rst();
    let t0 = Instant::now();
    let back = wait_row(&url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
        free(r) == Some(1) && r.is_some_and(|r| r["lockHeld"] == false)
    })
    .await;
    assert!(back.is_some(), "{}", p.log_text());
    eprintln!(
        "resume window (2 s) over → seat free in pool ls: {:?}",
        t0.elapsed()
    );
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    refused(&p, json!({"resume": resume2}), "bad_seat_token", 1008).await;
    assert_eq!(held(&p).await, 0);
    let (mut s3, fresh) = enter(&p, &granted(&url).await).await;
    assert_eq!(fresh["resumed"], false);
    s3.take_slices(2).await;
}

#[tokio::test]
async fn a_second_process_with_one_pod_id_waits_until_the_first_leaves() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let mut first = pod(&redis, "pod-a", &[]).await;
    let args = [
        "--pool",
        url.as_str(),
        "--pod-id",
        "pod-a",
        "--advertise-url",
        "ws://pod-a-twin.test:1318/ws",
        "--pool-ttl-s",
        "1",
        "--resume-window-s",
        "0",
    ];
    let twin = Server::start(BIN, &args).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pool_ready(&twin).await, 503, "a duplicate registered");
    let pods = ls(&url).await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["url"], advertised("pod-a"), "{pods:?}");
    // A claim names the first process's seat; the twin cannot admit it.
    let c = granted(&url).await;
    refused(
        &twin,
        json!({"seat_token": token(&c)}),
        "pool_unavailable",
        1013,
    )
    .await;

    // A clean shutdown leaves the pool at once; the twin takes the id over.
    let t0 = Instant::now();
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let took = wait_row(&url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
        r.is_some_and(|r| r["url"] == "ws://pod-a-twin.test:1318/ws" && r["ready"] == true)
    })
    .await;
    assert!(
        took.is_some(),
        "the twin never took over: {}",
        twin.log_text()
    );
    eprintln!(
        "SIGTERM → the twin registered in its place: {:?}",
        t0.elapsed()
    );
    assert_eq!(ls(&url).await.len(), 1);
    let c2 = granted(&url).await;
    assert_eq!(c2["url"], "ws://pod-a-twin.test:1318/ws", "{c2}");
    let (mut s, _) = enter(&twin, &c2).await;
    s.take_slices(2).await;
}

#[tokio::test]
async fn drain_takes_a_pod_out_of_claims_and_waits_for_its_session() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, _b) = tokio::join!(
        pod(
            &redis,
            "pod-a",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        ),
        pod(&redis, "pod-b", &[("--claim-ttl-s", "30")])
    );
    let c = granted(&url).await;
    assert_eq!(c["pod_id"], "pod-a", "most free seats first: {c}");
    let (mut s, _) = enter(&a, &c).await;
    s.take_slices(2).await;

    let admin = a.admin.expect("admin listener").to_string();
    let mut drain = Command::new(BIN)
        .args(["drain", "--admin-listen", &admin, "--wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drain");
    let out = wait_row(&url, "pod-a", Duration::from_secs(5), |r| {
        r.is_some_and(|r| r["ready"] == false)
    })
    .await;
    assert!(out.is_some(), "pod-a still ready while draining");
    assert_eq!(pool_ready(&a).await, 503);
    // pod-a has a free seat but takes no claims; pod-b's is the last.
    assert_eq!(granted(&url).await["pod_id"], "pod-b");
    assert_eq!(claim(&url).await.0, 3);
    s.take_slices(2).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        drain.try_wait().unwrap().is_none(),
        "drain --wait returned while a seat was held"
    );

    s.send(json!({"type": "bye"})).await;
    let status = tokio::time::timeout(Duration::from_secs(5), drain.wait())
        .await
        .expect("drain --wait did not return after the session ended")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let pods = ls(&url).await;
    let r = row(&pods, "pod-a").unwrap();
    assert_eq!(r["ready"], false, "{r}");
    assert_eq!(r["lockHeld"], false, "{r}");
}
