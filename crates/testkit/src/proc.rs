//! Processes under test: run the binary to completion, find a `serve` by
//! the address it listens on and read its descriptors and memory (from
//! `/proc`).

use std::{net::SocketAddr, process::Stdio, time::Duration};

use tokio::process::Command;

/// Runs `bin` with `args` (20 s at most); returns exit code, stdout and
/// stderr.
pub async fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("seatkeeper {args:?} did not finish in 20 s"))
    .expect("spawn seatkeeper");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `bin` with `args` like [`run`]; its exit code and the one JSON
/// line it printed on stdout (anything else panics, with stderr).
pub async fn run_json(bin: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let (code, out, err) = run(bin, args).await;
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON line ({e}): {out:?} / {err}"));
    (code, v)
}

/// The pid of the `serve` process listening on `addr`, from /proc.
pub fn serve_pid(addr: SocketAddr) -> Option<u32> {
    let want = addr.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        let serve = args.iter().any(|a| *a == b"serve");
        let listen = args
            .windows(2)
            .any(|w| w[0] == b"--listen" && w[1] == want.as_bytes());
        if serve && listen {
            return Some(pid);
        }
    }
    None
}

/// Open descriptors and resident memory (KiB) of a process, from /proc.
pub fn usage(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (fds, rss)
}
