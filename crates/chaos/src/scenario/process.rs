//! Scenarios whose client is a child process: `sigstop` (the process is
//! stopped: its kernel keeps ACKing until the receive buffer is full, then
//! advertises a zero window) and `blackhole` (the process sits in a network
//! namespace whose link goes down: nothing is ACKed at all).

use std::{net::IpAddr, time::Duration};

use futures_util::future::join_all;
use serde_json::json;
use tokio::time::Instant;

use super::{stream, Ctx, ReadMode};
use crate::{
    args::Scenario,
    child::Child,
    client::{AckPolicy, Client},
    netns::{self, Netns},
    Verdict,
};

/// Longest wait for the child's clients to be ready.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How often the child reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Plays sigstop or blackhole with `k` clients in one child process.
pub async fn run(ctx: &Ctx, k: usize) -> Vec<Verdict> {
    let a = &ctx.args;
    let fail = |verdict: &str, detail: String| {
        (0..k)
            .map(|_| {
                let mut v = ctx.verdict();
                v.detail = Some(detail.clone());
                v.decide(verdict, None)
            })
            .collect::<Vec<_>>()
    };
    let ns = if a.scenario == Scenario::Blackhole {
        if let Some(why) = netns::unavailable() {
            return fail("skipped", format!("blackhole skipped: {why}"));
        }
        if ctx.target.addr.ip() != IpAddr::V4(netns::HOST_ADDR) {
            return fail(
                "error",
                format!(
                    "blackhole needs the server on the namespace's host-side address: \
                     run `chaos --scenario netns-up`, serve with --listen {}:PORT and \
                     pass --url ws://{}:PORT/ws",
                    netns::HOST_ADDR,
                    netns::HOST_ADDR
                ),
            );
        }
        match Netns::acquire() {
            Ok(ns) => Some(ns),
            Err(e) => return fail("skipped", format!("blackhole skipped: {e}")),
        }
    } else {
        None
    };
    let prefix = ns.as_ref().map(Netns::exec_prefix).unwrap_or_default();
    let lifetime = a.warmup() + a.timeout() + Duration::from_secs(30);
    let child = match Child::spawn(a, &prefix, k, lifetime) {
        Ok(c) => c,
        Err(e) => return fail("error", e.to_string()),
    };
    let ready = child.wait_ready(READY_LIMIT).await;
    if let Some(bad) = ready.iter().find(|c| c.session_id.is_none()) {
        let why = bad
            .trouble
            .clone()
            .unwrap_or_else(|| "no ready in time".into());
        child.kill().await;
        return fail("error", format!("child client not ready: {why}"));
    }
    tokio::time::sleep(a.warmup()).await;
    let before = child.snapshot().await;
    let fault = match (&ns, a.scenario) {
        (Some(ns), _) => ns.link_down(),
        (None, _) => child.signal("STOP"),
    };
    let t0 = Instant::now();
    if let Err(e) = fault {
        child.kill().await;
        return fail("error", e.to_string());
    }
    let waits = before.iter().map(|c| async {
        let id = c.session_id.clone().unwrap_or_default();
        let released = ctx
            .probe
            .wait_released(&id, t0, a.poll(), a.timeout())
            .await;
        let mut v = ctx.verdict();
        v.session_id = Some(id);
        v.slices = c.slices;
        v.release_s = released.map(|d| d.as_secs_f64());
        v.decide(
            if released.is_some() {
                "reaped"
            } else {
                "not_reaped"
            },
            None,
        )
    });
    let verdicts = join_all(waits).await;
    child.kill().await;
    drop(ns);
    verdicts
}

/// The child process: `k` clients that read and ack, each printing a ready
/// line and progress lines, until the lifetime ends, the connection ends,
/// or the parent goes away (stdin closes).
pub async fn child_main(ctx: Ctx) {
    let k = ctx.args.clients.max(1);
    let lifetime = ctx.args.timeout();
    let clients = (0..k).map(|i| {
        let ctx = &ctx;
        async move {
            let say = |v: serde_json::Value| println!("{v}");
            let (mut c, ready): (Client, _) = match ctx.join(None).await {
                Ok(x) => x,
                Err(e) => return say(json!({"child": i, "trouble": e.to_string()})),
            };
            say(json!({"child": i, "session_id": ready.session_id}));
            let end = Instant::now() + lifetime;
            let mut slices = 0;
            while Instant::now() < end {
                let out = stream(&mut c, PROGRESS_EVERY, ReadMode::Ack(AckPolicy::each())).await;
                slices += out.slices;
                say(json!({"child": i, "slices": slices}));
                if let Some(e) = out.ended {
                    return say(json!({"child": i, "trouble": format!("{e:?}")}));
                }
            }
        }
    });
    let parent_gone = async {
        use tokio::io::AsyncReadExt;
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = join_all(clients) => {}
        _ = parent_gone => {}
    }
}

/// `netns-up` / `netns-down`.
pub fn netns_cmd(scenario: Scenario) -> Verdict {
    let mut v = Verdict::new(&scenario.name(), "done");
    let result = if scenario == Scenario::NetnsUp {
        Netns::create().map(|ns| {
            ns.leak();
            format!(
                "namespace {} up: host side {}, namespace side {}",
                netns::NAME,
                netns::HOST_ADDR,
                netns::NS_ADDR
            )
        })
    } else {
        netns::teardown();
        Ok(format!("namespace {} removed", netns::NAME))
    };
    match result {
        Ok(d) => {
            v.detail = Some(d);
            v.decide("done", None)
        }
        Err(e) => {
            v.detail = Some(e.to_string());
            v.decide("error", None)
        }
    }
}
