//! The seat pool against a real redis-server, the happy paths:
//! registration and `ls`, racing claims, token checks, lapses, the
//! allocator over HTTP, and the claims/s benchmark.

// Each test binary uses its own part of the helpers.
#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pods::{config, free_seats, wait_until, Pod, HEARTBEAT_SLACK};
use seatkeeper_pool::{claim, ls, Claim, ClaimError, PoolClient, Refusal, TokenProblem};
use seatkeeper_testkit::{http::http, redis::RedisServer};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_register_and_ls_shows_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let _b = Pod::start(config(&url, "pod-b", 3)).await;

    let pods = ls(&url).await.unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0].pod_id, "pod-a");
    assert_eq!(pods[0].url, "ws://pod-a.test:1318/ws");
    assert_eq!((pods[0].seats_total, pods[0].seats_free), (1, 1));
    assert_eq!((pods[1].seats_total, pods[1].seats_free), (3, 3));
    assert!(pods
        .iter()
        .all(|p| p.ready && !p.lock_held && p.age_ms < 5_000));

    let json = serde_json::to_value(&pods[0]).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "age_ms",
            "labels",
            "lockHeld",
            "pod_id",
            "ready",
            "seats_free",
            "seats_total",
            "url"
        ]
    );
    assert_eq!(json["labels"], serde_json::json!({}));

    // A draining pod stays listed but is not ready and gets no claims.
    a.set_draining(true);
    wait_until(Duration::from_secs(2), "pod-a not ready", || async {
        !ls(&url).await.unwrap()[0].ready
    })
    .await;
    for _ in 0..3 {
        assert_eq!(claim(&url).await.unwrap().pod_id, "pod-b");
    }
    assert!(matches!(claim(&url).await, Err(ClaimError::NoFreeSeat)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_racing_claims_for_two_seats_get_exactly_two() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let b = Pod::start(config(&url, "pod-b", 1)).await;
    let c = Pod::start(config(&url, "pod-c", 1)).await;
    c.set_draining(true);
    wait_until(Duration::from_secs(2), "pod-c not ready", || async {
        free_seats(&url).await == 3 && !ls(&url).await.unwrap()[2].ready
    })
    .await;

    let racers: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { claim(&url).await })
        })
        .collect();
    let mut granted: Vec<Claim> = Vec::new();
    let mut refused = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(c) => granted.push(c),
            Err(ClaimError::NoFreeSeat) => refused += 1,
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    assert_eq!((granted.len(), refused), (2, 18));
    let pods: HashSet<_> = granted.iter().map(|c| c.pod_id.as_str()).collect();
    assert_eq!(pods, HashSet::from(["pod-a", "pod-b"]));
    assert_ne!(granted[0].seat_token, granted[1].seat_token);
    assert!(granted.iter().all(|c| c.seat_token.len() == 64));
    assert!(granted.iter().all(|c| c.expires_in_s == 30.0));

    // The claim line is exactly the contract's four fields.
    let line = serde_json::to_value(&granted[0]).unwrap();
    assert_eq!(line.as_object().unwrap().len(), 4);

    // Each token is good on its own pod, once.
    let mut leases = Vec::new();
    for claim in &granted {
        let pod = if claim.pod_id == "pod-a" { &a } else { &b };
        leases.push(pod.agent.redeem(&claim.seat_token).await.unwrap());
    }
    assert!(leases.iter().all(|l| l.slot() == 0));
    assert_eq!(
        free_seats(&url).await,
        1,
        "only draining pod-c has a free seat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pod_missing_and_reused_tokens_are_refused() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let b = Pod::start(config(&url, "pod-b", 1)).await;

    let granted = claim(&url).await.unwrap();
    let (mine, other) = if granted.pod_id == "pod-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let bad = |r: Result<_, Refusal>| match r {
        Err(refusal @ Refusal::BadSeatToken(problem)) => {
            assert_eq!(refusal.code(), "bad_seat_token");
            problem
        }
        other => panic!("expected bad_seat_token, got {other:?}"),
    };

    assert_eq!(
        bad(other.agent.redeem(&granted.seat_token).await),
        TokenProblem::Unknown
    );
    assert_eq!(bad(mine.agent.redeem("").await), TokenProblem::Missing);
    assert_eq!(
        bad(mine.agent.redeem("short").await),
        TokenProblem::Malformed
    );
    let forged = "0".repeat(64);
    assert_eq!(bad(mine.agent.redeem(&forged).await), TokenProblem::Unknown);

    let lease = mine.agent.redeem(&granted.seat_token).await.unwrap();
    assert_eq!(
        bad(mine.agent.redeem(&granted.seat_token).await),
        TokenProblem::Used
    );
    drop(lease);
    // Released: the token is gone for good.
    wait_until(HEARTBEAT_SLACK, "seat back", || async {
        free_seats(&url).await == 2
    })
    .await;
    assert_eq!(
        bad(mine.agent.redeem(&granted.seat_token).await),
        TokenProblem::Unknown
    );

    let m = mine.agent.metrics();
    assert_eq!(m.redeemed.load(Ordering::Relaxed), 1);
    assert_eq!(m.redeem_bad_token.load(Ordering::Relaxed), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unredeemed_claim_lapses_and_its_seat_returns() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let mut cfg = config(&url, "pod-a", 1);
    cfg.claim_ttl = Duration::from_secs(1);
    let a = Pod::start(cfg).await;

    let first = claim(&url).await.unwrap();
    assert_eq!(first.expires_in_s, 1.0);
    assert!(matches!(claim(&url).await, Err(ClaimError::NoFreeSeat)));
    assert_eq!(free_seats(&url).await, 0);

    let took = wait_until(Duration::from_secs(3), "claim lapsed", || async {
        free_seats(&url).await == 1
    })
    .await;
    assert!(
        took > Duration::from_millis(700),
        "lapsed too early: {took:?}"
    );

    let second = claim(&url).await.unwrap();
    assert_eq!(second.pod_id, "pod-a");
    assert!(matches!(
        a.agent.redeem(&first.seat_token).await,
        Err(Refusal::BadSeatToken(
            TokenProblem::Unknown | TokenProblem::Expired
        ))
    ));
    let lease = a.agent.redeem(&second.seat_token).await.unwrap();
    wait_until(Duration::from_secs(2), "lapse counted", || async {
        a.agent.metrics().lapsed.load(Ordering::Relaxed) == 1
    })
    .await;
    drop(lease);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_serves_claims_over_http() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _a = Pod::start(config(&url, "pod-a", 1)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let (url, shutdown) = (url.clone(), shutdown.clone());
        async move {
            seatkeeper_pool::allocator(
                seatkeeper_pool::AllocatorConfig::new(url),
                listener,
                shutdown,
            )
            .await
        }
    });

    let (status, body) = http(addr, "POST", "/claim", &[], "").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let claim: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut keys: Vec<_> = claim.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["expires_in_s", "pod_id", "seat_token", "url"]);
    assert_eq!(claim["pod_id"], "pod-a");

    let (status, body) = http(addr, "POST", "/claim", &[], "").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"error":"no_free_seat"}"#)
    );
    let (status, body) = http(addr, "GET", "/nope", &[], "").await.unwrap();
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not_found"}"#));
    let (status, _) = http(addr, "GET", "/claim", &[], "").await.unwrap();
    assert_eq!(status, 405);
    let (status, body) = http(addr, "GET", "/metrics", &[], "").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("seatkeeper_pool_claims_total{outcome=\"granted\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("seatkeeper_pool_claims_total{outcome=\"no_free_seat\"} 1\n"));

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p seatkeeper-pool --test claims -- --ignored --nocapture"]
async fn claims_per_second() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    for (pods, seats) in [(20, 100), (200, 1)] {
        let mut fleet = Vec::new();
        for i in 0..pods {
            // The default TTL: a 1 s TTL cannot ride out a Redis saturated
            // by the benchmark itself.
            let mut cfg = config(&url, &format!("bench-{pods}-{i:03}"), seats);
            cfg.ttl = Duration::from_secs(5);
            fleet.push(Pod::start(cfg).await);
        }
        let client = PoolClient::new(&url).unwrap();
        let total = pods * seats;
        let serial_n = total / 2;
        let start = std::time::Instant::now();
        for _ in 0..serial_n {
            client.claim().await.unwrap();
        }
        let serial = start.elapsed();
        let workers = 32;
        let per_worker = (total - serial_n) / workers;
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..per_worker {
                        client.claim().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let parallel = start.elapsed();
        let parallel_n = per_worker * workers;
        println!(
            "{pods} pods x {seats} seats: {:.0} claims/s one at a time ({:.0} us each), \
             {:.0} claims/s with {workers} in flight",
            f64::from(serial_n) / serial.as_secs_f64(),
            serial.as_secs_f64() * 1e6 / f64::from(serial_n),
            f64::from(parallel_n) / parallel.as_secs_f64()
        );
        for pod in &fleet {
            pod.shutdown.cancel();
            pod.agent.stopped().await;
        }
    }
}

#[test]
fn fleet_doc_quotes_the_claim_script() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FLEET.md"))
        .expect("docs/FLEET.md");
    assert!(
        doc.contains(seatkeeper_pool::scripts::CLAIM_LUA.trim_end()),
        "docs/FLEET.md must quote crates/pool/src/lua/claim.lua verbatim"
    );
}
