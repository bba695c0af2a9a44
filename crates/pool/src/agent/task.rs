//! The agent task: heartbeats and every pod-side script, one at a time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::{Command, Lease, PodStatus, Refusal, Shared, TokenProblem};
use crate::conn::Connector;
use crate::metrics::PoolMetrics;
use crate::scripts;

/// First retry after a failed heartbeat; doubles up to the heartbeat
/// interval, so a pod re-registers within one interval of Redis returning.
const RETRY_BASE: Duration = Duration::from_millis(100);

pub(super) struct Task {
    shared: Arc<Shared>,
    status: Box<dyn Fn() -> PodStatus + Send + Sync>,
    queue: mpsc::Receiver<Command>,
    conn: Connector,
    backoff: Backoff,
    /// The connection generation of the last accepted heartbeat: a change
    /// means the heartbeat may reach another server (a failover).
    beat_generation: u64,
    /// The pod's labels as the JSON object the scripts take.
    labels: String,
}

enum Event {
    Stop,
    Command(Command),
    Beat,
}

/// The heartbeat script's answer: status, registered now, lapsed, fenced,
/// resynced, reserved.
type BeatAnswer = (String, u8, u64, u64, u64, u32);

impl Task {
    pub(super) fn new(
        shared: Arc<Shared>,
        status: Box<dyn Fn() -> PodStatus + Send + Sync>,
        queue: mpsc::Receiver<Command>,
        conn: Connector,
    ) -> Self {
        let backoff = Backoff::new(RETRY_BASE, shared.cfg.heartbeat_interval());
        let labels = serde_json::to_string(&shared.cfg.labels).unwrap_or_else(|_| "{}".into());
        Self {
            shared,
            status,
            queue,
            conn,
            backoff,
            beat_generation: 0,
            labels,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken, stopped: CancellationToken) {
        let mut next_beat = Instant::now();
        loop {
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => Event::Stop,
                Some(cmd) = self.queue.recv() => Event::Command(cmd),
                () = tokio::time::sleep_until(next_beat) => Event::Beat,
                () = self.shared.nudge.notified() => Event::Beat,
            };
            match event {
                Event::Stop => break,
                Event::Command(Command::Redeem { hash, reply }) => {
                    // If the caller gave up, the lease comes back and its
                    // drop releases the seat.
                    let _ = reply.send(self.redeem(hash).await);
                }
                Event::Command(Command::Release { slot, epoch }) => {
                    self.release(slot, epoch).await;
                    // Publish the smaller session count now, not at the tick.
                    self.shared.nudge.notify_one();
                }
                Event::Beat => {
                    next_beat = Instant::now()
                        + if self.heartbeat().await {
                            self.backoff.reset();
                            self.shared.cfg.heartbeat_interval()
                        } else {
                            self.backoff.next(rand::random_range(0.5..=1.0))
                        };
                }
            }
        }
        self.queue.close();
        self.deregister().await;
        self.shared.set_redis_ok(false);
        stopped.cancel();
    }

