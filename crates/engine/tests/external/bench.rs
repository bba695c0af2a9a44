//! Slices per second through the engine link. Not a test: run with
//! `cargo test -p seatkeeper-engine --release --test external -- --ignored --nocapture bench`.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use seatkeeper_engine::{
    external::{
        frame::{encode_slice, SliceHead},
        Limits,
    },
    spec, EngineSpec, OpenRequest,
};
use serde_json::json;
use tokio::{io::AsyncWriteExt, time::Instant};

use crate::support::*;

const WINDOW: Duration = Duration::from_secs(3);

/// Counts what arrives in `WINDOW` after a short warm-up.
async fn measure(sink: &Count) -> f64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (n0, t0) = (sink.0.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(WINDOW).await;
    let n1 = sink.0.load(Ordering::Relaxed);
    (n1 - n0) as f64 / t0.elapsed().as_secs_f64()
}

fn report(what: &str, bytes: usize, rate: f64) {
    println!(
        "bench {what:<28} {bytes:>6} B  {rate:>11.0} slices/s  {:>8.1} MB/s",
        rate * bytes as f64 / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_python_flood_engine() {
    for bytes in [64usize, 1024, 9600] {
        let engine = bind_unix("bench-py", Limits::default()).await;
        let _py = PyEngine::spawn("flood_engine.py", engine.local_addr(), &[]);
        ready(&engine).await;
        let sink = Arc::new(Count::default());
        let _s = open(&engine, "bench", json!({"bytes": bytes}), sink.clone())
            .await
            .unwrap();
        report("external, python flood", bytes, measure(&sink).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_rust_flood_engine() {
    for bytes in [64usize, 1024, 9600] {
        let engine = bind_unix("bench-rs", Limits::default()).await;
        let (mut fake, _) = Fake::hello(engine.local_addr(), true).await;
        ready(&engine).await;
        let sink = Arc::new(Count::default());
        let (opened, start) = tokio::join!(
            open(&engine, "bench", json!({}), sink.clone()),
            fake.accept_session()
        );
        let _s = opened.unwrap();
        let handle = start["handle"].as_u64().unwrap() as u32;
        let head = SliceHead {
            handle,
            kind: 0xFFFF,
            flags: 3,
            timestamp_us: 0,
        };
        // 64 slices per write, so the fake's own syscalls are not the limit.
        let batch: Vec<u8> = (0..64)
            .flat_map(|_| encode_slice(&head, &vec![7u8; bytes]).to_vec())
            .collect();
        let writer = tokio::spawn(async move { while fake.w.write_all(&batch).await.is_ok() {} });
        report("external, rust flood", bytes, measure(&sink).await);
        writer.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_built_in_synthetic() {
    for bytes in [64usize, 1024, 9600] {
        let spec = EngineSpec::Synthetic {
            rate_hz: 10_000_000.0,
            bytes,
        };
        let engine = spec::built_in(&spec).unwrap();
        let sink = Arc::new(Count::default());
        let _s = engine
            .open(OpenRequest {
                session_id: "bench".into(),
                config: Default::default(),
                sink: sink.clone(),
                shutdown: tokio_util::sync::CancellationToken::new(),
            })
            .await
            .unwrap();
        report("built-in synthetic (ceiling)", bytes, measure(&sink).await);
    }
}
