//! Every chaos scenario against the real server, each against its own
//! server process and all at once, so the whole table takes about as long
//! as its slowest row (the no-hello timeout, 10 s). Grace 3 s, sampling
//! 250 ms, pong timeout 5 s.

mod common;

use std::time::Duration;

use common::{args, server, GRACE, PONG, SLACK, TICK};
use futures_util::future::join_all;
use seatkeeper_chaos::{run_many, Scenario, Verdict};

/// Time a frozen client's window takes to back up into the send queue
/// after it stops reading (the stall clock starts only then).
const FILL: Duration = Duration::from_secs(2);

async fn play(scenario: Scenario) -> (Scenario, Verdict, String) {
    let extra: &[&str] = match scenario {
        // A stream fast enough that a third of it still fills a 32 KiB
        // receive buffer: the send queue is never empty but always moving.
        Scenario::SlowLink | Scenario::Backpressured => &["--engine", "synthetic:20:65536"],
        _ => &[],
    };
    let s = server(extra).await;
    let mut a = args(&s.ws_url(), scenario);
    if scenario == Scenario::Backpressured {
        a.pause_s = 2.0; // shorter than the 3 s grace window
    }
    let mut v = run_many(a).await.expect("scenario setup");
    assert_eq!(v.len(), 1);
    (scenario, v.remove(0), s.log_text())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_reaches_its_verdict() {
    let all = [
        Scenario::Active,
        Scenario::Paused,
        Scenario::SlowLink,
        Scenario::Backpressured,
        Scenario::Frozen,
        Scenario::FrozenBigbuf,
        Scenario::Tunnel,
        Scenario::TunnelDrain,
        Scenario::HalfClose,
        Scenario::Rst,
        Scenario::NoHello,
        Scenario::Flood,
        Scenario::Sigstop,
    ];
    let results = join_all(all.map(|s| tokio::spawn(play(s)))).await;
    let mut failures = Vec::new();
    for r in results {
        let (scenario, v, log) = r.expect("scenario task");
        println!("{}", v.to_json_line());
        let mut problems = Vec::new();
        if !v.pass {
            problems.push(format!("verdict {} (expected {})", v.verdict, v.expected));
        }
        problems.extend(bound_problem(scenario, &v));
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n{}\nserver log:\n{log}",
                scenario.name(),
                problems.join("; "),
                v.to_json_line()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The timing bound each scenario's figure must meet, if it misses it.
fn bound_problem(scenario: Scenario, v: &Verdict) -> Option<String> {
    let release = v.release_s.unwrap_or(f64::INFINITY);
    let stall = GRACE + 2 * TICK + FILL + SLACK;
    let pong = PONG + 2 * TICK + SLACK;
    let leave = Duration::from_secs(1) + SLACK;
    match scenario {
        Scenario::Frozen | Scenario::Sigstop | Scenario::Tunnel
            if release < secs(GRACE) || release > secs(stall) =>
        {
            Some(format!(
                "released after {release:.2} s, not in [{GRACE:?}, {stall:?}]"
            ))
        }
        Scenario::FrozenBigbuf | Scenario::TunnelDrain if release > secs(pong) => {
            Some(format!("released after {release:.2} s > {pong:?}"))
        }
        Scenario::HalfClose | Scenario::Rst if release > secs(leave) => {
            Some(format!("released after {release:.2} s > {leave:?}"))
        }
        Scenario::Active | Scenario::SlowLink | Scenario::Backpressured if v.slices < 10 => {
            Some(format!("only {} slices", v.slices))
        }
        Scenario::NoHello if release < 8.0 => Some(format!(
            "closed after {release:.2} s, before the 10 s hello timeout"
        )),
        _ => None,
    }
}
