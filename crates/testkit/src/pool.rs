//! Pool mode under test: pods (`serve --pool`) on a throwaway Redis, the
//! pool CLI as child processes, and the session steps pool tests share.
//! Every function that runs the binary takes its path (`bin`).

use std::{
    net::SocketAddr,
    path::Path,
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tokio::process::Command;

use crate::{
    http::http, proc::run, redis::RedisServer as Redis, wait_until, Client, Event, Server,
};

/// Flags every pod gets unless the test overrides them.
pub const POD_DEFAULTS: &[(&str, &str)] = &[
    ("--seats", "1"),
    ("--pool-ttl-s", "1"),
    ("--claim-ttl-s", "2"),
    ("--dead-client-stall-s", "3"),
    ("--watchdog-interval-ms", "250"),
    ("--resume-window-s", "0"),
];

/// The URL a pod advertises (never dialled: the tests reach pods by address).
pub fn advertised(id: &str) -> String {
    format!("ws://{id}.test:1318/ws")
}

/// Starts `serve` in pool mode and waits until `/readyz/pool` says it is
/// registered and `pool ls` shows it ready (claimable). The two can differ
/// for up to one heartbeat after start: the first heartbeat may go out
/// before the server exists and publish `ready: 0` (reported to the lead).
pub async fn pod(bin: &str, redis: &Redis, id: &str, overrides: &[(&str, &str)]) -> Server {
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
    let s = Server::start(bin, &args).await;
    let up = wait_until(Duration::from_secs(10), || async {
        (pool_ready(&s).await == 200).then_some(())
    })
    .await;
    assert!(up.is_some(), "{id} never registered: {}", s.log_text());
    let t0 = Instant::now();
    let listed = wait_row(bin, &url, id, Duration::from_secs(10), |r| {
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

/// The status of `/readyz/pool` (0 when the request fails).
pub async fn pool_ready(s: &Server) -> u16 {
    s.get("/readyz/pool").await.map_or(0, |(code, _)| code)
}

// The pool CLI (`pool claim`, `pool ls`, `pool allocator`), as child processes.

/// Starts `pool allocator` on a free port; waits for its `/healthz`.
pub async fn allocator(bin: &str, url: &str) -> (SocketAddr, tokio::process::Child) {
    allocator_with(bin, url, &[], None).await
}

/// Like [`allocator`], with `extra` flags and its stderr into `log`; waits
/// until `/healthz` answers 200 with Redis up.
pub async fn allocator_with(
    bin: &str,
    url: &str,
    extra: &[&str],
    log: Option<&Path>,
) -> (SocketAddr, tokio::process::Child) {
    for _ in 0..5 {
        let addr: SocketAddr = format!("127.0.0.1:{}", crate::server::free_port())
            .parse()
            .expect("addr");
        let stderr = log.map_or_else(Stdio::null, |p| {
            Stdio::from(std::fs::File::create(p).expect("allocator log"))
        });
        let mut child = Command::new(bin)
            .args(["pool", "allocator", "--redis", url, "--listen"])
            .arg(addr.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn allocator");
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = loop {
            if child.try_wait().ok().flatten().is_some() {
                break false; // exited: the port was taken
            }
            let healthy = http(addr, "GET", "/healthz", &[], "").await;
            if healthy
                .is_ok_and(|(status, body)| status == 200 && body.contains("\"redis_up\":true"))
            {
                break child.try_wait().ok().flatten().is_none();
            }
            assert!(
                Instant::now() < deadline,
                "the allocator did not come up healthy on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if up {
            return (addr, child);
        }
    }
    panic!("the allocator could not start on a free port");
}

/// `pool claim`: exit code and its JSON line.
pub async fn claim(bin: &str, url: &str) -> (i32, Value) {
    let (code, out, err) = run(bin, &["pool", "claim", "--redis", url]).await;
    let line = out.trim();
    let v = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("pool claim printed no JSON ({e}): {out:?} / {err}"));
    assert_eq!(line.lines().count(), 1, "one JSON line: {out:?}");
    (code, v)
}

/// A granted claim, checked against the contract's shape.
pub async fn granted(bin: &str, url: &str) -> Value {
    let (code, v) = claim(bin, url).await;
    if code != 0 {
        panic!("claim refused: {v}; pool ls: {:?}", try_ls(bin, url).await);
    }
    check_claim(&v);
    v
}

/// Checks a granted claim against the contract's shape.
pub fn check_claim(v: &Value) {
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

/// A claim's seat token.
pub fn token(claim: &Value) -> &str {
    claim["seat_token"].as_str().expect("seat_token")
}

/// `pool ls`, or `None` when it fails (Redis down).
pub async fn try_ls(bin: &str, url: &str) -> Option<Vec<Value>> {
    let (code, out, _) = run(bin, &["pool", "ls", "--redis", url]).await;
    if code != 0 {
        return None;
    }
    let v: Value = serde_json::from_str(out.trim()).ok()?;
    v.as_array().cloned()
}

/// `pool ls`, which must succeed.
pub async fn ls(bin: &str, url: &str) -> Vec<Value> {
    try_ls(bin, url).await.expect("pool ls failed")
}

/// The row of pod `id`.
pub fn row<'a>(pods: &'a [Value], id: &str) -> Option<&'a Value> {
    pods.iter().find(|p| p["pod_id"] == id)
}

/// Waits until `id`'s row satisfies `ok`; returns how long it took.
pub async fn wait_row(
    bin: &str,
    url: &str,
    id: &str,
    limit: Duration,
    ok: impl Fn(Option<&Value>) -> bool,
) -> Option<Duration> {
    let t0 = Instant::now();
    wait_until(limit, || async {
        let pods = try_ls(bin, url).await?;
        ok(row(&pods, id)).then_some(())
    })
    .await
    .map(|()| t0.elapsed())
}

/// A row's free seats.
pub fn free(r: Option<&Value>) -> Option<u64> {
    r.and_then(|r| r["seats_free"].as_u64())
}

// Sessions on a pod.

/// A hello with `extra` (e.g. a seat token) on `pod`; the client and its
/// first reply.
pub async fn hello(pod: &Server, extra: Value) -> (Client, Value) {
    let mut c = Client::connect(pod.addr).await;
    let reply = c.hello(extra).await;
    (c, reply)
}

/// A hello with a claim's token that must be admitted.
pub async fn enter(pod: &Server, claim: &Value) -> (Client, Value) {
    let (c, ready) = hello(pod, json!({"seat_token": token(claim)})).await;
    assert_eq!(ready["type"], "ready", "{ready}\n{}", pod.log_text());
    (c, ready)
}

/// A hello that must be refused with `error` `code` and close `close`.
pub async fn refused(pod: &Server, extra: Value, code: &str, close: u16) {
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
pub async fn keep_streaming(
    mut c: Client,
    stop: Arc<AtomicBool>,
) -> Result<(u64, Duration, Client), String> {
    let (mut n, mut last, mut gap) = (0u64, Instant::now(), Duration::ZERO);
    while !stop.load(Ordering::SeqCst) {
        match c.next(Duration::from_secs(3)).await {
            Some(Event::Slice(h, ..)) => {
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

/// Seats held, from `/sessions`.
pub async fn held(pod: &Server) -> u64 {
    pod.sessions().await["seats"]["held"]
        .as_u64()
        .expect("seats.held")
}

/// A sample of `/metrics` (-1 when absent).
pub async fn metric(pod: &Server, sample: &str) -> f64 {
    pod.metric(sample).await.unwrap_or(-1.0)
}

/// Redeems refused for a bad seat token.
pub const BAD_TOKEN_REFUSALS: &str =
    "seatkeeper_pool_redeems_refused_total{code=\"bad_seat_token\"}";
/// Redeems refused while the pool was unreachable.
pub const UNAVAILABLE_REFUSALS: &str =
    "seatkeeper_pool_redeems_refused_total{code=\"pool_unavailable\"}";
