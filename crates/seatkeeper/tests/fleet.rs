//! The fleet from a user's side (issue 16): `serve --pod-label`, `pool
//! claim --selector`, the `pool` subcommands' exit codes and JSON error
//! lines, `/readyz` counting reserved seats, the allocator's token, and a
//! pod and the CLI through Redis Sentinel. Real binary, real
//! `redis-server` processes on loopback.

use std::time::{Duration, Instant};

use seatkeeper_testkit::{
    http::http,
    pool::allocator_with,
    proc::{run, run_json},
    redis::RedisServer,
    sentinel::SentinelSet,
    wait_until, Server,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

async fn pod(url: &str, id: &str, extra: &[&str]) -> Server {
    let advertise = format!("ws://{id}.test:1318/ws");
    let mut args = vec![
        "--pool",
        url,
        "--pod-id",
        id,
        "--advertise-url",
        &advertise,
        "--pool-ttl-s",
        "1",
    ];
    args.extend(extra);
    let s = Server::start(BIN, &args).await;
    let listed = wait_until(Duration::from_secs(10), || async {
        let (_, out, _) = run(BIN, &["pool", "ls", "--redis", url]).await;
        let rows: Vec<Value> = serde_json::from_str(out.trim()).ok()?;
        rows.iter()
            .any(|r| r["pod_id"] == id && r["ready"] == true)
            .then_some(())
    })
    .await;
    assert!(
        listed.is_some(),
        "{id} never listed ready: {}",
        s.log_text()
    );
    s
}

#[tokio::test]
async fn every_pool_subcommand_answers_with_one_json_line_and_a_documented_code() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // No pod: no free seat.
    let (code, v) = run_json(BIN, &["pool", "claim", "--redis", &url]).await;
    assert_eq!((code, v["error"].as_str()), (3, Some("no_free_seat")));
    let (code, v) = run_json(BIN, &["pool", "ls", "--redis", &url]).await;
    assert_eq!((code, v), (0, serde_json::json!([])));
    // Bad input: 2.
    for args in [
        &["pool", "claim", "--redis", "http://x"][..],
        &["pool", "ls", "--redis", "redis+sentinel://nohost/m"],
        &["pool", "claim", "--redis", &url, "--selector", "gpu"],
        &["pool", "claim", "--redis", &url, "--claim-id", "short"],
        &[
            "pool",
            "allocator",
            "--redis",
            "http://x",
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let (code, v) = run_json(BIN, args).await;
        assert_eq!(code, 2, "{args:?}: {v}");
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    // Redis down: 1, for each subcommand.
    redis.stop();
    for args in [
        &["pool", "claim", "--redis", &url][..],
        &["pool", "ls", "--redis", &url],
    ] {
        let (code, v) = run_json(BIN, args).await;
        assert_eq!(
            (code, v["error"].as_str()),
            (1, Some("pool_unavailable")),
            "{args:?}"
        );
    }
    // A listener that cannot bind: 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, v) = run_json(
        BIN,
        &["pool", "allocator", "--redis", &url, "--listen", &addr],
    )
    .await;
    assert_eq!((code, v["error"].as_str()), (1, Some("listen_failed")));
}

#[test]
fn the_allocator_refuses_a_wait_connection_cap_outside_1_to_1024() {
    // Refused before the listener binds (the port is taken: that would be
    // exit 1) and before Redis is dialled (nothing listens on port 1).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    const ENV: &str = "SEATKEEPER_ALLOCATOR_REDIS_WAIT_CONNECTIONS";
    for (flag, env) in [("0", None), ("1025", None), ("", Some("0"))] {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["pool", "allocator", "--redis", "redis://127.0.0.1:1/"])
            .args(["--listen", &addr])
            .env_remove(ENV);
        if !flag.is_empty() {
            cmd.args(["--redis-wait-connections", flag]);
        }
        if let Some(v) = env {
            cmd.env(ENV, v);
        }
        let out = cmd.output().expect("run seatkeeper");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{flag:?}/{env:?}: no JSON line ({e}): {stdout:?}"));
        assert_eq!(out.status.code(), Some(2), "{flag:?}/{env:?}: {v}");
        assert_eq!(v["error"], "bad_request", "{v}");
        let got = if flag.is_empty() { env.unwrap() } else { flag };
        let want = format!("--redis-wait-connections must be 1..=1024, got {got}");
        assert_eq!(v["message"], want.as_str(), "{v}");
    }
}

#[tokio::test]
async fn the_allocator_starts_with_the_wait_connection_cap_it_was_given() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let port = url.rsplit(':').next().unwrap();
    let log = std::env::temp_dir().join(format!("seatkeeper-alloc-cap-{port}.log"));
    let (addr, _alloc) =
        allocator_with(BIN, &url, &["--redis-wait-connections", "2"], Some(&log)).await;
    let (code, body) = http(addr, "GET", "/healthz", &[], "").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("wait_connections=2"), "{text}");
}

