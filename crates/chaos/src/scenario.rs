//! Playing scenarios. Each family lives in its own module; this one holds
//! the entry points and what they share (the target, the `/sessions`
//! probe, streaming helpers).
//!
//! # Layout
//! - [`live`]: active, paused, slow-link, backpressured (must be kept).
//! - [`dead`]: frozen, frozen-bigbuf, tunnel, half-close, rst.
//! - [`refusal`]: no-hello, flood.
//! - [`process`]: sigstop and blackhole, whose client is a child process.

pub mod dead;
pub mod live;
pub mod process;
pub mod refusal;
mod stream;

use futures_util::future::join_all;
use serde_json::json;

use crate::{
    args::{ChaosArgs, Scenario},
    client::{Client, Ready},
    http::SessionsProbe,
    target::Target,
    ChaosError, Verdict,
};

pub use stream::{stream, ReadMode, Streamed};

/// What every scenario needs: its flags, the resolved target, the probe.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The flags.
    pub args: ChaosArgs,
    /// The WebSocket endpoint.
    pub target: Target,
    /// `/sessions`.
    pub probe: SessionsProbe,
}

impl Ctx {
    /// Resolves the URLs and applies the loopback-only guard.
    pub async fn new(args: ChaosArgs) -> Result<Self, ChaosError> {
        let target = Target::parse(&args.url).await?;
        target.check_local(args.allow_remote)?;
        let sessions = args
            .sessions_url
            .clone()
            .unwrap_or_else(|| target.sessions_url());
        let probe = SessionsProbe::new(&sessions).await?;
        probe.target().check_local(args.allow_remote)?;
        Ok(Self {
            args,
            target,
            probe,
        })
    }

    /// A fresh verdict for this scenario.
    pub fn verdict(&self) -> Verdict {
        Verdict::new(&self.args.scenario.name(), self.args.scenario.expected())
    }

    /// Streams and acks for the warm-up after `ready`: a verdict naming the
    /// session and counting the slices, and what the warm-up saw.
    pub async fn warm_up(&self, c: &mut Client, ready: &Ready) -> (Verdict, Streamed) {
        let mut v = self.verdict();
        v.session_id = Some(ready.session_id.clone());
        let warm = stream(
            c,
            self.args.warmup(),
            ReadMode::Ack(crate::client::AckPolicy::for_window(ready)),
        )
        .await;
        v.slices = warm.slices;
        (v, warm)
    }

    /// Connects (with `rcvbuf`) and says hello.
    pub async fn join(&self, rcvbuf: Option<u32>) -> Result<(Client, Ready), ChaosError> {
        let mut c = Client::connect(&self.target, rcvbuf).await?;
        let r = c
            .hello_ready(&json!({"client_id": self.args.client_id}))
            .await?;
        Ok((c, r))
    }
}

/// Plays `args.scenario` with `args.clients` clients at once; one verdict
/// per client. Only setup failures (bad URL, forbidden target) are errors;
/// anything the server does is a verdict.
pub async fn run_many(args: ChaosArgs) -> Result<Vec<Verdict>, ChaosError> {
    let scenario = args.scenario;
    match scenario {
        Scenario::NetnsUp | Scenario::NetnsDown => return Ok(vec![process::netns_cmd(scenario)]),
        Scenario::InternalChild => {
            process::child_main(Ctx::new(args).await?).await;
            return Ok(Vec::new());
        }
        _ => {}
    }
    let ctx = Ctx::new(args).await?;
    let k = ctx.args.clients.max(1);
    if matches!(scenario, Scenario::Sigstop | Scenario::Blackhole) {
        // One child process holds all k clients: they are stopped (or
        // blackholed) at the same instant.
        return Ok(process::run(&ctx, k).await);
    }
    Ok(join_all((0..k).map(|_| one(&ctx))).await)
}

async fn one(ctx: &Ctx) -> Verdict {
    let v = match ctx.args.scenario {
        Scenario::Active | Scenario::Paused | Scenario::SlowLink | Scenario::Backpressured => {
            live::run(ctx).await
        }
        Scenario::Frozen
        | Scenario::FrozenBigbuf
        | Scenario::Tunnel
        | Scenario::TunnelDrain
        | Scenario::HalfClose
        | Scenario::Rst => dead::run(ctx).await,
        Scenario::NoHello => refusal::no_hello(ctx).await,
        Scenario::Flood => refusal::flood(ctx).await,
        _ => Err(ChaosError::Protocol("not a single-client scenario".into())),
    };
    v.unwrap_or_else(|e| {
        let mut v = ctx.verdict();
        v.detail = Some(e.to_string());
        v.decide("error", None)
    })
}

/// `seatkeeper chaos`: plays the scenario, prints one JSON line per client
/// on stdout, and returns the first verdict that did not pass (else the
/// first one). The caller exits non-zero when `pass` is false.
pub async fn run(args: ChaosArgs) -> anyhow::Result<Verdict> {
    let internal = args.scenario == Scenario::InternalChild;
    let verdicts = run_many(args).await?;
    for v in &verdicts {
        println!("{}", v.to_json_line());
    }
    if internal {
        let mut v = Verdict::new("internal-child", "done");
        v = v.decide("done", None);
        return Ok(v);
    }
    let pick = verdicts
        .iter()
        .find(|v| !v.pass)
        .or(verdicts.first())
        .cloned();
    pick.ok_or_else(|| anyhow::anyhow!("no verdict"))
}