    async fn heartbeat(&mut self) -> bool {
        let status = (self.status)();
        let mut leases: Vec<(u64, u32)> = self
            .shared
            .leases()
            .iter()
            .map(|(&epoch, &slot)| (epoch, slot))
            .collect();
        // Oldest first: if two leases ever name one slot, the newest wins.
        leases.sort_unstable();
        let held = u32::try_from(leases.len())
            .unwrap_or(u32::MAX)
            .max(status.seats_held);
        let answer: RedisResult<BeatAnswer> = match self.conn.get().await {
            Ok(mut conn) => {
                // A new connection may be to a new master, whose copy of
                // the seats can be older than what this pod holds.
                let generation = self.conn.generation();
                let assert = generation != self.beat_generation
                    || self.shared.assert_leases.swap(false, Ordering::Relaxed);
                let call = self.heartbeat_call(status, &leases, held, assert);
                let answer = call.invoke_async(&mut conn).await;
                if answer.is_ok() {
                    let m = &self.shared.metrics;
                    PoolMetrics::add(&m.reconnects, generation - self.beat_generation);
                    self.beat_generation = generation;
                    self.conn.succeeded();
                } else if assert {
                    self.shared.assert_leases.store(true, Ordering::Relaxed);
                }
                answer
            }
            Err(e) => Err(e),
        };
        let cfg = &self.shared.cfg;
        let m = &self.shared.metrics;
        match answer {
            Ok((status, fresh, lapsed, fenced, resynced, reserved)) if status == "ok" => {
                self.shared.set_redis_ok(true);
                self.shared.reserved.store(reserved, Ordering::Relaxed);
                let was = self.shared.registered.swap(true, Ordering::Relaxed);
                if fresh == 1 {
                    PoolMetrics::inc(&m.registrations);
                    tracing::info!(pod_id = %cfg.pod_id, "registered in the seat pool");
                } else if !was {
                    tracing::info!(pod_id = %cfg.pod_id, "seat pool reachable again");
                }
                PoolMetrics::add(&m.lapsed, lapsed);
                PoolMetrics::add(&m.resynced, resynced);
                PoolMetrics::add(&m.fenced, fenced);
                if resynced > 0 {
                    tracing::info!(resynced, "heartbeat freed seats whose release was lost");
                }
                if fenced > 0 {
                    tracing::warn!(
                        fenced,
                        "a newer claim owns the slot of a live lease; not re-publishing the stale epoch"
                    );
                }
                true
            }
            Ok(_) => {
                self.shared.set_redis_ok(true);
                let first = fresh_start(m);
                PoolMetrics::inc(&m.heartbeat_errors);
                if self.shared.registered.swap(false, Ordering::Relaxed) || first {
                    tracing::warn!(
                        pod_id = %cfg.pod_id,
                        "pod id is registered by another live instance; retrying until its record expires"
                    );
                }
                false
            }
            Err(e) => {
                self.redis_failed(&e);
                PoolMetrics::inc(&m.heartbeat_errors);
                false
            }
        }
    }

