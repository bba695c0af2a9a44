//! Labels, selectors, idempotent claim ids and the allocator's gate,
//! against a real redis-server.

#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::collections::BTreeMap;

use pods::{config, free_seats, Pod};
use seatkeeper_pool::{claim_with, ls, AllocatorConfig, ClaimError, ClaimRequest, PoolConfig};
use seatkeeper_testkit::{http::http, redis::RedisServer};
use tokio_util::sync::CancellationToken;

/// Claims carry a JSON body.
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

fn labelled(url: &str, id: &str, seats: u32, labels: &[(&str, &str)]) -> PoolConfig {
    let mut cfg = config(url, id, seats);
    cfg.labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    cfg
}

fn selector(terms: &[(&str, &str)]) -> ClaimRequest {
    ClaimRequest {
        selector: terms
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        claim_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_never_lands_elsewhere_and_no_match_is_no_free_seat() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _a = Pod::start(labelled(
        &url,
        "pod-a",
        2,
        &[("gpu", "5090"), ("region", "eu")],
    ))
    .await;
    let _b = Pod::start(labelled(
        &url,
        "pod-b",
        2,
        &[("gpu", "4090"), ("region", "eu")],
    ))
    .await;
    let _c = Pod::start(config(&url, "pod-c", 2)).await;

    let rows = ls(&url).await.unwrap();
    let labels: BTreeMap<_, _> = rows
        .iter()
        .map(|r| (r.pod_id.as_str(), &r.labels))
        .collect();
    assert_eq!(labels["pod-a"]["gpu"], "5090");
    assert_eq!(labels["pod-b"]["region"], "eu");
    assert!(labels["pod-c"].is_empty());

    // Twenty racers for the two 5090 seats: two win, both on pod-a.
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { claim_with(&url, &selector(&[("gpu", "5090")])).await })
        })
        .collect();
    let mut won = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            Ok(c) => won.push(c.pod_id),
            Err(ClaimError::NoFreeSeat) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, ["pod-a", "pod-a"]);
    // Other pods are free, yet a 5090 claim finds nothing.
    assert_eq!(free_seats(&url).await, 4);
    assert!(matches!(
        claim_with(&url, &selector(&[("gpu", "5090")])).await,
        Err(ClaimError::NoFreeSeat)
    ));
    assert!(matches!(
        claim_with(&url, &selector(&[("region", "us")])).await,
        Err(ClaimError::NoFreeSeat)
    ));
    assert!(matches!(
        claim_with(&url, &selector(&[("gpu", "4090"), ("region", "us")])).await,
        Err(ClaimError::NoFreeSeat)
    ));
    // All terms must match; region=eu is left only on pod-b.
    for _ in 0..2 {
        let c = claim_with(&url, &selector(&[("region", "eu")]))
            .await
            .unwrap();
        assert_eq!(c.pod_id, "pod-b");
    }
    assert!(matches!(
        claim_with(&url, &selector(&[("region", "eu")])).await,
        Err(ClaimError::NoFreeSeat)
    ));
    // No selector: the unlabelled pod.
    let c = claim_with(&url, &ClaimRequest::default()).await.unwrap();
    assert_eq!(c.pod_id, "pod-c");
    // A malformed selector is the caller's error, not an empty pool.
    let bad = claim_with(&url, &selector(&[("gpu", "a b")])).await;
    assert!(
        matches!(&bad, Err(e) if e.code() == "bad_request"),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_label_index_entry_never_routes_a_claim_to_the_wrong_pod() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _b = Pod::start(labelled(&url, "pod-b", 1, &[("gpu", "4090")])).await;
    // What a pod id that was SIGKILLed and came back with other labels
    // leaves behind: its id in an index set it no longer matches.
    let mut conn = pods::raw(&url).await;
    let set = "seatkeeper:pool:label:gpu=5090";
    let _: () = redis::cmd("SADD")
        .arg(set)
        .arg("pod-b")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        claim_with(&url, &selector(&[("gpu", "5090")])).await,
        Err(ClaimError::NoFreeSeat)
    ));
    let left: bool = redis::cmd("SISMEMBER")
        .arg(set)
        .arg("pod-b")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!left, "the stale entry was pruned");
    assert_eq!(free_seats(&url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_id_claims_once_however_often_it_is_sent() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _a = Pod::start(config(&url, "pod-a", 3)).await;
    let req = ClaimRequest {
        selector: BTreeMap::new(),
        claim_id: Some("router-7-request-000000000001".into()),
    };
    let first = claim_with(&url, &req).await.unwrap();
    let again = claim_with(&url, &req).await.unwrap();
    assert_eq!(first.seat_token, again.seat_token);
    assert_eq!(first.pod_id, again.pod_id);
    assert_eq!(free_seats(&url).await, 2, "one seat for one claim id");
    let other = claim_with(
        &url,
        &ClaimRequest {
            claim_id: Some("router-7-request-000000000002".into()),
            ..req.clone()
        },
    )
    .await
    .unwrap();
    assert_ne!(other.seat_token, first.seat_token);
    assert_eq!(free_seats(&url).await, 1);
    let short = ClaimRequest {
        claim_id: Some("short".into()),
        ..req
    };
    assert!(matches!(claim_with(&url, &short).await, Err(e) if e.code() == "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_wants_its_token_and_takes_a_selector() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let _a = Pod::start(labelled(&url, "pod-a", 1, &[("gpu", "5090")])).await;
    let _b = Pod::start(labelled(&url, "pod-b", 1, &[("gpu", "4090")])).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let mut cfg = AllocatorConfig::new(url.clone());
    cfg.token = Some("allocator-secret".into());
    let server = tokio::spawn(seatkeeper_pool::allocator(cfg, listener, shutdown.clone()));

    let body = r#"{"selector":{"gpu":"4090"}}"#;
    let (status, answer) = http(addr, "POST", "/claim", JSON, body).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains(r#""error":"unauthorized""#), "{answer}");
    let wrong = [JSON[0], ("Authorization", "Bearer allocator-secreT")];
    let (status, _) = http(addr, "POST", "/claim", &wrong, body).await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(
        free_seats(&url).await,
        2,
        "a refused request claims nothing"
    );

    let auth = &[JSON[0], ("Authorization", "Bearer allocator-secret")];
    let (status, answer) = http(addr, "POST", "/claim", auth, body).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["pod_id"], "pod-b");
    let (status, answer) = http(addr, "POST", "/claim", auth, body).await.unwrap();
    assert_eq!(
        (status, answer.as_str()),
        (503, r#"{"error":"no_free_seat"}"#)
    );
    let (status, answer) = http(addr, "POST", "/claim", auth, r#"{"selectors":{}}"#)
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains(r#""error":"bad_request""#));

    let (status, answer) = http(addr, "GET", "/healthz", &[], "").await.unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v, serde_json::json!({"ok": true, "redis_up": true}));
    let (_, metrics) = http(addr, "GET", "/metrics", &[], "").await.unwrap();
    for line in [
        "seatkeeper_pool_claims_total{outcome=\"granted\"} 1\n",
        "seatkeeper_pool_allocator_refusals_total{reason=\"unauthorized\"} 2\n",
        "seatkeeper_pool_allocator_refusals_total{reason=\"bad_request\"} 1\n",
        "seatkeeper_pool_allocator_refusals_total{reason=\"no_free_seat\"} 1\n",
        "seatkeeper_pool_claim_duration_seconds_count 2\n",
        "seatkeeper_pool_redis_up 1\n",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(!metrics.contains("redeems_refused"), "no pod-only figures");

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_rate_limits_each_client() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let mut cfg = AllocatorConfig::new(url.clone());
    cfg.rate_per_s = 0.5;
    cfg.burst = 3.0;
    let server = tokio::spawn(seatkeeper_pool::allocator(cfg, listener, shutdown.clone()));
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(http(addr, "POST", "/claim", JSON, "").await.unwrap().0);
    }
    // Three within the burst (no pod: no_free_seat), then refused.
    assert_eq!(codes, [503, 503, 503, 429, 429]);
    let (_, answer) = http(addr, "POST", "/claim", JSON, "").await.unwrap();
    assert!(answer.contains(r#""error":"rate_limited""#), "{answer}");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
