//! Client processes: `sigstop` stops one with SIGSTOP, `blackhole` runs one
//! inside the network namespace. The child is this same program run as
//! `chaos --scenario internal-child`; it prints one JSON line per event on
//! stdout, which [`Child`] reads.

use std::{process::Stdio, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child as Proc, Command},
    sync::{Mutex, Notify},
    time::Instant,
};

use crate::{args::ChaosArgs, ChaosError};

/// What the parent knows about one of the child's clients.
#[derive(Debug, Clone, Default)]
pub struct ChildClient {
    /// Session id, once ready.
    pub session_id: Option<String>,
    /// Slices read so far (last progress line).
    pub slices: u64,
    /// An error or ending the child reported.
    pub trouble: Option<String>,
}

/// A running child client process.
pub struct Child {
    proc: Proc,
    state: Arc<Mutex<Vec<ChildClient>>>,
    changed: Arc<Notify>,
}

impl Child {
    /// Starts `prefix… exe chaos --scenario internal-child` with `k`
    /// clients against `args.url`, living at most `lifetime`.
    pub fn spawn(
        args: &ChaosArgs,
        prefix: &[String],
        k: usize,
        lifetime: Duration,
    ) -> Result<Self, ChaosError> {
        let exe = match &args.child_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(ChaosError::io("current_exe"))?,
        };
        let mut argv: Vec<String> = prefix.to_vec();
        argv.push(path_str(&exe));
        argv.extend(
            [
                "chaos",
                "--scenario",
                "internal-child",
                "--url",
                &args.url,
                "--clients",
                &k.to_string(),
                "--timeout-s",
                &lifetime.as_secs_f64().to_string(),
                "--client-id",
                &args.client_id,
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        if args.allow_remote {
            argv.push("--allow-remote".into());
        }
        if let Some(s) = &args.sessions_url {
            argv.extend(["--sessions-url".to_owned(), s.clone()]);
        }
        let mut proc = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ChaosError::Child(format!("cannot start {}: {e}", argv.join(" "))))?;
        let state = Arc::new(Mutex::new(vec![ChildClient::default(); k]));
        let changed = Arc::new(Notify::new());
        let stdout = proc
            .stdout
            .take()
            .ok_or_else(|| ChaosError::Child("no stdout".into()))?;
        let (s, n) = (Arc::clone(&state), Arc::clone(&changed));
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let Some(i) = v["child"].as_u64().map(|i| i as usize) else {
                    continue;
                };
                let mut st = s.lock().await;
                if let Some(c) = st.get_mut(i) {
                    if let Some(id) = v["session_id"].as_str() {
                        c.session_id = Some(id.to_owned());
                    }
                    if let Some(n) = v["slices"].as_u64() {
                        c.slices = n;
                    }
                    if let Some(t) = v["trouble"].as_str() {
                        c.trouble = Some(t.to_owned());
                    }
                }
                drop(st);
                n.notify_waiters();
            }
            n.notify_waiters();
        });
        Ok(Self {
            proc,
            state,
            changed,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.proc.id()
    }

    /// Waits until every client is ready (or reported trouble), at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> Vec<ChildClient> {
        let end = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let st = self.snapshot().await;
            if st
                .iter()
                .all(|c| c.session_id.is_some() || c.trouble.is_some())
                || Instant::now() >= end
            {
                return st;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// What the child reported so far.
    pub async fn snapshot(&self) -> Vec<ChildClient> {
        self.state.lock().await.clone()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `KILL`) with kill(1).
    pub fn signal(&self, sig: &str) -> Result<(), ChaosError> {
        let pid = self
            .pid()
            .ok_or_else(|| ChaosError::Child("already exited".into()))?;
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .map_err(ChaosError::io("kill"))?
            .success();
        if ok {
            Ok(())
        } else {
            Err(ChaosError::Child(format!("kill -{sig} {pid} failed")))
        }
    }

    /// Kills the child (a stopped one too) and reaps it.
    pub async fn kill(mut self) {
        let _ = self.proc.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.proc.wait()).await;
    }
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}
