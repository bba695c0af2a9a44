//! Failover: a master, a replica and a Sentinel (real `redis-server`
//! processes on loopback); the master is SIGKILLed under twenty racing
//! claimers. Claims come back through the Sentinel, no seat is ever
//! admitted twice, both pods are listed again, and a token issued after
//! the failover is admitted.

#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pods::{config, wait_until, Pod};
use seatkeeper_pool::{ls, ClaimError, PodAgent, PoolClient, Refusal, TokenProblem};
use seatkeeper_testkit::sentinel::SentinelSet;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Tally {
    admitted: AtomicU64,
    double: AtomicU64,
    seat_taken: AtomicU64,
    unavailable: AtomicU64,
    /// (pod, slot) pairs held by a live session right now.
    live: Mutex<HashSet<(String, u32)>>,
    /// When each admission happened.
    times: Mutex<Vec<Instant>>,
}

async fn claimer(
    url: String,
    agents: Arc<HashMap<String, PodAgent>>,
    tally: Arc<Tally>,
    stop: CancellationToken,
) {
    let client = PoolClient::new(&url).unwrap();
    while !stop.is_cancelled() {
        let claim = match client.claim().await {
            Ok(c) => c,
            Err(ClaimError::NoFreeSeat) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) => {
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match agents[&claim.pod_id].redeem(&claim.seat_token).await {
            Ok(lease) => {
                let key = (claim.pod_id.clone(), lease.slot());
                if !tally.live.lock().unwrap().insert(key.clone()) {
                    tally.double.fetch_add(1, Ordering::Relaxed);
                }
                tally.admitted.fetch_add(1, Ordering::Relaxed);
                tally.times.lock().unwrap().push(Instant::now());
                tokio::time::sleep(Duration::from_millis(40)).await;
                tally.live.lock().unwrap().remove(&key);
                drop(lease);
            }
            Err(Refusal::BadSeatToken(TokenProblem::SeatTaken)) => {
                tally.seat_taken.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_master_under_twenty_racing_claimers() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let a = Pod::start(config(&url, "pod-a", 4)).await;
    let b = Pod::start(config(&url, "pod-b", 4)).await;
    let agents: Arc<HashMap<String, PodAgent>> = Arc::new(
        [&a, &b]
            .iter()
            .map(|p| (p.agent.pod_id().to_owned(), p.agent.clone()))
            .collect(),
    );
    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let racers: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(claimer(
                url.clone(),
                Arc::clone(&agents),
                Arc::clone(&tally),
                stop.clone(),
            ))
        })
        .collect();

    wait_until(Duration::from_secs(10), "claims flowing", || async {
        tally.admitted.load(Ordering::Relaxed) >= 50
    })
    .await;
    let killed = Instant::now();
    set.kill(0);
    let before = tally.admitted.load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(10),
        "claims served again through the Sentinel within 10 s",
        || async {
            tally
                .times
                .lock()
                .unwrap()
                .iter()
                .any(|t| *t > killed + Duration::from_millis(1000))
        },
    )
    .await;
    let times = tally.times.lock().unwrap().clone();
    // The last admission before the kill took effect, the first after.
    let outage = times
        .windows(2)
        .filter(|w| w[1] > killed)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    eprintln!("FIGURE: longest gap between admissions across the failover: {outage:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for r in racers {
        r.await.unwrap();
    }
    eprintln!(
        "FIGURE: admitted {} ({} before the kill), seat_taken refusals {}, unavailable answers {}",
        tally.admitted.load(Ordering::Relaxed),
        before,
        tally.seat_taken.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
    );
    assert_eq!(
        tally.double.load(Ordering::Relaxed),
        0,
        "a seat was admitted twice"
    );
    assert_eq!(
        set.master_port(),
        Some(set.ports[1]),
        "the replica was promoted"
    );

    // Both pods are listed again, with every seat back once sessions end.
    wait_until(Duration::from_secs(5), "pods listed again", || async {
        ls(&url).await.is_ok_and(|rows| {
            rows.len() == 2
                && rows
                    .iter()
                    .all(|r| r.ready && r.seats_free == r.seats_total)
        })
    })
    .await;
    // A token issued after the failover is admitted.
    let claim = PoolClient::new(&url).unwrap().claim().await.unwrap();
    let lease = agents[&claim.pod_id]
        .redeem(&claim.seat_token)
        .await
        .unwrap();
    assert!(lease.epoch() > 0);
}
