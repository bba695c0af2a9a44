//! The invariant the soak checks while it runs, and the warm-up before the
//! baseline is taken.

use super::*;

/// Every 200 ms: seats held equal sessions listed (give or take hellos in
/// flight), never over `--seats`, and `lockHeld` exactly while one is held.
pub(crate) async fn monitor(s: Arc<Soak>) -> (u64, u64, u64) {
    let (mut samples, mut max_held, mut starting) = (0, 0, 0);
    while s.running() {
        let answered = s.hellos_answered.load(Relaxed);
        let got = s.server.get("/sessions").await;
        let in_flight = s.hellos_sent.load(Relaxed) - answered;
        let v: Value = match got.map(|(_, b)| serde_json::from_str(&b)) {
            Ok(Ok(v)) => v,
            other => {
                s.fail(format!("GET /sessions: {other:?}"));
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        samples += 1;
        let held = v["seats"]["held"].as_u64().unwrap_or(u64::MAX);
        let listed = v["sessions"].as_array().map_or(0, |a| a.len() as u64);
        max_held = max_held.max(held);
        if held != listed {
            starting += 1;
        }
        let states_ok = v["sessions"].as_array().is_some_and(|a| {
            a.iter().all(|x| {
                ["streaming", "detached", "closing"].contains(&x["state"].as_str().unwrap_or(""))
            })
        });
        if v["seats"]["total"] != SEATS
            || held > SEATS
            || listed > held
            || held - listed > in_flight
            || v["lockHeld"] != (held > 0)
            || !states_ok
        {
            s.fail(format!(
                "seat invariant broken ({in_flight} hellos in flight): {v}"
            ));
        }
        sleep(Duration::from_millis(200)).await;
    }
    (samples, max_held, starting)
}

/// A few ordinary sessions and requests, so that what the server keeps for
/// good (thread stacks, pools, the allocator's first arenas) is in the baseline.
pub(crate) async fn warm_up(server: &Server) {
    for _ in 0..3 {
        let mut c = Client::connect(server.addr).await;
        let ready = c.hello(json!({})).await;
        assert_eq!(ready["type"], "ready", "warm-up: {ready}");
        c.stream_for(Duration::from_millis(500), true).await;
        c.send(json!({"type": "bye"})).await;
        c.until_closed(PATIENCE).await;
    }
    for path in ["/healthz", "/metrics", "/sessions", "/"] {
        server.get(path).await.expect("warm-up GET");
    }
    assert!(server.wait_released(PATIENCE).await.is_some());
    sleep(Duration::from_secs(1)).await;
}
