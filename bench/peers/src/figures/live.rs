//! False reaps: live clients (paused, slow link, backpressured) watched for
//! three grace windows on every peer at once.

use futures_util::future::join_all;
use seatkeeper_chaos::{run_many, ChaosArgs, Scenario};
use serde_json::{json, Value};

use super::{stop_all, Bench};

/// A stream fast enough (1.3 MB/s) that a third of it keeps a 32 KiB
/// receive buffer full, so a slow link's send queue never empties.
pub const FAST: &str = "synthetic:20:65536";

const LIVE: [Scenario; 3] = [
    Scenario::Paused,
    Scenario::SlowLink,
    Scenario::Backpressured,
];

/// Runs the live scenarios, `runs` clients each, on every peer.
pub async fn false_reaps(b: &Bench) -> anyhow::Result<Value> {
    let per = b.runs.min(5);
    let peers = b.start_all(&b.setup(per * LIVE.len(), FAST)).await?;
    let mut jobs = Vec::new();
    for p in &peers {
        for s in LIVE {
            let mut a = ChaosArgs::new(p.ws_url(), s);
            a.clients = per;
            a.observe_s = 3.0 * b.grace_s;
            // Pauses of 60 % of the grace window: long enough to back the
            // queue up, short enough that a correct reaper must keep them.
            a.pause_s = 0.6 * b.grace_s;
            jobs.push((p.kind, s, a));
        }
    }
    let results = join_all(jobs.iter().map(|(_, _, a)| run_many(a.clone()))).await;
    let mut out = Vec::new();
    for ((kind, s, _), r) in jobs.iter().zip(results) {
        let v = r?;
        let kept = v.iter().filter(|v| v.verdict == "kept").count();
        out.push(json!({
            "peer": kind.name(), "scenario": s.name(), "clients": v.len(),
            "kept": kept, "false_reaps": v.len() - kept,
            "verdicts": v.iter().map(|v| v.verdict.clone()).collect::<Vec<_>>(),
        }));
    }
    stop_all(peers).await;
    Ok(json!({"observe_s": 3.0 * b.grace_s, "rows": out}))
}
