//! `seatkeeper load`: opens N sessions from one process, reads and acks
//! like a browser that keeps up, and reports what was delivered.
//!
//! Delivery latency is measured per session against the session's own
//! first slice: a slice with media timestamp `ts` is due `ts - ts₀` after
//! the first slice arrived, and its latency is how much later than that it
//! arrived. It needs no clock shared with the server, and it shows
//! queueing anywhere on the path (engine pacing, outbox, socket, this
//! client's own scheduling — run the generator on cores the server is not
//! starved of, or read the figures as an upper bound).
//!
//! # Lean on purpose
//! The figures are meant to measure the server, so the generator is as
//! cheap as a C epoll client: every session runs on one thread with one
//! `mio` poll (edge-triggered epoll), no task, waker or timer per session
//! and no WebSocket library — the little of the protocol a client that
//! keeps up needs is done by hand (`conn`). Per read it handles every
//! whole frame and sends one cumulative ack (inside a read too, once a
//! quarter of the window is pending), built on the stack. Pin it away from
//! the server from the shell, e.g. `taskset -c 1 seatkeeper load …` with
//! the server under `taskset -c 0`.
//!
//! # Layout
//! - [`LoadArgs`] and [`run`]: the command.
//! - `engine`: the loop over every session.
//! - `conn`: one session's protocol.
//! - `report`: the JSON report.

mod conn;
mod engine;
mod report;

use std::{collections::BTreeMap, time::Duration};

use clap::Args;

use crate::{args::secs, http::SessionsProbe, target::Target};

pub use report::LoadReport;

/// `seatkeeper load`: N concurrent sessions from one process.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:1318/ws")]
    pub url: String,
    /// The server's sessions route; default: /sessions on the --url's host.
    #[arg(long)]
    pub sessions_url: Option<String>,
    /// Sessions to open.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Seconds every session streams (counted from the first connect).
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Seconds at the start whose slices are read but not counted in the
    /// latency figures (connection set-up noise).
    #[arg(long, default_value_t = 1.0)]
    pub settle_s: f64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Ack each slice at once instead of coalescing acks by the window.
    #[arg(long)]
    pub ack_each: bool,
    /// Send `bye` at the end and report the seats still held 2 s later.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub bye: bool,
    /// Allow targets outside loopback and the chaos namespace.
    #[arg(long)]
    pub allow_remote: bool,
}

impl LoadArgs {
    /// `n` sessions for `duration_s` against `url`, everything else default.
    pub fn new(url: impl Into<String>, n: usize, duration_s: f64) -> Self {
        Self {
            url: url.into(),
            sessions_url: None,
            sessions: n,
            duration_s,
            settle_s: 1.0,
            connect_concurrency: 200,
            ack_each: false,
            bye: true,
            allow_remote: false,
        }
    }
}

/// Runs the load (the sessions on one thread, see the module docs; this
/// thread only waits and then probes the seats), prints the report as one
/// JSON line, returns it.
pub fn run_blocking(args: LoadArgs) -> anyhow::Result<LoadReport> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Runs the load, prints the report as one JSON line, returns it.
pub async fn run(args: LoadArgs) -> anyhow::Result<LoadReport> {
    let report = measure(args).await?;
    println!("{}", report.to_json_line());
    Ok(report)
}

/// Runs the load and returns the report (prints nothing).
pub async fn measure(args: LoadArgs) -> anyhow::Result<LoadReport> {
    let target = Target::parse(&args.url).await?;
    target.check_local(args.allow_remote)?;
    let probe_url = args
        .sessions_url
        .clone()
        .unwrap_or_else(|| target.sessions_url());
    let probe = SessionsProbe::new(&probe_url).await?;
    let plan = engine::Plan {
        target,
        sessions: args.sessions,
        duration: secs(args.duration_s),
        settle: secs(args.settle_s),
        connect_concurrency: args.connect_concurrency,
        ack_each: args.ack_each,
        bye: args.bye,
    };
    // The engine blocks its thread for the whole run.
    let ran = tokio::task::spawn_blocking(move || engine::run(&plan)).await??;
    let held_after = if args.bye {
        tokio::time::sleep(Duration::from_secs(2)).await;
        probe.held().await.ok()
    } else {
        None
    };
    let mut ended: BTreeMap<String, u64> = BTreeMap::new();
    for o in &ran.outcomes {
        if let Some(e) = &o.ended {
            *ended.entry(e.clone()).or_default() += 1;
        }
    }
    Ok(LoadReport::build(
        &args,
        &ran.outcomes,
        &ran.hist,
        ended,
        ran.elapsed,
        held_after,
    ))
}
