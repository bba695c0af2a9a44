//! Claims confirmed by `WAIT 1 250` on a replicated Redis (a master, a
//! replica and a Sentinel, real `redis-server` processes on loopback) do
//! not queue behind each other's `WAIT`: with the replica gone, so that
//! every `WAIT` runs its full 250 ms, twenty claims racing through one
//! client finish in about one `WAIT`, not twenty in a row, and an `ls` on
//! that client meanwhile does not wait for them; each claim is granted
//! once, on its own seat, and the pool counts exactly those seats as used;
//! a second burst reuses the first one's connections. A client built with
//! `wait_connections: 2` never has more than those two lent beside its
//! shared one, however many claims are in flight.
//!
//! The figures in BENCHMARKS.md ("Claims confirmed by WAIT") come from the
//! ignored `wait_latency_figures` here:
//! `cargo nextest run -p seatkeeper-pool --test wait --run-ignored all --no-capture`.

#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use pods::{config, free_seats, raw, wait_until, Pod};
use seatkeeper_pool::{Claim, ClaimError, ClientOptions, PodAgent, PoolClient};
use seatkeeper_testkit::sentinel::SentinelSet;

/// The `WAIT` timeout the client uses (`WAIT_MS` in `src/client.rs`).
const WAIT_MS: u64 = 250;

/// `INFO <section>` of the Redis at `url`.
async fn info(url: &str, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_owned)
}

/// The master's `connected_slaves`.
async fn replicas(set: &SentinelSet) -> u32 {
    let text = info(&set.node_url(0), "replication").await;
    info_field(&text, "connected_slaves")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The replica's process id, as it reports it.
async fn replica_pid(set: &SentinelSet) -> String {
    let text = info(&set.node_url(1), "server").await;
    info_field(&text, "process_id").expect("replica pid")
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal_pid(pid: &str, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal} {pid}");
}

/// The connections a Redis has accepted so far (`conn` is one to it).
async fn accepted(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info_field(&text, "total_connections_received")
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// The ids `CLIENT LIST` shows on the Redis `conn` is one to.
async fn client_ids(conn: &mut redis::aio::MultiplexedConnection) -> HashSet<u64> {
    let text: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(conn)
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// What `n` claims fired at once through one client came to.
struct Burst {
    wall: Duration,
    /// Each claim's own time, sorted.
    latencies: Vec<Duration>,
    granted: Vec<Claim>,
    failed: Vec<ClaimError>,
}

impl Burst {
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies[i.min(self.latencies.len() - 1)]
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label}: {n} claims, wall {wall:.2?}, p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}, \
             granted {g}, failed {f}{codes}",
            n = self.latencies.len(),
            wall = self.wall,
            p50 = self.pct(0.50),
            p99 = self.pct(0.99),
            max = self.latencies.last().copied().unwrap_or_default(),
            g = self.granted.len(),
            f = self.failed.len(),
            codes = if self.failed.is_empty() {
                String::new()
            } else {
                let codes: HashSet<String> = self.failed.iter().map(|e| e.to_string()).collect();
                format!(" ({})", codes.into_iter().collect::<Vec<_>>().join("; "))
            },
        )
    }
}

async fn burst(client: &PoolClient, n: usize) -> Burst {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = client.claim().await;
                (t.elapsed(), r)
            })
        })
        .collect();
    let mut out = Burst {
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(n),
        granted: Vec::new(),
        failed: Vec::new(),
    };
    for t in tasks {
        let (took, r) = t.await.unwrap();
        out.latencies.push(took);
        match r {
            Ok(c) => out.granted.push(c),
            Err(e) => out.failed.push(e),
        }
    }
    out.wall = start.elapsed();
    out.latencies.sort();
    out
}

async fn fleet(url: &str, pods: usize, seats: u32) -> Vec<Pod> {
    let mut fleet = Vec::new();
    for i in 0..pods {
        let mut cfg = config(url, &format!("wait-{i:02}"), seats);
        cfg.ttl = Duration::from_secs(5);
        fleet.push(Pod::start(cfg).await);
    }
    fleet
}

