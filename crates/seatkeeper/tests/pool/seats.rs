//! A seat returns to the pool after bye, a reap, or an expired resume window.

use super::*;

#[tokio::test]
async fn bye_returns_the_seat_to_the_pool_within_a_heartbeat() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(BIN, &redis, "pod-a", &[]).await; // heartbeat every 333 ms
    for round in 0..2 {
        let c = granted(BIN, &url).await;
        let (mut s, _) = enter(&p, &c).await;
        s.take_slices(3).await;
        assert_eq!(claim(BIN, &url).await.0, 3);
        let t0 = Instant::now();
        s.send(json!({"type": "bye"})).await;
        let took = wait_row(BIN, &url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
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
    let p = pod(BIN, &redis, "pod-a", &[]).await; // grace 3 s, sampling 250 ms
    let c = granted(BIN, &url).await;
    let (mut s, _) = enter(&p, &c).await;
    s.stream_for(Duration::from_secs(1), true).await;
    // Stop reading: keep the socket open, never poll it again.
    let frozen_at = Instant::now();
    let took = wait_row(
        BIN,
        &url,
        "pod-a",
        Duration::from_secs(3) + 2 * SLACK,
        |r| free(r) == Some(1) && r.is_some_and(|r| r["lockHeld"] == false),
    )
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
    let again = granted(BIN, &url).await;
    assert_eq!(again["pod_id"], "pod-a");
    let (mut s2, _) = enter(&p, &again).await;
    s2.take_slices(2).await;
    drop(s);
}

#[tokio::test]
async fn a_resume_needs_no_seat_token_and_an_expired_window_returns_the_seat() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let p = pod(BIN, &redis, "pod-a", &[("--resume-window-s", "2")]).await;
    let c = granted(BIN, &url).await;
    let (mut s, ready) = enter(&p, &c).await;
    let last = s.take_slices(5).await;
    s.rst();
    let detached = wait_until(Duration::from_secs(5), || async {
        (p.sessions().await["sessions"][0]["state"] == "detached").then_some(())
    })
    .await;
    assert!(detached.is_some(), "{}", p.sessions().await);
    let r = ls(BIN, &url).await;
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
    assert_eq!(free(row(&ls(BIN, &url).await, "pod-a")), Some(0));

    // Lost again and never resumed: the window ends, the seat returns to
    // the pool, and the last resume token is a plain hello, which needs a
    // seat token.
    let resume2 = again["resume_token"].as_str().unwrap().to_owned();
    s2.rst();
    let t0 = Instant::now();
    let back = wait_row(BIN, &url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
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
    let (mut s3, fresh) = enter(&p, &granted(BIN, &url).await).await;
    assert_eq!(fresh["resumed"], false);
    s3.take_slices(2).await;
}
