//! Live clients that a server must keep: active, paused, slow-link,
//! backpressured. Each is watched for `--observe-s`; the verdict is `kept`
//! when the connection is still open and the session still listed, and
//! `reaped` (a false reap) when the server dropped it.

use std::time::Duration;

use tokio::time::Instant;

use super::{stream, Ctx, ReadMode};
use crate::{
    args::{secs, Scenario},
    client::{AckPolicy, Event},
    ChaosError, Verdict,
};

/// Plays one live scenario.
pub async fn run(ctx: &Ctx) -> Result<Verdict, ChaosError> {
    let a = &ctx.args;
    let rcvbuf = match a.scenario {
        Scenario::SlowLink | Scenario::Backpressured => Some(a.small_rcvbuf_bytes),
        _ => None,
    };
    let (mut c, ready) = ctx.join(rcvbuf).await?;
    let (mut v, warm) = ctx.warm_up(&mut c, &ready).await;
    let mode = match a.scenario {
        Scenario::Paused => ReadMode::NoAck,
        Scenario::SlowLink => {
            let rate = warm.bytes as f64 / a.warmup().as_secs_f64().max(0.001);
            if warm.bytes == 0 {
                return Err(ChaosError::Protocol(
                    "no slices during warm-up: cannot measure the stream's rate".into(),
                ));
            }
            ReadMode::Slow {
                bytes_per_s: rate * a.slow_fraction,
            }
        }
        Scenario::Backpressured => ReadMode::Stutter {
            run: Duration::from_millis(500),
            pause: secs(a.pause_s),
        },
        _ => ReadMode::Ack(AckPolicy::for_window(&ready)),
    };
    let t0 = Instant::now();
    let out = if warm.ended.is_none() {
        stream(&mut c, a.observe(), mode).await
    } else {
        warm.clone()
    };
    v.slices += if warm.ended.is_none() { out.slices } else { 0 };
    if let Some(end) = &out.ended {
        v.release_s = Some(t0.elapsed().as_secs_f64());
        v.ended = end.ending().map(str::to_owned);
        if let Event::Closed(code) = end {
            v.close_code = *code;
        }
        v.detail = Some(format!("the server ended a live client: {end:?}"));
        return Ok(v.decide("reaped", None));
    }
    if !ctx.probe.holds(&ready.session_id).await? {
        v.detail = Some("connection open but the session is no longer listed".into());
        return Ok(v.decide("reaped", None));
    }
    c.close(seatkeeper_protocol::close::NORMAL).await;
    Ok(v.decide("kept", None))
}
