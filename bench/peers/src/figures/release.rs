//! Time to release a dead client's seat, several clients per peer at once.

use futures_util::future::join_all;
use seatkeeper_chaos::{netns, run_many, ChaosArgs, Scenario, Verdict};
use serde_json::{json, Value};

use super::{stop_all, Bench};
use crate::peer::{Kind, Peer};

/// An audio-like stream: 10 slices/s of 19.2 KB (100 ms of 48 kHz stereo f16).
pub const AUDIO: &str = "synthetic:10:19200";

fn args(b: &Bench, peer: &Peer, scenario: Scenario) -> ChaosArgs {
    let mut a = ChaosArgs::new(peer.ws_url(), scenario);
    a.clients = b.runs;
    a.timeout_s = b.timeout_s;
    a.warmup_s = 2.0;
    a.child_exe = Some(b.chaos.clone());
    a.client_id = format!("bench-{}", scenario.name());
    a
}

fn summarize(kind: Kind, verdicts: &[Verdict]) -> Value {
    let times: Vec<Option<f64>> = verdicts.iter().map(|v| v.release_s).collect();
    let done: Vec<f64> = times.iter().flatten().copied().collect();
    let pct = |q| seatkeeper_chaos::hist::percentile(&done, q);
    json!({
        "peer": kind.name(),
        "runs": verdicts.len(),
        "released": done.len(),
        "release_s": times,
        "min": pct(0.0), "median": pct(0.5), "max": pct(1.0),
        "verdicts": verdicts.iter().map(|v| v.verdict.clone()).collect::<Vec<_>>(),
        "errors": verdicts.iter().filter_map(|v| v.detail.clone()).take(3).collect::<Vec<_>>(),
    })
}

/// frozen or tunnel: every peer at once, `runs` clients each.
pub async fn concurrent(b: &Bench, scenario: Scenario) -> anyhow::Result<Value> {
    let peers = b.start_all(&b.setup(b.runs, AUDIO)).await?;
    let runs = peers.iter().map(|p| run_many(args(b, p, scenario)));
    let results = join_all(runs).await;
    let mut out = Vec::new();
    for (p, r) in peers.iter().zip(results) {
        out.push(summarize(p.kind, &r?));
    }
    stop_all(peers).await;
    Ok(json!({"scenario": scenario.name(), "peers": out}))
}

/// blackhole: one peer after the other (one namespace, one link).
pub async fn blackhole(b: &Bench) -> anyhow::Result<Value> {
    if let Some(why) = netns::unavailable() {
        return Ok(json!({"scenario": "blackhole", "skipped": why, "peers": []}));
    }
    let ns = netns::Netns::create()?;
    let mut setup = b.setup(b.runs, AUDIO);
    setup.ip = netns::HOST_ADDR.into();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let peer = Peer::start(kind, &b.paths, &setup).await?;
        let v = run_many(args(b, &peer, Scenario::Blackhole)).await?;
        out.push(summarize(kind, &v));
        peer.stop().await;
    }
    drop(ns);
    Ok(json!({"scenario": "blackhole", "peers": out}))
}
