//! The engine link through the real binary: a small engine written here in
//! Rust (`fake`) connects to the server's engine socket, and real clients
//! connect over loopback.
//!
//! # Layout
//! - `fake`: the test engine (slow reader on demand, records what it hears).
//! - `fairness`: floods are the flooder's fault (1008), bystanders stream on,
//!   `session_end` always arrives.
//! - `bench`: figures for BENCHMARKS.md (`--ignored`).
//! - `lifecycle`: `session_detached`, `session_resumed`, `progress`, stats,
//!   `welcome.max_sessions`, the knob schema; the demo engine while detached.

mod bench;
mod fairness;
mod fake;
mod lifecycle;

use std::time::Duration;

use seatkeeper_testkit::{wait_until, Client, Event, Server};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
/// Generous bound for anything that should happen "soon".
const SOON: Duration = Duration::from_secs(20);

/// A fresh Unix socket path for one test.
fn socket_path(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("sk-link-{}-{name}.sock", std::process::id()))
        .display()
        .to_string()
}

/// Waits for `/readyz` to say 200.
async fn ready(s: &Server) {
    let ok = wait_until(SOON, || async {
        (s.get("/readyz").await.ok()?.0 == 200).then_some(())
    })
    .await;
    assert!(ok.is_some(), "never ready: {}", s.log_text());
}

/// Reads until the connection closes; returns the `error` codes and the close code.
async fn until_closed(c: &mut Client) -> (Vec<String>, Option<Event>) {
    let mut codes = Vec::new();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next(left).await {
            Some(Event::Text(v)) if v["type"] == "error" => {
                codes.push(v["code"].as_str().unwrap_or_default().to_owned())
            }
            Some(Event::Text(_) | Event::Slice(..)) => {}
            other => return (codes, other),
        }
    }
}

/// The session object of `GET /sessions/{id}`.
async fn session(s: &Server, id: &str) -> Value {
    s.get_json(&format!("/sessions/{id}")).await
}
