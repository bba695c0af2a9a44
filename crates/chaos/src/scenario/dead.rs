//! Clients that are gone without saying so (frozen, frozen-bigbuf, tunnel,
//! tunnel-drain)
//! or that left at the TCP level (half-close, rst). The clock starts at the
//! fault; the figure is how long `/sessions` kept listing the session.

use std::time::Duration;

use tokio::time::Instant;

use super::Ctx;
use crate::{
    args::Scenario,
    client::{Client, Event},
    relay::Relay,
    target::Target,
    ChaosError, Verdict,
};

/// How long to read after the release to learn how the connection ended.
const AFTERMATH: Duration = Duration::from_secs(2);

/// Plays one of frozen, frozen-bigbuf, tunnel, half-close, rst.
pub async fn run(ctx: &Ctx) -> Result<Verdict, ChaosError> {
    let a = &ctx.args;
    let relay = match a.scenario {
        Scenario::Tunnel | Scenario::TunnelDrain => Some(Relay::bind(ctx.target.addr).await?),
        _ => None,
    };
    let via = match &relay {
        Some(r) => Target {
            addr: r.addr,
            ..ctx.target.clone()
        },
        None => ctx.target.clone(),
    };
    let rcvbuf = (a.scenario == Scenario::FrozenBigbuf).then_some(a.bigbuf_bytes);
    let mut c = Client::connect(&via, rcvbuf).await?;
    let ready = c
        .hello_ready(&serde_json::json!({"client_id": a.client_id}))
        .await?;
    let (mut v, warm) = ctx.warm_up(&mut c, &ready).await;
    if let Some(end) = warm.ended {
        v.detail = Some(format!("ended during warm-up: {end:?}"));
        return Ok(v.decide("error", None));
    }
    // The fault.
    let t0 = Instant::now();
    let mut kept = Some(c);
    match a.scenario {
        Scenario::Tunnel => {
            if let Some(r) = &relay {
                r.freeze();
            }
        }
        Scenario::TunnelDrain => {
            if let Some(r) = &relay {
                r.drain();
            }
        }
        Scenario::HalfClose => {
            if let Some(c) = kept.as_mut() {
                c.fin().await;
            }
        }
        Scenario::Rst => {
            if let Some(c) = kept.take() {
                c.rst();
            }
        }
        // Frozen: simply never read again.
        _ => {}
    }
    let released = ctx
        .probe
        .wait_released(&ready.session_id, t0, a.poll(), a.timeout())
        .await;
    v.release_s = released.map(|d| d.as_secs_f64());
    let leaving = matches!(a.scenario, Scenario::HalfClose | Scenario::Rst);
    let verdict = match (released.is_some(), leaving) {
        (true, true) => "released",
        (false, true) => "not_released",
        (true, false) => "reaped",
        (false, false) => "not_reaped",
    };
    // What did the server do to the connection? (Through a frozen relay
    // nothing arrives, so drop the relay first.)
    drop(relay);
    if let Some(mut c) = kept {
        if released.is_some() {
            if let Some(end) = c.until_closed(AFTERMATH).await {
                v.ended = end.ending().map(str::to_owned);
                if let Event::Closed(code) = end {
                    v.close_code = code;
                }
            }
        } else {
            v.detail = Some(format!(
                "still listed {:.1} s after the fault",
                a.timeout().as_secs_f64()
            ));
        }
    }
    Ok(v.decide(verdict, None))
}
