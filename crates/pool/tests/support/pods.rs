//! Pods and waits for the pool scenarios.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seatkeeper_pool::{ls, PodAgent, PodStatus, PoolConfig};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Short TTLs keep the scenarios fast: heartbeats every ~333 ms.
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// One heartbeat interval plus slack for a loaded two-core machine.
pub(crate) const HEARTBEAT_SLACK: Duration = Duration::from_millis(333 + 400);

/// Free seats over the whole pool, as `pool ls` counts them.
pub(crate) async fn free_seats(url: &str) -> u32 {
    ls(url).await.unwrap().iter().map(|p| p.seats_free).sum()
}

/// A plain connection, for the tests that play a failover by hand.
pub(crate) async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The seats hash of `pod-a`.
pub(crate) const SEATS_A: &str = "seatkeeper:pool:pod:pod-a:seats";

/// The seat token a failed-over Redis gave out for a seat the pod holds.
pub(crate) const FAILED_OVER_TOKEN: &str = "a-token-from-the-failed-over-side-0123456789";

/// Plays what a replica that missed a redeem says after a failover: slot 0
/// of `pod-a` is claimed again, under `epoch`, for [`FAILED_OVER_TOKEN`].
/// Returns the connection used and the seat entry written.
pub(crate) async fn claim_after_failover(
    url: &str,
    epoch: u64,
) -> (redis::aio::MultiplexedConnection, String) {
    let hash: String = Sha256::digest(FAILED_OVER_TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut conn = raw(url).await;
    let entry = format!("c:{epoch}:99999999999999:{hash}");
    let _: () = redis::cmd("HSET")
        .arg(SEATS_A)
        .arg(0)
        .arg(&entry)
        .query_async(&mut conn)
        .await
        .unwrap();
    (conn, entry)
}

pub(crate) fn config(redis_url: &str, pod_id: &str, seats: u32) -> PoolConfig {
    let mut cfg = PoolConfig::new(
        redis_url,
        pod_id,
        format!("ws://{pod_id}.test:1318/ws"),
        seats,
    );
    cfg.ttl = TTL;
    cfg
}

/// A pod agent with a status the test can change.
pub(crate) struct Pod {
    pub(crate) agent: PodAgent,
    pub(crate) status: Arc<Mutex<PodStatus>>,
    pub(crate) shutdown: CancellationToken,
}

impl Pod {
    /// Starts an agent and waits for its registration.
    pub(crate) async fn start(cfg: PoolConfig) -> Pod {
        let status = Arc::new(Mutex::new(PodStatus {
            seats_held: 0,
            engine_ready: true,
            draining: false,
        }));
        let shutdown = CancellationToken::new();
        let shared = Arc::clone(&status);
        let agent = PodAgent::start(cfg, move || *shared.lock().unwrap(), shutdown.clone())
            .expect("valid config");
        let a = agent.clone();
        wait_until(Duration::from_secs(5), "pod registered", || {
            let a = a.clone();
            async move { a.registered() }
        })
        .await;
        Pod {
            agent,
            status,
            shutdown,
        }
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.status.lock().unwrap().draining = draining;
        self.agent.nudge();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` every 20 ms until it holds; panics after `within`.
/// Returns how long it took.
pub(crate) async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
