//! The benchmark suite runner: starts each peer, measures every figure,
//! writes `results.json`. `bench/run.sh` builds everything, runs this, and
//! draws the plots.

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use seatkeeper_bench::{
    figures::{field, latency, live, release, resume, throughput, Bench},
    peer::Paths,
};
use seatkeeper_chaos::Scenario;
use serde_json::{json, Value};

/// Side-by-side benchmarks: seatkeeper, Python websockets (with and without
/// the watchdog), plain tokio-tungstenite, raw TCP.
#[derive(Debug, Parser)]
struct Args {
    /// The seatkeeper binary.
    #[arg(long)]
    seatkeeper: PathBuf,
    /// The seatkeeper-chaos binary.
    #[arg(long)]
    chaos: PathBuf,
    /// The tt-peer binary.
    #[arg(long)]
    tt_peer: PathBuf,
    /// The raw-tcp binary.
    #[arg(long)]
    raw_tcp: PathBuf,
    /// bench/py_peer.py.
    #[arg(long)]
    py_peer: PathBuf,
    /// Python interpreter.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Where results.json goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Grace window for seatkeeper and the Python watchdog, seconds.
    #[arg(long, default_value_t = 5.0)]
    grace_s: f64,
    /// Sampling interval for both, milliseconds.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Dead clients per release scenario and peer.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Longest wait for a release, seconds.
    #[arg(long, default_value_t = 70.0)]
    timeout_s: f64,
    /// Figures to run (comma-separated):
    /// release,blackhole,live,throughput,latency,resume,field.
    #[arg(
        long,
        default_value = "release,blackhole,live,throughput,latency,resume,field"
    )]
    only: String,
    /// field: how long each live client on a shaped link is watched, seconds.
    #[arg(long, default_value_t = 60.0)]
    field_observe_s: f64,
    /// field: which scenarios (comma-separated): active (live), frozen.
    #[arg(long, default_value = "active,frozen")]
    field_scenarios: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let b = Bench {
        paths: Paths {
            seatkeeper: a.seatkeeper.clone(),
            tt_peer: a.tt_peer.clone(),
            raw_tcp: a.raw_tcp.clone(),
            py_peer: a.py_peer.clone(),
            python: a.python.clone(),
            logs: std::env::temp_dir().join("seatkeeper-bench-logs"),
        },
        chaos: a.chaos.clone(),
        grace_s: a.grace_s,
        interval_ms: a.interval_ms,
        runs: a.runs,
        timeout_s: a.timeout_s,
    };
    let want = |f: &str| a.only.split(',').any(|x| x.trim() == f);
    let mut results = json!({
        "config": {"grace_s": a.grace_s, "interval_ms": a.interval_ms, "runs": a.runs,
                   "timeout_s": a.timeout_s},
    });
    let t0 = Instant::now();
    let step = |name: &str| eprintln!("[{:>6.1} s] {name}", t0.elapsed().as_secs_f64());
    let mut put = |k: &str, v: anyhow::Result<Value>| {
        let v = v.unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        eprintln!("{k}: {v}");
        results[k] = v;
    };
    if want("release") {
        step("release: frozen");
        put("frozen", release::concurrent(&b, Scenario::Frozen).await);
        step("release: tunnel");
        put("tunnel", release::concurrent(&b, Scenario::Tunnel).await);
        step("release: frozen-bigbuf");
        put(
            "frozen_bigbuf",
            release::concurrent(&b, Scenario::FrozenBigbuf).await,
        );
        step("release: tunnel-drain");
        put(
            "tunnel_drain",
            release::concurrent(&b, Scenario::TunnelDrain).await,
        );
    }
    if want("blackhole") {
        step("release: blackhole");
        put("blackhole", release::blackhole(&b).await);
    }
    if want("live") {
        step("false reaps");
        put("live", live::false_reaps(&b).await);
    }
    if want("throughput") {
        step("throughput");
        put("throughput", throughput::throughput(&b).await);
    }
    if want("latency") {
        step("latency: 1 session, 100 Hz × 19.2 KB");
        put(
            "latency_1",
            latency::steady(&b, 1, "synthetic:100:19200").await,
        );
        step("latency: 100 sessions, 10 Hz × 1 KiB");
        put(
            "latency_100",
            latency::steady(&b, 100, "synthetic:10:1024").await,
        );
    }
    if want("field") {
        step("field: shaped links");
        let scenarios: Vec<Scenario> = [Scenario::Active, Scenario::Frozen]
            .into_iter()
            .filter(|s| a.field_scenarios.split(',').any(|x| x.trim() == s.name()))
            .collect();
        put(
            "field",
            field::field(&b, a.field_observe_s, &scenarios).await,
        );
    }
    if want("resume") {
        step("resume");
        put("resume", resume::resume(&b).await);
    }
    step("done");
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join("results.json");
    // Merge into an existing file so a partial run (--only) updates its figures.
    let mut merged: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| json!({}));
    if let (Some(m), Some(r)) = (merged.as_object_mut(), results.as_object()) {
        for (k, v) in r {
            m.insert(k.clone(), v.clone());
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&merged)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
