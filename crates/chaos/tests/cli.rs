//! The command line: one JSON line per client on stdout, exit 0 on pass.

mod common;

use std::process::Command;

use common::{chaos_bin, server};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_prints_one_json_line_per_client_and_exits_by_the_verdict() {
    let s = server(&["--seats", "2"]).await;
    let url = s.ws_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(chaos_bin())
            .args([
                "chaos",
                "--scenario",
                "rst",
                "--clients",
                "2",
                "--url",
                &url,
            ])
            .output()
            .expect("run chaos")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for v in &lines {
        assert_eq!(v["scenario"], "rst");
        assert_eq!(v["verdict"], "released");
        assert_eq!(v["pass"], true);
        assert!(v["release_s"].as_f64().unwrap() < 2.0);
        assert!(v["session_id"].is_string());
    }
}

#[test]
fn a_target_off_this_machine_is_refused() {
    let out = Command::new(chaos_bin())
        .args([
            "chaos",
            "--scenario",
            "active",
            "--url",
            "ws://192.0.2.1:80/ws",
        ])
        .output()
        .expect("run chaos");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing"));
}
