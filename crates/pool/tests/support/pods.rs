//! Pods and waits for the pool scenarios.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seatkeeper_pool::{ls, PodAgent, PodStatus, PoolConfig};
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
