//! Delivery latency at a steady rate, and the watchdog's cost per socket
//! per sample, each peer alone on the machine.

use seatkeeper_chaos::load::{measure, LoadArgs};
use serde_json::{json, Value};

use super::Bench;
use crate::peer::{Kind, Peer};

/// Watchdog cost: seconds per socket sample, where the peer reports it.
async fn watchdog_cost(peer: &Peer) -> Option<f64> {
    match peer.kind {
        Kind::Seatkeeper => {
            let s = peer
                .metric("seatkeeper_watchdog_sweep_seconds_total")
                .await?;
            let n = peer.metric("seatkeeper_watchdog_samples_total").await?;
            (n > 0.0).then(|| s / n)
        }
        Kind::PyWatchdog => {
            let doc: Value = serde_json::from_str(&peer.get("/sessions").await.ok()?).ok()?;
            let s = doc["watchdog"]["sweep_seconds"].as_f64()?;
            let n = doc["watchdog"]["samples"].as_f64()?;
            (n > 0.0).then(|| s / n)
        }
        _ => None,
    }
}

/// `sessions` sessions of `engine` for 10 s on each peer.
pub async fn steady(b: &Bench, sessions: usize, engine: &str) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    for kind in Kind::ALL {
        let peer = Peer::start(kind, &b.paths, &b.setup(sessions, engine)).await?;
        let mut a = LoadArgs::new(peer.ws_url(), sessions, 10.0);
        a.settle_s = 1.0;
        let r = measure(a).await?;
        rows.push(json!({
            "peer": kind.name(), "sessions": sessions, "ready": r.ready,
            "slices_per_s": r.slices_per_s, "dropped": r.dropped,
            "p50_us": r.latency.p50_us, "p99_us": r.latency.p99_us,
            "p999_us": r.latency.p999_us, "max_us": r.latency.max_us,
            "ended_early": r.ended_early,
            "watchdog_s_per_sample": watchdog_cost(&peer).await,
        }));
        peer.stop().await;
    }
    Ok(json!({"engine": engine, "sessions": sessions, "rows": rows}))
}