    fn heartbeat_call(
        &self,
        status: PodStatus,
        leases: &[(u64, u32)],
        held: u32,
        assert: bool,
    ) -> redis::ScriptInvocation<'static> {
        let cfg = &self.shared.cfg;
        let mut call = scripts::HEARTBEAT.prepare_invoke();
        call.arg(&cfg.pod_id)
            .arg(&self.shared.instance)
            .arg(&cfg.advertise_url)
            .arg(cfg.seats_total)
            .arg(u8::from(status.engine_ready && !status.draining))
            .arg(u8::from(status.draining))
            .arg(held)
            .arg(millis(cfg.claim_ttl))
            .arg(millis(cfg.ttl))
            .arg(self.shared.max_epoch.load(Ordering::Relaxed))
            .arg(u8::from(assert))
            .arg(&self.labels);
        for (epoch, slot) in leases {
            call.arg(slot).arg(epoch);
        }
        call
    }

    async fn redeem(&mut self, hash: String) -> Result<Lease, Refusal> {
        let cfg = &self.shared.cfg;
        let answer: RedisResult<(String, String, i64, i64)> = async {
            let mut conn = self.conn.get().await?;
            scripts::REDEEM
                .arg(&cfg.pod_id)
                .arg(&self.shared.instance)
                .arg(hash)
                .invoke_async(&mut conn)
                .await
        }
        .await;
        let (status, reason, slot, epoch) = answer.map_err(|e| {
            self.redis_failed(&e);
            Refusal::PoolUnavailable("Redis unreachable")
        })?;
        let problem = match (status.as_str(), reason.as_str()) {
            ("ok", _) => {
                let (Ok(slot), Ok(epoch)) = (u32::try_from(slot), u64::try_from(epoch)) else {
                    return Err(Refusal::PoolUnavailable("unexpected answer from Redis"));
                };
                let mut leases = self.shared.leases();
                if leases.values().any(|s| *s == slot) {
                    // The pod is the fencing authority: the first token it
                    // admitted for this seat keeps it. Redis's claim came
                    // from a copy that lost our lease; put the lease back.
                    drop(leases);
                    PoolMetrics::inc(&self.shared.metrics.seat_taken);
                    self.shared.assert_leases.store(true, Ordering::Relaxed);
                    self.shared.nudge.notify_one();
                    tracing::warn!(slot, epoch, "refused a second token for a held seat");
                    return Err(Refusal::BadSeatToken(TokenProblem::SeatTaken));
                }
                leases.insert(epoch, slot);
                drop(leases);
                let _ =
                    self.shared
                        .reserved
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                            Some(r.saturating_sub(1))
                        });
                self.shared.max_epoch.fetch_max(epoch, Ordering::Relaxed);
                tracing::debug!(slot, epoch, "seat token redeemed");
                return Ok(Lease::new(Arc::clone(&self.shared), slot, epoch));
            }
            (_, "used") => TokenProblem::Used,
            (_, "expired") => TokenProblem::Expired,
            (_, "unknown") => TokenProblem::Unknown,
            _ => {
                // Our record vanished (it expired or another instance took
                // it): re-register before admitting anyone.
                self.shared.registered.store(false, Ordering::Relaxed);
                self.shared.nudge.notify_one();
                return Err(Refusal::PoolUnavailable("pod not registered in the pool"));
            }
        };
        Err(Refusal::BadSeatToken(problem))
    }

    async fn release(&mut self, slot: u32, epoch: u64) {
        if !self.shared.registered.load(Ordering::Relaxed) {
            // The heartbeat that re-registers publishes only live leases.
            return;
        }
        let cfg = &self.shared.cfg;
        let answer: RedisResult<i64> = async {
            let mut conn = self.conn.get().await?;
            scripts::RELEASE
                .arg(&cfg.pod_id)
                .arg(&self.shared.instance)
                .arg(slot)
                .arg(epoch)
                .invoke_async(&mut conn)
                .await
        }
        .await;
        let m = &self.shared.metrics;
        match answer {
            Ok(1) => {
                PoolMetrics::inc(&m.released);
                tracing::debug!(slot, epoch, "seat released");
            }
            Ok(0) => {
                PoolMetrics::inc(&m.fenced);
                tracing::warn!(slot, epoch, "release fenced: a newer claim owns this slot");
            }
            Ok(_) => {}
            Err(e) => self.redis_failed(&e),
        }
    }

    async fn deregister(&mut self) {
        let cfg = &self.shared.cfg;
        let answer: RedisResult<i64> = async {
            let mut conn = self.conn.get().await?;
            scripts::DEREGISTER
                .arg(&cfg.pod_id)
                .arg(&self.shared.instance)
                .arg(&self.labels)
                .invoke_async(&mut conn)
                .await
        }
        .await;
        match answer {
            Ok(1) => tracing::info!(pod_id = %cfg.pod_id, "left the seat pool"),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                pod_id = %cfg.pod_id,
                error = %e,
                "could not leave the seat pool; the record expires within the pool TTL"
            ),
        }
    }

    fn redis_failed(&self, error: &redis::RedisError) {
        self.conn.forget();
        if self.shared.redis_ok.load(Ordering::Relaxed) || fresh_start(&self.shared.metrics) {
            tracing::warn!(
                redis = %crate::config::redact_url(&self.shared.cfg.redis_url),
                error = %error,
                "seat pool unreachable: refusing new sessions, keeping current ones, retrying"
            );
        } else {
            tracing::debug!(error = %error, "seat pool still unreachable");
        }
        self.shared.set_redis_ok(false);
    }
}

/// True until the first error is counted: the first failure after start is
/// worth a warning even though the state did not change.
fn fresh_start(m: &PoolMetrics) -> bool {
    m.heartbeat_errors.load(Ordering::Relaxed) == 0
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
