//! The field: each peer in a network namespace of its own behind a
//! `tbf`-shaped link (256 kbit/s, 1 Mbit/s), one client per link. A live
//! client that reads everything and acks (`active`) is watched for
//! `observe_s` (every end of it is a false reap); a client that streams, then
//! stops reading (`frozen`, the slow link that freezes) must be released.

use futures_util::future::join_all;
use seatkeeper_chaos::{field::Field, run_many, ChaosArgs, Scenario};
use serde_json::{json, Value};

use super::Bench;
use crate::peer::{Kind, Peer};

/// The link rates, kbit/s.
pub const RATES: [u32; 2] = [256, 1000];

/// Namespace tags 40.. (the integration tests use 1..40).
const FIRST_TAG: u8 = 40;

async fn one(
    b: &Bench,
    tag: u8,
    kind: Kind,
    kbit: u32,
    scenario: Scenario,
    observe_s: f64,
) -> anyhow::Result<Value> {
    let f = Field::create(tag)?;
    f.shape(kbit)?;
    let mut setup = b.setup(1, super::release::AUDIO);
    setup.netns = Some((f.exec_prefix(), f.control_addr()));
    let peer = Peer::start(kind, &b.paths, &setup).await?;
    let mut a = ChaosArgs::new(format!("ws://{}/ws", f.data_addr()), scenario);
    a.sessions_url = Some(format!("http://{}/sessions", f.control_addr()));
    a.timeout_s = b.timeout_s;
    a.warmup_s = 2.0;
    a.observe_s = observe_s;
    a.client_id = format!("field-{}", scenario.name());
    let v = run_many(a).await?;
    peer.stop().await;
    drop(f);
    let v = v.first().cloned();
    Ok(json!({
        "peer": kind.name(), "kbit": kbit, "scenario": scenario.name(),
        "verdict": v.as_ref().map(|v| v.verdict.clone()),
        "release_s": v.as_ref().and_then(|v| v.release_s),
        "slices": v.as_ref().map(|v| v.slices),
        "detail": v.and_then(|v| v.detail),
    }))
}

/// Every peer, rate and scenario at once, each on its own link.
pub async fn field(b: &Bench, observe_s: f64, scenarios: &[Scenario]) -> anyhow::Result<Value> {
    let mut jobs = Vec::new();
    let mut tag = FIRST_TAG;
    for kind in Kind::ALL {
        for kbit in RATES {
            for scenario in [Scenario::Active, Scenario::Frozen] {
                // Tags stay put whichever scenarios run.
                if scenarios.contains(&scenario) {
                    jobs.push(one(b, tag, kind, kbit, scenario, observe_s));
                }
                tag += 1;
            }
        }
    }
    let rows: Vec<Value> = join_all(jobs)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| json!({"error": format!("{e:#}")})))
        .collect();
    Ok(json!({"observe_s": observe_s, "rates_kbit": RATES, "rows": rows}))
}
