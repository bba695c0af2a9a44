//! The seat pool against a real redis-server, when things go wrong:
//! ended sessions, lost releases, stopped and killed pods, a Redis restart,
//! and a stale holder after a failover.

// Each test binary uses its own part of the helpers.
#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::sync::atomic::Ordering;
use std::time::Duration;

use pods::{
    claim_after_failover, config, free_seats, raw, wait_until, Pod, FAILED_OVER_TOKEN,
    HEARTBEAT_SLACK, SEATS_A, TTL,
};
use seatkeeper_pool::{claim, ls, ClaimError, PodAgent, PodStatus, Refusal, TokenProblem};
use seatkeeper_testkit::redis::RedisServer;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lease_returns_its_seat_within_a_heartbeat() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;

    let lease = a
        .agent
        .redeem(&claim(&url).await.unwrap().seat_token)
        .await
        .unwrap();
    let row = &ls(&url).await.unwrap()[0];
    assert!(row.lock_held);
    assert_eq!(row.seats_free, 0);
    assert!(matches!(claim(&url).await, Err(ClaimError::NoFreeSeat)));

    drop(lease);
    wait_until(HEARTBEAT_SLACK, "seat back after drop", || async {
        claim(&url).await.is_ok()
    })
    .await;
    // The release script usually frees it; a heartbeat that ran between
    // the drop and the release message frees it by re-sync instead.
    // The count follows the script's answer, a moment after Redis freed it.
    let m = a.agent.metrics();
    let freed = || m.released.load(Ordering::Relaxed) + m.resynced.load(Ordering::Relaxed);
    wait_until(HEARTBEAT_SLACK, "the release counted", || async {
        freed() >= 1
    })
    .await;
    assert_eq!(freed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_release_is_repaired_by_the_heartbeat() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 2)).await;

    // A held seat in Redis that no live lease owns: what a release lost on
    // a full queue (or a lease dropped while Redis was away) leaves behind.
    let mut conn = raw(&url).await;
    let _: () = redis::cmd("HSET")
        .arg("seatkeeper:pool:pod:pod-a:seats")
        .arg(1)
        .arg("h:7:0:")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(free_seats(&url).await, 1);
    wait_until(HEARTBEAT_SLACK, "orphan seat freed", || async {
        free_seats(&url).await == 2
    })
    .await;
    assert_eq!(a.agent.metrics().resynced.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pod_leaves_at_once_and_a_killed_one_within_its_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();

    // Clean stop: the pod removes itself.
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    a.shutdown.cancel();
    a.agent.stopped().await;
    assert!(ls(&url).await.unwrap().is_empty());

    // Killed: its runtime vanishes mid-flight, no goodbye. The record
    // expires within the TTL and claims stop seeing it.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = config(&url, "pod-k", 1);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ready = PodStatus {
                seats_held: 0,
                engine_ready: true,
                draining: false,
            };
            let agent = PodAgent::start(cfg, move || ready, CancellationToken::new()).unwrap();
            while !agent.registered() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ready_tx.send(()).unwrap();
            let _ = kill_rx.await;
        });
        drop(rt);
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ls(&url).await.unwrap().len(), 1);
    kill_tx.send(()).unwrap();
    thread.join().unwrap();
    let gone = wait_until(
        TTL + Duration::from_millis(500),
        "killed pod gone",
        || async { ls(&url).await.unwrap().is_empty() },
    )
    .await;
    assert!(gone <= TTL + Duration::from_millis(100), "took {gone:?}");
    assert!(matches!(claim(&url).await, Err(ClaimError::NoFreeSeat)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_new_sessions_keeps_old_ones_and_never_double_grants() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let b = Pod::start(config(&url, "pod-b", 1)).await;
    let granted = claim(&url).await.unwrap();
    let (holder, other) = if granted.pod_id == "pod-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let lease = holder.agent.redeem(&granted.seat_token).await.unwrap();
    let pending = claim(&url).await.unwrap();
    assert_eq!(pending.pod_id, other.agent.pod_id());

    redis.stop();
    wait_until(Duration::from_secs(3), "agents see the outage", || async {
        !a.agent.redis_ok() && !b.agent.redis_ok()
    })
    .await;
    let refusal = other.agent.redeem(&pending.seat_token).await.unwrap_err();
    assert_eq!(refusal.code(), "pool_unavailable");
    assert!(matches!(claim(&url).await, Err(ClaimError::Pool(_))));

    redis.restart();
    wait_until(Duration::from_secs(3), "agents re-register", || async {
        a.agent.registered() && b.agent.registered()
    })
    .await;
    // Once at start, again after the restart (more only if the loaded
    // machine stalled a heartbeat past the TTL).
    assert!(holder.agent.metrics().registrations.load(Ordering::Relaxed) >= 2);
    // The claim from before the outage died with Redis's data.
    assert!(matches!(
        other.agent.redeem(&pending.seat_token).await,
        Err(Refusal::BadSeatToken(TokenProblem::Unknown))
    ));

    // The held seat was re-published with the registration: racing claims
    // find exactly one free seat, on the other pod.
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { claim(&url).await })
        })
        .collect();
    let mut winners = Vec::new();
    for r in racers {
        if let Ok(c) = r.await.unwrap() {
            winners.push(c);
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].pod_id, other.agent.pod_id());
    let rows = ls(&url).await.unwrap();
    let held_row = rows
        .iter()
        .find(|r| r.pod_id == holder.agent.pod_id())
        .unwrap();
    assert!(held_row.lock_held);

    // Epochs did not restart with Redis: the next claim on the holder's
    // seat fences strictly above the surviving lease.
    let old_epoch = lease.epoch();
    drop(lease);
    let deadline = std::time::Instant::now() + HEARTBEAT_SLACK;
    let next = loop {
        if let Ok(c) = claim(&url).await {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "held seat not back after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(next.pod_id, holder.agent.pod_id());
    let newer = holder.agent.redeem(&next.seat_token).await.unwrap();
    assert!(
        newer.epoch() > old_epoch,
        "{} <= {old_epoch}",
        newer.epoch()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_cannot_free_a_newer_claims_seat() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let stale = a
        .agent
        .redeem(&claim(&url).await.unwrap().seat_token)
        .await
        .unwrap();

    // A failover to a replica that missed the redeem: slot 0 was claimed
    // again, under a newer epoch, while the pod still holds the old lease.
    let newer_epoch = stale.epoch() + 100;
    let (mut conn, entry) = claim_after_failover(&url, newer_epoch).await;
    let (token, seats) = (FAILED_OVER_TOKEN, SEATS_A);

    // The heartbeat does not re-publish the stale lease over it...
    wait_until(
        HEARTBEAT_SLACK,
        "heartbeat fences the stale lease",
        || async { a.agent.metrics().fenced.load(Ordering::Relaxed) >= 1 },
    )
    .await;
    // ...and the stale holder's release does not free it.
    drop(stale);
    wait_until(HEARTBEAT_SLACK, "release fenced", || async {
        a.agent.metrics().fenced.load(Ordering::Relaxed) >= 2
    })
    .await;
    let still: String = redis::cmd("HGET")
        .arg(seats)
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(still, entry);
    assert_eq!(a.agent.metrics().released.load(Ordering::Relaxed), 0);

    // The newer claim is intact and redeemable.
    let lease = a.agent.redeem(token).await.unwrap();
    assert_eq!((lease.slot(), lease.epoch()), (0, newer_epoch));
}
