//! Claims: exactly as many grants as seats, the allocator over HTTP, refused tokens, lapsed claims.

use super::*;

#[tokio::test]
async fn twenty_concurrent_claims_for_two_seats_grant_exactly_two() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, b) = tokio::join!(
        pod(BIN, &redis, "pod-a", &[]),
        pod(BIN, &redis, "pod-b", &[])
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let url = url.clone();
        set.spawn(async move { claim(BIN, &url).await });
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
    assert!(ls(BIN, &url).await.iter().all(|p| p["seats_free"] == 0));

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
    let pods = ls(BIN, &url).await;
    assert!(
        pods.iter()
            .all(|p| p["seats_free"] == 0 && p["lockHeld"] == true),
        "{pods:?}"
    );
    assert_eq!(claim(BIN, &url).await.0, 3, "still full");
}

#[tokio::test]
async fn the_allocator_serves_claims_over_http_200_then_503() {
    let mut redis = redis_or_skip!();
    let url = redis.url();
    let (_a, _b) = tokio::join!(
        pod(BIN, &redis, "pod-a", &[]),
        pod(BIN, &redis, "pod-b", &[("--claim-ttl-s", "30")])
    );
    let (addr, _allocator) = allocator(BIN, &url).await;

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
            BIN,
            &redis,
            "pod-a",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        ),
        pod(
            BIN,
            &redis,
            "pod-b",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        )
    );
    let c = granted(BIN, &url).await;
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
    let pods = ls(BIN, &url).await;
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
    let p = pod(BIN, &redis, "pod-full", &[("--claim-ttl-s", "30")]).await;
    let c = granted(BIN, &url).await;
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
    let p = pod(BIN, &redis, "pod-a", &[]).await; // --claim-ttl-s 2
    let t0 = Instant::now();
    let first = granted(BIN, &url).await;
    assert_eq!(free(row(&ls(BIN, &url).await, "pod-a")), Some(0));
    let (code, v) = claim(BIN, &url).await;
    assert_eq!((code, v), (3, json!({"error": "no_free_seat"})));

    let back = wait_row(BIN, &url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
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
    let second = granted(BIN, &url).await;
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