/// Kills the replica and waits until the master has dropped it, so every
/// `WAIT 1 250` runs its whole timeout and the claim stands unconfirmed
/// (a lone master has nothing staler to fail over to).
async fn lose_replica(set: &mut SentinelSet) {
    set.kill(1);
    wait_until(
        Duration::from_secs(10),
        "master sees no replica",
        || async { replicas(set).await == 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_waiting_on_a_missing_replica_do_not_queue_behind_each_other() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let pods = fleet(&url, 2, 30).await;
    let client = PoolClient::new(&url).unwrap();
    // Warm: the client has found the master and loaded the claim script.
    drop(client.claim().await.unwrap());
    lose_replica(&mut set).await;
    let before = free_seats(&url).await;

    const N: usize = 20;
    let claims = {
        let client = client.clone();
        tokio::spawn(async move { burst(&client, N).await })
    };
    // `ls` on the same client while those claims wait on their WAITs.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let listed = client.ls().await;
    let ls_took = t.elapsed();
    let b = claims.await.unwrap();
    eprintln!(
        "{}; ls meanwhile {ls_took:.1?}",
        b.line("FIGURE: replica gone, WAIT times out")
    );

    // Every claim is granted: a lone master's claims stand unconfirmed.
    assert!(b.failed.is_empty(), "{}", b.line("claims failed"));
    // In a row that would be N x 250 ms; side by side about one WAIT.
    let bound = Duration::from_millis(N as u64 * WAIT_MS / 3);
    assert!(
        b.wall < bound,
        "{N} claims took {:?} (bound {bound:?}): they queued behind each other's WAIT",
        b.wall
    );
    assert_eq!(listed.expect("ls during the claims").len(), 2);
    assert!(
        ls_took < bound,
        "ls took {ls_took:?} (bound {bound:?}): it queued behind the claims' WAIT"
    );
    // Each grant is its own seat, redeemed once...
    let agents: std::collections::HashMap<&str, &PodAgent> =
        pods.iter().map(|p| (p.agent.pod_id(), &p.agent)).collect();
    let mut seats = HashSet::new();
    let mut leases = Vec::new();
    for c in &b.granted {
        let lease = agents[c.pod_id.as_str()]
            .redeem(&c.seat_token)
            .await
            .unwrap();
        assert!(
            seats.insert((c.pod_id.clone(), lease.slot())),
            "a seat granted twice"
        );
        leases.push(lease);
    }
    // ...and the pool holds exactly those: no retry took a second seat.
    assert_eq!(free_seats(&url).await, before - N as u32);

    // A second burst reuses the connections the first one opened: the
    // master accepts none meanwhile.
    let mut watch = raw(&set.node_url(0)).await;
    let first = accepted(&mut watch).await;
    let again = burst(&client, N).await;
    let second = accepted(&mut watch).await;
    assert!(again.failed.is_empty(), "{}", again.line("claims failed"));
    assert_eq!(second, first, "the second burst opened connections");
    assert_eq!(free_seats(&url).await, before - 2 * N as u32);
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_lends_no_more_wait_connections_than_its_cap() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let _pods = fleet(&url, 2, 30).await;
    lose_replica(&mut set).await;
    let before_seats = free_seats(&url).await;
    // Everyone on the master before the client: the Sentinel, the pods,
    // this watcher.
    let mut watch = raw(&set.node_url(0)).await;
    let others = client_ids(&mut watch).await;

    const CAP: usize = 2;
    let options = ClientOptions {
        wait_connections: CAP,
    };
    let client = PoolClient::with_options(&url, options).unwrap();
    // Four times the cap in flight: each WAIT runs its 250 ms, so the
    // claims hold their connections long enough to be seen.
    const N: usize = 4 * CAP;
    let claims = {
        let client = client.clone();
        tokio::spawn(async move { burst(&client, N).await })
    };
    let mut most = 0;
    while !claims.is_finished() {
        let ids = client_ids(&mut watch).await;
        most = most.max(ids.difference(&others).count());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = claims.await.unwrap();
    eprintln!("{}; at most {most} connections", b.line("cap 2"));

    // More claims than connections: they waited for one, and all got in.
    assert!(b.failed.is_empty(), "{}", b.line("claims failed"));
    assert_eq!(free_seats(&url).await, before_seats - N as u32);
    assert!(
        most <= 1 + CAP,
        "the client had {most} connections on the master: more than its shared one and {CAP} lent"
    );
    assert!(most >= 2, "never saw a lent connection ({most} in all)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: cargo nextest run -p seatkeeper-pool --test wait --run-ignored all --no-capture"]
async fn wait_latency_figures() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let url = set.url();
    let _pods = fleet(&url, 9, 100).await;
    let client = PoolClient::new(&url).unwrap();
    drop(client.claim().await.unwrap());
    const N: usize = 200;
    let mut watch = raw(&set.node_url(0)).await;

    let opened = accepted(&mut watch).await;
    let b = burst(&client, N).await;
    let opened = accepted(&mut watch).await - opened;
    println!(
        "{}; {opened} connections opened",
        b.line("FIGURE: replica up")
    );
    let b = burst(&client, N).await;
    println!("{}", b.line("FIGURE: replica up, connections warm"));

    // A stopped replica stays connected as far as the master knows, so
    // each claim is unconfirmed and retried (same claim id) until the
    // client's retry window closes.
    let pid = replica_pid(&set).await;
    signal_pid(&pid, "STOP");
    let b = burst(&client, N).await;
    signal_pid(&pid, "CONT");
    println!("{}", b.line("FIGURE: replica SIGSTOPped"));
    wait_until(Duration::from_secs(20), "replica back", || async {
        replicas(&set).await == 1
    })
    .await;
    // 900 seats cover the four bursts (the stopped burst's claims hold
    // their seats until they lapse).
    lose_replica(&mut set).await;
    let b = burst(&client, N).await;
    println!("{}", b.line("FIGURE: replica gone, WAIT times out"));
}
