//! Reconnect → first slice over 100 resumes (seatkeeper; no peer resumes a
//! live session) next to a fresh session's connect → first slice on every
//! peer.

use std::time::Duration;

use seatkeeper_chaos::{
    client::{Client, Event, HelloOutcome},
    hist::percentile,
    target::Target,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{release::AUDIO, Bench};
use crate::peer::{Kind, Peer};

const N: usize = 100;

/// Reads until the first slice; returns whether it was a keyframe.
async fn first_slice(c: &mut Client) -> anyhow::Result<bool> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        match c.next(Duration::from_secs(5)).await {
            Some(Event::Slice(h, ..)) => return Ok(h.keyframe()),
            Some(Event::Text(_)) => continue,
            other => anyhow::bail!("no first slice: {other:?}"),
        }
    }
    anyhow::bail!("no first slice in 5 s")
}

fn stats(ms: &[f64]) -> Value {
    json!({"n": ms.len(), "median_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99),
           "min_ms": percentile(ms, 0.0), "max_ms": percentile(ms, 1.0)})
}

/// Fresh sessions: connect, hello, first slice, bye — `N` times per peer.
async fn fresh(peer: &Peer) -> anyhow::Result<Value> {
    let target = Target::parse(&peer.ws_url()).await?;
    let mut ms = Vec::new();
    for _ in 0..N {
        let t0 = Instant::now();
        let mut c = Client::connect(&target, None).await?;
        let HelloOutcome::Ready(r) = c.hello(&json!({})).await? else {
            // The previous session's seat is still being released: retry.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        first_slice(&mut c).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        c.send(&json!({"type": "bye"})).await?;
        c.close(1000).await;
        let _ = c.until_closed(Duration::from_secs(2)).await;
        // Wait for the seat (bounded) so the next hello is not busy.
        for _ in 0..100 {
            let doc = peer.get("/sessions").await.unwrap_or_default();
            if !doc.contains(&r.session_id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(stats(&ms))
}

/// `N` resumes after an RST, each timed from the new connect to `ready` and
/// to its first slice. The RST comes right after a slice arrived, so the
/// engine's next slice is as far away as it gets: a worst case for a server
/// that waits for the engine rather than sending its keyframe at once.
async fn resumes(peer: &Peer) -> anyhow::Result<Value> {
    let target = Target::parse(&peer.ws_url()).await?;
    let mut c = Client::connect(&target, None).await?;
    let mut ready = match c.hello(&json!({})).await? {
        HelloOutcome::Ready(r) => r,
        HelloOutcome::Refused(v) => anyhow::bail!("refused: {v}"),
    };
    first_slice(&mut c).await?;
    let (mut ms, mut ready_ms, mut resumed, mut keyframes) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..N {
        let token = ready.resume_token.clone().unwrap_or_default();
        c.rst();
        let t0 = Instant::now();
        c = Client::connect(&target, None).await?;
        ready = match c.hello(&json!({"resume": token})).await? {
            HelloOutcome::Ready(r) => r,
            HelloOutcome::Refused(v) => anyhow::bail!("resume refused: {v}"),
        };
        ready_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let key = first_slice(&mut c).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        resumed += usize::from(ready.resumed);
        keyframes += usize::from(key);
    }
    c.send(&json!({"type": "bye"})).await?;
    let mut s = stats(&ms);
    s["resumed"] = json!(resumed);
    s["keyframe_first"] = json!(keyframes);
    s["ready"] = stats(&ready_ms);
    Ok(s)
}

/// Both figures.
pub async fn resume(b: &Bench) -> anyhow::Result<Value> {
    let mut fresh_rows = Vec::new();
    for kind in Kind::ALL {
        let peer = Peer::start(kind, &b.paths, &b.setup(1, AUDIO)).await?;
        let f = fresh(&peer).await;
        fresh_rows.push(json!({"peer": kind.name(), "fresh": f.unwrap_or_else(|e| json!({"error": e.to_string()}))}));
        peer.stop().await;
    }
    let peer = Peer::start(Kind::Seatkeeper, &b.paths, &b.setup(1, AUDIO)).await?;
    let r = resumes(&peer)
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    peer.stop().await;
    Ok(json!({"fresh": fresh_rows, "seatkeeper_resume": r}))
}
