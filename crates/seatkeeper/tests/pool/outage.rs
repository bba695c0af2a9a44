//! A Redis outage loses no session and double-grants no seat.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_session_and_double_grants_no_seat() {
    let mut redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(
        BIN,
        &redis,
        "pod-a",
        &[("--seats", "3"), ("--claim-ttl-s", "30")],
    )
    .await;
    // Three seats: a session that lives through the outage, one that ends
    // during it, and a claim made before it and never redeemed.
    let (mut s1, ready1) = enter(&p, &granted(BIN, &url).await).await;
    s1.take_slices(3).await;
    let (mut s0, _) = enter(&p, &granted(BIN, &url).await).await;
    s0.take_slices(2).await;
    let stale = granted(BIN, &url).await;
    assert_eq!(free(row(&ls(BIN, &url).await, "pod-a")), Some(0));

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
    let (code, v) = claim(BIN, &url).await;
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
    assert!(try_ls(BIN, &url).await.is_none());
    // Stay down past the pool TTL (1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !streamer.is_finished(),
        "the live session stopped streaming"
    );

    redis.restart();
    let t_restart = Instant::now();
    let back = wait_row(BIN, &url, "pod-a", Duration::from_secs(5), |r| r.is_some()).await;
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
    let pods = ls(BIN, &url).await;
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
        let c = granted(BIN, &url).await;
        assert_eq!(c["pod_id"], "pod-a");
        fresh.push(c);
    }
    assert_eq!(
        claim(BIN, &url).await,
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
    assert_eq!(free(row(&ls(BIN, &url).await, "pod-a")), Some(0));

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
    let back = wait_row(BIN, &url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
        free(r) == Some(1)
    })
    .await;
    assert!(back.is_some(), "{}", p.log_text());
    for s in &mut newcomers {
        s.take_slices(1).await;
    }
}
