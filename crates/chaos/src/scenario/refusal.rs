//! Clients a server must turn away: one that never says hello, and one
//! that floods it with messages.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use crate::{
    client::{AckPolicy, Client, Event},
    ChaosError, Verdict,
};

/// Messages sent by `flood` at most (a bounded loop, ~20× the contract's
/// default per-second limit).
const FLOOD_MESSAGES: usize = 10_000;
/// Flood messages written per flush.
const FLOOD_BATCH: usize = 100;

fn record_end(v: &mut Verdict, end: &Event) {
    v.ended = end.ending().map(str::to_owned);
    if let Event::Closed(code) = end {
        v.close_code = *code;
    }
}

/// Upgrades, never says hello, waits for the server to close. Also checks
/// that no seat was taken while the connection was open.
pub async fn no_hello(ctx: &Ctx) -> Result<Verdict, ChaosError> {
    let a = &ctx.args;
    let before = ctx.probe.held().await?;
    let mut c = Client::connect(&ctx.target, None).await?;
    let t0 = Instant::now();
    let mut v = ctx.verdict();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = ctx.probe.held().await?;
    let end = c.until_closed(a.timeout()).await;
    let Some(end) = end else {
        v.detail = Some("still open at the timeout".into());
        return Ok(v.decide("open", a.scenario.expected_close()));
    };
    v.release_s = Some(t0.elapsed().as_secs_f64());
    record_end(&mut v, &end);
    if during > before {
        v.detail = Some(format!(
            "seats held went from {before} to {during} without a hello (other clients may share this server)"
        ));
        return Ok(v.decide("seat_taken", a.scenario.expected_close()));
    }
    Ok(v.decide("closed", a.scenario.expected_close()))
}

/// Says hello, then sends acks as fast as the socket takes them (bounded).
pub async fn flood(ctx: &Ctx) -> Result<Verdict, ChaosError> {
    let a = &ctx.args;
    let (mut c, ready) = ctx.join(None).await?;
    let mut v = ctx.verdict();
    v.session_id = Some(ready.session_id.clone());
    let t0 = Instant::now();
    let mut sent = 0;
    let mut end = None;
    let mut acks = AckPolicy::each();
    'flood: while sent < FLOOD_MESSAGES {
        for _ in 0..FLOOD_BATCH {
            let msg = Message::text(format!("{{\"type\":\"ack\",\"seq\":{}}}", acks.take()));
            if c.ws.feed(msg).await.is_err() {
                break 'flood;
            }
            sent += 1;
        }
        if c.ws.flush().await.is_err() {
            break;
        }
        // Take whatever the server said so far, without waiting.
        while let Some(ev) = c.next(Duration::ZERO).await {
            match ev {
                Event::Slice(h, len, at) => {
                    v.slices += 1;
                    acks.on_slice(h.seq, len, at);
                }
                Event::Text(_) => {}
                e => {
                    end = Some(e);
                    break 'flood;
                }
            }
        }
    }
    if end.is_none() {
        end = c.until_closed(a.timeout()).await;
    }
    v.detail = Some(format!("{sent} messages sent"));
    match end {
        Some(e) => {
            v.release_s = Some(t0.elapsed().as_secs_f64());
            record_end(&mut v, &e);
            Ok(v.decide("closed", a.scenario.expected_close()))
        }
        None => Ok(v.decide("open", a.scenario.expected_close())),
    }
}
