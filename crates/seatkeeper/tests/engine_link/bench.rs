//! Figures for BENCHMARKS.md (`--ignored`): slices the demo engine produces
//! during a 5 s detached window, and how params floods at it end.

use std::{collections::BTreeMap, time::Duration};

use seatkeeper_testkit::{wait_until, Client, Event, Server};
use serde_json::json;

use crate::{fairness::flood, session, BIN, SOON};

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn bench_demo_slices_produced_while_detached() {
    let s = Server::start(BIN, &["--engine", "demo", "--resume-window-s", "30"]).await;
    let mut c = Client::connect(s.addr).await;
    let r = c.hello(json!({})).await;
    let id = r["session_id"].as_str().unwrap().to_owned();
    c.take_slices(10).await;
    c.rst();
    wait_until(SOON, || async {
        (session(&s, &id).await["state"] == "detached").then_some(())
    })
    .await
    .expect("detached");
    let at = |v: serde_json::Value| v["slices_produced"].as_u64().unwrap();
    let before = at(session(&s, &id).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = at(session(&s, &id).await);
    eprintln!(
        "demo: {} slices produced in a 5 s detached window",
        after - before
    );
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn bench_demo_params_flood_outcomes() {
    let s = Server::start(BIN, &["--engine", "demo", "--seats", "1"]).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for n in [100usize, 300, 450, 2_000] {
        for _ in 0..10 {
            let mut c = Client::connect(s.addr).await;
            c.hello(json!({})).await;
            flood(&mut c, n, 16).await;
            c.send(json!({"type": "bye"})).await;
            let (errors, close) = c.errors_until_closed(SOON).await;
            let close = match close {
                Some(Event::Closed(Some(code @ (1000 | 1008)))) => code,
                other => panic!("{n} params: {errors:?} {other:?}: only 1000 or 1008"),
            };
            *seen
                .entry(format!("{n} params: {errors:?} close {close}"))
                .or_default() += 1;
            s.wait_released(SOON).await.expect("released");
        }
    }
    for (outcome, count) in seen {
        eprintln!("{count:>3} × {outcome}");
    }
}
