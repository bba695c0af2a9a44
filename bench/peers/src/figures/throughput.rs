//! One session's throughput: MB/s with 1 MiB slices against raw TCP on
//! loopback, and slices/s with 4 KiB slices — each peer alone on the
//! machine, the load generator in this process.

use std::process::Stdio;

use seatkeeper_chaos::load::{measure, LoadArgs};
use serde_json::{json, Value};
use tokio::process::Command;

use super::Bench;
use crate::peer::{Kind, Peer};

const SECONDS: f64 = 6.0;

/// Raw TCP, writer and reader in two processes; median of three.
pub async fn raw_tcp(b: &Bench) -> anyhow::Result<f64> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let secs = SECONDS.to_string();
        let mut writer = Command::new(&b.paths.raw_tcp)
            .args(["--serve", &addr, "--seconds", &secs])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let out = Command::new(&b.paths.raw_tcp)
            .args(["--connect", &addr, "--seconds", &secs])
            .output()
            .await?;
        let _ = writer.kill().await;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        runs.push(v["mb_per_s"].as_f64().unwrap_or(0.0));
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[1])
}

/// Slices the engine made (sent + dropped) per second, from `/sessions`
/// sampled 1 s and 5 s into the run — seatkeeper lists both per session;
/// the peers do not (`None`).
async fn engine_rate(peer: &Peer) -> Option<f64> {
    let made = |doc: String| -> Option<f64> {
        let v: Value = serde_json::from_str(&doc).ok()?;
        let s = v["sessions"].get(0)?;
        Some(s["slices_sent"].as_f64()? + s["slices_dropped"].as_f64()?)
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let t0 = std::time::Instant::now();
    let a = made(peer.get("/sessions").await.ok()?)?;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let b = made(peer.get("/sessions").await.ok()?)?;
    Some((b - a) / t0.elapsed().as_secs_f64())
}

/// One session against each peer with `engine` and `window`.
async fn one_session(
    b: &Bench,
    engine: &str,
    window: (u64, u64),
    rate: f64,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let mut setup = b.setup(1, engine);
        setup.window = Some(window);
        let peer = Peer::start(kind, &b.paths, &setup).await?;
        let mut a = LoadArgs::new(peer.ws_url(), 1, SECONDS);
        a.settle_s = 0.5;
        let (r, engine_rate) = tokio::join!(measure(a), engine_rate(&peer));
        let r = r?;
        out.push(json!({
            "peer": kind.name(), "asked_hz": rate, "mb_per_s": r.mb_per_s,
            "slices_per_s": r.slices_per_s, "engine_hz": engine_rate,
            "dropped": r.dropped, "ended_early": r.ended_early, "errors": r.errors,
            "latency_p50_us": r.latency.p50_us, "latency_p99_us": r.latency.p99_us,
        }));
        peer.stop().await;
    }
    Ok(out)
}

/// 1 MiB slices asked at the raw TCP rate; 4 KiB slices asked at 200k/s.
pub async fn throughput(b: &Bench) -> anyhow::Result<Value> {
    let raw = raw_tcp(b).await?;
    let mib = 1u64 << 20;
    let rate = (raw * 1e6 / mib as f64).ceil();
    let big = one_session(b, &format!("synthetic:{rate}:{mib}"), (64, 64 * mib), rate).await?;
    let big: Vec<Value> = big
        .into_iter()
        .map(|mut v| {
            let ratio = v["mb_per_s"].as_f64().unwrap_or(0.0) / raw;
            v["ratio_to_raw"] = json!(ratio);
            v
        })
        .collect();
    let small = one_session(b, "synthetic:200000:4096", (8192, 64 * mib), 200_000.0).await?;
    Ok(json!({"raw_tcp_mb_per_s": raw, "slices_1mib": big, "slices_4kib": small}))
}
