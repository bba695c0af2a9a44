//! Pods register, leave when killed or twinned, and drain.

use super::*;

#[tokio::test]
async fn pods_register_and_pool_ls_shows_their_figures() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let (a, b, _c) = tokio::join!(
        pod(BIN, &redis, "pod-a", &[]),
        pod(BIN, &redis, "pod-b", &[("--seats", "2")]),
        pod(BIN, &redis, "pod-c", &[("--pool-ttl-s", "2")]),
    );
    let pods = ls(BIN, &url).await;
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
    let c1 = granted(BIN, &url).await;
    assert_eq!(c1["pod_id"], "pod-b", "{c1}");
    assert_eq!(c1["url"], advertised("pod-b"), "{c1}");
    assert_eq!(c1["expires_in_s"].as_f64(), Some(2.0), "{c1}");
    let pods = ls(BIN, &url).await;
    let rb = row(&pods, "pod-b").unwrap();
    assert_eq!(rb["seats_free"], 1, "a claim reserves: {rb}");
    assert_eq!(rb["lockHeld"], false, "claimed is not held: {rb}");

    let (mut s, _) = enter(&b, &c1).await;
    s.take_slices(3).await;
    let pods = ls(BIN, &url).await;
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
async fn a_sigkilled_pod_leaves_the_pool_within_its_ttl() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let ttl = [("--pool-ttl-s", "2")];
    let (a, _b) = tokio::join!(
        pod(BIN, &redis, "pod-a", &ttl),
        pod(BIN, &redis, "pod-b", &ttl)
    );
    assert_eq!(ls(BIN, &url).await.len(), 2);
    let pid = proc::serve_pid(a.addr).expect("pod-a's pid in /proc");
    let t0 = Instant::now();
    let status = StdCommand::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let gone = wait_row(BIN, &url, "pod-a", Duration::from_secs(2) + SLACK, |r| {
        r.is_none()
    })
    .await;
    let took = t0.elapsed();
    assert!(gone.is_some(), "pod-a still listed {took:?} after SIGKILL");
    eprintln!("SIGKILL → pod gone from pool ls: {took:?} (pool TTL 2 s)");
    let pods = ls(BIN, &url).await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["pod_id"], "pod-b");
    // Claims only find the live pod now.
    assert_eq!(granted(BIN, &url).await["pod_id"], "pod-b");
    assert_eq!(claim(BIN, &url).await.0, 3);
}

#[tokio::test]
async fn a_second_process_with_one_pod_id_waits_until_the_first_leaves() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let mut first = pod(BIN, &redis, "pod-a", &[]).await;
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
    let pods = ls(BIN, &url).await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["url"], advertised("pod-a"), "{pods:?}");
    // A claim names the first process's seat; the twin cannot admit it.
    let c = granted(BIN, &url).await;
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
    let took = wait_row(BIN, &url, "pod-a", Duration::from_secs(1) + SLACK, |r| {
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
    assert_eq!(ls(BIN, &url).await.len(), 1);
    let c2 = granted(BIN, &url).await;
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
            BIN,
            &redis,
            "pod-a",
            &[("--seats", "2"), ("--claim-ttl-s", "30")]
        ),
        pod(BIN, &redis, "pod-b", &[("--claim-ttl-s", "30")])
    );
    let c = granted(BIN, &url).await;
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
    let out = wait_row(BIN, &url, "pod-a", Duration::from_secs(5), |r| {
        r.is_some_and(|r| r["ready"] == false)
    })
    .await;
    assert!(out.is_some(), "pod-a still ready while draining");
    assert_eq!(pool_ready(&a).await, 503);
    // pod-a has a free seat but takes no claims; pod-b's is the last.
    assert_eq!(granted(BIN, &url).await["pod_id"], "pod-b");
    assert_eq!(claim(BIN, &url).await.0, 3);
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
    let pods = ls(BIN, &url).await;
    let r = row(&pods, "pod-a").unwrap();
    assert_eq!(r["ready"], false, "{r}");
    assert_eq!(r["lockHeld"], false, "{r}");
}