#[tokio::test]
async fn pod_labels_are_listed_and_a_selector_claims_only_on_matching_pods() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _a = pod(
        &url,
        "pod-a",
        &["--pod-label", "gpu=5090", "--pod-label", "region=eu"],
    )
    .await;
    let _b = pod(&url, "pod-b", &[]).await;
    let (_, rows) = run_json(BIN, &["pool", "ls", "--redis", &url]).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows[0]["labels"],
        serde_json::json!({"gpu": "5090", "region": "eu"})
    );
    assert_eq!(rows[1]["labels"], serde_json::json!({}));
    // The operator's page shows the same fleet, labels and all.
    let (code, state) = _a.admin_request("GET", "/admin/state", "").await.unwrap();
    assert_eq!(code, 200);
    let state: Value = serde_json::from_str(&state).unwrap();
    let fleet = state["fleet"]
        .as_array()
        .expect("fleet on the operator page");
    assert_eq!(fleet.len(), 2, "{state}");
    assert_eq!(fleet[0]["labels"]["gpu"], "5090");

    let (code, v) = run_json(
        BIN,
        &["pool", "claim", "--redis", &url, "--selector", "gpu=4090"],
    )
    .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (3, Some("no_free_seat")),
        "pod-b is free but unlabelled"
    );
    let sel = "gpu=5090,region=eu";
    let (code, v) = run_json(BIN, &["pool", "claim", "--redis", &url, "--selector", sel]).await;
    assert_eq!((code, v["pod_id"].as_str()), (0, Some("pod-a")));
    let (code, _) = run_json(BIN, &["pool", "claim", "--redis", &url, "--selector", sel]).await;
    assert_eq!(code, 3, "pod-a's one seat is reserved");
}

#[tokio::test]
async fn readyz_is_503_while_the_only_seat_is_reserved_by_an_unredeemed_claim() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let p = pod(&url, "pod-r", &["--claim-ttl-s", "2"]).await;
    assert_eq!(p.get("/readyz").await.unwrap().0, 200);
    let (code, _) = run_json(BIN, &["pool", "claim", "--redis", &url]).await;
    assert_eq!(code, 0);
    let busy = wait_until(Duration::from_secs(5), || async {
        (p.get("/readyz").await.ok()?.0 == 503).then_some(())
    })
    .await;
    assert!(
        busy.is_some(),
        "/readyz stayed 200 with its only seat reserved"
    );
    let (_, body) = p.get("/readyz").await.unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["seats"]["reserved"], 1, "{body}");
    assert_eq!(body["seats"]["held"], 0, "{body}");
    assert_eq!(
        p.get("/readyz/pool").await.unwrap().0,
        200,
        "still a pool member"
    );
    // The claim lapses: ready again.
    let back = wait_until(Duration::from_secs(8), || async {
        (p.get("/readyz").await.ok()?.0 == 200).then_some(())
    })
    .await;
    assert!(back.is_some(), "/readyz not 200 after the claim lapsed");
}

#[tokio::test]
async fn the_allocator_answers_401_without_its_token_and_200_with_it() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let p = pod(&url, "pod-t", &[]).await;
    let log = std::env::temp_dir().join(format!("seatkeeper-alloc-{}.log", p.addr.port()));
    let (addr, _alloc) = allocator_with(BIN, &url, &["--token", "t0ps3cret"], Some(&log)).await;
    let (code, body) = http(addr, "POST", "/claim", &[], "").await.unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"error\":\"unauthorized\""), "{body}");
    let bearer = [("Authorization", "Bearer t0ps3cret")];
    let (code, body) = http(addr, "POST", "/claim", &bearer, "").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"pod_id\":\"pod-t\""), "{body}");

    // Redis goes: the allocator says so in its health, its gauge and its log.
    redis.stop();
    let down = wait_until(Duration::from_secs(5), || async {
        let (_, body) = http(addr, "GET", "/healthz", &[], "").await.ok()?;
        body.contains("\"redis_up\":false").then_some(())
    })
    .await;
    assert!(
        down.is_some(),
        "/healthz still says redis_up after Redis stopped"
    );
    let (_, metrics) = http(addr, "GET", "/metrics", &[], "").await.unwrap();
    assert!(
        metrics.contains("seatkeeper_pool_redis_up 0\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("seatkeeper_pool_registrations_total"),
        "pod-only figure"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    for line in [
        "pool allocator listening",
        "seat pool Redis reachable",
        "seat pool Redis unreachable",
    ] {
        assert!(text.contains(line), "{line:?} not logged:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_and_the_cli_find_the_master_through_sentinel_and_follow_a_failover() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let p = pod(&url, "pod-s", &["--pod-label", "ha=yes", "--seats", "2"]).await;
    let log = std::env::temp_dir().join(format!("seatkeeper-alloc-{}.log", p.addr.port()));
    let (alloc, _child) = allocator_with(BIN, &url, &[], Some(&log)).await;
    set.kill(0);
    let t0 = Instant::now();
    let relisted = wait_until(Duration::from_secs(15), || async {
        (set.master_port() == Some(set.ports[1])).then_some(())?;
        let (_, out, _) = run(BIN, &["pool", "ls", "--redis", &url]).await;
        let rows: Vec<Value> = serde_json::from_str(out.trim()).ok()?;
        rows.iter()
            .any(|r| r["pod_id"] == "pod-s" && r["ready"] == true)
            .then_some(())
    })
    .await;
    assert!(relisted.is_some(), "pod not listed through the new master");
    eprintln!(
        "FIGURE: pod listed through the promoted replica {:?} after the kill",
        t0.elapsed()
    );
    let (code, v) = run_json(
        BIN,
        &["pool", "claim", "--redis", &url, "--selector", "ha=yes"],
    )
    .await;
    assert_eq!((code, v["pod_id"].as_str()), (0, Some("pod-s")), "{v}");
    // The allocator followed the failover too.
    let body = r#"{"selector":{"ha":"yes"}}"#;
    let served = wait_until(Duration::from_secs(10), || async {
        let (code, answer) = http(alloc, "POST", "/claim", &[], body).await.ok()?;
        (code == 200 && answer.contains("\"pod_id\":\"pod-s\"")).then_some(())
    })
    .await;
    let _ = std::fs::remove_file(&log);
    assert!(
        served.is_some(),
        "the allocator did not serve claims after the failover"
    );
}
