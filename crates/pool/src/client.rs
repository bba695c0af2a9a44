//! The router's side of the pool: claim a seat, list pods.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::claim::{Claim, ClaimError, ScriptAnswer};
use crate::config::{check_label, MAX_LABELS};
use crate::conn::{Connector, Target};
use crate::ls::PodInfo;
use crate::metrics::{ClaimMetrics, PoolMetrics};
use crate::{scripts, token};

/// How long one Redis round trip of a claim or `ls` may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a claim keeps retrying (same claim id) through a failover
/// before it answers `pool_unavailable`.
const RETRY_WINDOW: Duration = Duration::from_secs(4);

/// `WAIT 1 <ms>` after a claim on a replicated Redis: kept well under the
/// response timeout so a missing replica costs a claim this, not an error.
const WAIT_MS: u64 = 250;

/// A Redis failure seen by a claim, `ls` or the allocator.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The Redis URL does not parse.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis could not be reached or failed the request.
    #[error("seat pool unavailable: {0}")]
    Unavailable(#[source] redis::RedisError),
    /// No replica confirmed the claim in time (Sentinel mode): it may not
    /// survive a failover, so its token is not handed out. Retry.
    #[error("seat pool unavailable: no replica confirmed the claim")]
    Unconfirmed,
    /// The claim id was used before with another seat token.
    #[error("claim_id already used for another claim")]
    ClaimIdConflict,
    /// A selector or claim id is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Redis answered something the pool scripts never send.
    #[error("unexpected answer from the pool: {0}")]
    Protocol(String),
    /// The allocator's listener failed.
    #[error("allocator: {0}")]
    Io(#[from] std::io::Error),
}

impl PoolError {
    /// The stable `error` code for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_redis_url",
            Self::Unavailable(_) | Self::Io(_) | Self::Unconfirmed => "pool_unavailable",
            Self::ClaimIdConflict => "claim_id_conflict",
            Self::BadRequest(_) => "bad_request",
            Self::Protocol(_) => "pool_protocol",
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Unconfirmed)
    }
}

type RedisResultString = redis::RedisResult<String>;

/// What to claim: optionally only on pods with these labels, optionally
/// idempotent on a caller-chosen id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Labels a pod must carry (all of them); empty: any pod.
    pub selector: BTreeMap<String, String>,
    /// A caller-chosen id (22-128 characters of `[A-Za-z0-9._-]`): running
    /// the same claim again returns the same seat and the same token (the
    /// token is derived from the id, so keep the id as secret as a token).
    pub claim_id: Option<String>,
}

impl ClaimRequest {
    /// Checks the selector and the claim id.
    pub fn validate(&self) -> Result<(), PoolError> {
        if self.selector.len() > MAX_LABELS {
            return Err(PoolError::BadRequest(format!(
                "selector: at most {MAX_LABELS} labels"
            )));
        }
        for (k, v) in &self.selector {
            check_label(k, v).map_err(|e| PoolError::BadRequest(format!("selector: {e}")))?;
        }
        if let Some(id) = &self.claim_id {
            let ok = (22..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(PoolError::BadRequest(
                    "claim_id must be 22-128 characters of A-Z a-z 0-9 . _ -".into(),
                ));
            }
        }
        Ok(())
    }
}

/// How a [`PoolClient`] is built, beyond its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// The most connections lent at once, beside the shared one, to claims
    /// confirmed by `WAIT` (`redis+sentinel://` URLs only): one per claim
    /// in flight; more claims wait (up to 2 s, then retry) for a free one.
    /// In [`Self::WAIT_CONNECTIONS`]; default
    /// [`Self::DEFAULT_WAIT_CONNECTIONS`].
    pub wait_connections: usize,
}

impl ClientOptions {
    /// The default [`Self::wait_connections`].
    pub const DEFAULT_WAIT_CONNECTIONS: usize = 32;
    /// The allowed [`Self::wait_connections`].
    pub const WAIT_CONNECTIONS: RangeInclusive<usize> = 1..=1024;

    /// Checks [`Self::wait_connections`].
    pub fn validate(&self) -> Result<(), PoolError> {
        if !Self::WAIT_CONNECTIONS.contains(&self.wait_connections) {
            return Err(PoolError::BadRequest(format!(
                "wait_connections must be {:?}, got {}",
                Self::WAIT_CONNECTIONS,
                self.wait_connections
            )));
        }
        Ok(())
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            wait_connections: Self::DEFAULT_WAIT_CONNECTIONS,
        }
    }
}

/// A reusable handle on the pool for routers: one cached connection,
/// reconnected (through Sentinel when configured) after failures, and the
/// claim figures. On a replicated Redis each claim runs on a connection of
/// its own for its write and `WAIT` (up to
/// [`ClientOptions::wait_connections`] at once, kept for reuse), so claims
/// do not wait out each other's `WAIT`.
#[derive(Clone)]
pub struct PoolClient {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connector,
    metrics: ClaimMetrics,
}

impl PoolClient {
    /// Parses the URL (`redis://…` or `redis+sentinel://…`); connects on
    /// first use. Default [`ClientOptions`].
    pub fn new(redis_url: &str) -> Result<Self, PoolError> {
        Self::with_options(redis_url, ClientOptions::default())
    }

    /// Like [`Self::new`], with `options` (checked first: a bad one is
    /// [`PoolError::BadRequest`]).
    pub fn with_options(redis_url: &str, options: ClientOptions) -> Result<Self, PoolError> {
        options.validate()?;
        let target = Target::parse(redis_url).map_err(PoolError::InvalidUrl)?;
        let conn = Connector::new(target, CLIENT_TIMEOUT).lending(options.wait_connections);
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                metrics: ClaimMetrics::default(),
            }),
        })
    }

    /// Reserves one free seat on any pod.
    pub async fn claim(&self) -> Result<Claim, ClaimError> {
        self.claim_with(&ClaimRequest::default()).await
    }

    /// Reserves one free seat on a pod matching `req.selector`. The token
    /// is minted here (or derived from `req.claim_id`) and Redis sees only
    /// its hash. On a replicated Redis each claim carries a claim id, is
    /// confirmed by `WAIT 1`, and is retried under the same id through a
    /// failover, so a retry can never reserve a second seat.
    pub async fn claim_with(&self, req: &ClaimRequest) -> Result<Claim, ClaimError> {
        let started = Instant::now();
        let result = self.claim_inner(req).await;
        let m = &self.inner.metrics;
        m.observe(started.elapsed());
        PoolMetrics::inc(match &result {
            Ok(_) => &m.granted,
            Err(ClaimError::NoFreeSeat) => &m.no_free_seat,
            Err(_) => &m.failed,
        });
        result
    }

    async fn claim_inner(&self, req: &ClaimRequest) -> Result<Claim, ClaimError> {
        req.validate()?;
        let replicated = self.inner.conn.replicated();
        let (claim_id, token) = match &req.claim_id {
            Some(id) => (id.clone(), token::derive(id)),
            None if replicated => (token::mint(), token::mint()),
            None => (String::new(), token::mint()),
        };
        let hash = token::hash(&token);
        let retry_until = Instant::now() + RETRY_WINDOW;
        loop {
            match self.claim_once(&hash, &claim_id, req, replicated).await {
                Ok(ScriptAnswer::Granted {
                    pod_id,
                    url,
                    expires_in_ms,
                }) => {
                    return Ok(Claim {
                        pod_id,
                        url,
                        seat_token: token,
                        expires_in_s: Duration::from_millis(expires_in_ms).as_secs_f64(),
                    })
                }
                Ok(ScriptAnswer::Refused { error }) if error == "no_free_seat" => {
                    return Err(ClaimError::NoFreeSeat)
                }
                Ok(ScriptAnswer::Refused { error }) if error == "claim_id_conflict" => {
                    return Err(PoolError::ClaimIdConflict.into())
                }
                Ok(ScriptAnswer::Refused { error }) => {
                    return Err(PoolError::Protocol(error).into())
                }
                // Without a claim id a retry could take a second seat.
                Err(e) if claim_id.is_empty() || !e.retryable() => return Err(e.into()),
                Err(e) if Instant::now() >= retry_until => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(error = %e, "claim not confirmed; retrying with the same claim id");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn claim_once(
        &self,
        hash: &str,
        claim_id: &str,
        req: &ClaimRequest,
        replicated: bool,
    ) -> Result<ScriptAnswer, PoolError> {
        let conn_ref = &self.inner.conn;
        if !replicated {
            let mut conn = conn_ref.get().await.map_err(PoolError::Unavailable)?;
            return self.run_claim(&mut conn, hash, claim_id, req).await;
        }
        // WAIT blocks the connection it runs on until a replica acks or it
        // times out, and WAIT covers the writes of its own connection only.
        // So the claim's write and its WAIT share a connection lent to this
        // claim alone: on the shared one, every request pipelined behind a
        // WAIT (other claims, `ls`) would wait out its 250 ms too.
        let mut own = conn_ref.own().await.map_err(PoolError::Unavailable)?;
        let parsed = self.run_claim(own.conn(), hash, claim_id, req).await?;
        if !matches!(parsed, ScriptAnswer::Granted { .. }) {
            own.give_back();
            return Ok(parsed);
        }
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(WAIT_MS)
            .query_async(own.conn())
            .await
            .map_err(|e| {
                conn_ref.forget();
                PoolError::Unavailable(e)
            })?;
        if acked >= 1 {
            own.give_back();
            return Ok(parsed);
        }
        match has_replicas(own.conn()).await {
            Some(false) => {
                own.give_back();
                Ok(parsed)
            }
            Some(true) => {
                own.give_back();
                Err(PoolError::Unconfirmed)
            }
            // The connection failed its INFO: not lent again.
            None => Err(PoolError::Unconfirmed),
        }
    }

    /// One run of the claim script on `conn`, parsed.
    async fn run_claim(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        hash: &str,
        claim_id: &str,
        req: &ClaimRequest,
    ) -> Result<ScriptAnswer, PoolError> {
        let conn_ref = &self.inner.conn;
        let mut call = scripts::CLAIM.prepare_invoke();
        call.arg(hash).arg(claim_id);
        for (k, v) in &req.selector {
            call.arg(k).arg(v);
        }
        let answer: String = call.invoke_async(conn).await.map_err(|e| {
            conn_ref.forget();
            PoolError::Unavailable(e)
        })?;
        conn_ref.succeeded();
        serde_json::from_str(&answer).map_err(|_| PoolError::Protocol(answer))
    }

    /// Every live pod, sorted by id.
    pub async fn ls(&self) -> Result<Vec<PodInfo>, PoolError> {
        let conn_ref = &self.inner.conn;
        let mut conn = conn_ref.get().await.map_err(PoolError::Unavailable)?;
        let rows: Vec<String> = scripts::LS
            .prepare_invoke()
            .invoke_async(&mut conn)
            .await
            .map_err(|e| {
                conn_ref.forget();
                PoolError::Unavailable(e)
            })?;
        conn_ref.succeeded();
        let mut pods = rows
            .iter()
            .map(|row| serde_json::from_str(row).map_err(|_| PoolError::Protocol(row.clone())))
            .collect::<Result<Vec<PodInfo>, _>>()?;
        pods.sort_by(|a, b| a.pod_id.cmp(&b.pod_id));
        Ok(pods)
    }

    /// One `PING`: whether Redis (the current master) answers.
    pub async fn ping(&self) -> Result<(), PoolError> {
        let conn_ref = &self.inner.conn;
        let mut conn = conn_ref.get().await.map_err(PoolError::Unavailable)?;
        let pong: RedisResultString = redis::cmd("PING").query_async(&mut conn).await;
        pong.map_err(|e| {
            conn_ref.forget();
            PoolError::Unavailable(e)
        })?;
        conn_ref.succeeded();
        Ok(())
    }

    /// Claim figures of this client.
    pub fn metrics(&self) -> &ClaimMetrics {
        &self.inner.metrics
    }

    /// 1 while this client's last Redis round trip succeeded, else 0.
    pub fn redis_up(&self) -> u64 {
        self.inner.conn.up()
    }
}

/// Whether the master has a replica attached (`None`: `INFO` failed). A
/// master left alone (its replica is the one that died) has nothing a
/// failover could promote with a staler copy, so its claims stand
/// unconfirmed rather than stopping the fleet; set `min-replicas-to-write`
/// on Redis to refuse instead.
async fn has_replicas(conn: &mut redis::aio::MultiplexedConnection) -> Option<bool> {
    let info: redis::RedisResult<String> = redis::cmd("INFO")
        .arg("replication")
        .query_async(conn)
        .await;
    info.ok()
        .map(|text| !text.lines().any(|l| l.trim() == "connected_slaves:0"))
}

/// Claims one seat on any pod: a one-shot [`PoolClient::claim`].
pub async fn claim(redis_url: &str) -> Result<Claim, ClaimError> {
    PoolClient::new(redis_url)?.claim().await
}

/// Claims one seat as `req` says: a one-shot [`PoolClient::claim_with`]
/// (what `pool claim` runs).
pub async fn claim_with(redis_url: &str, req: &ClaimRequest) -> Result<Claim, ClaimError> {
    PoolClient::new(redis_url)?.claim_with(req).await
}

/// Lists live pods: a one-shot [`PoolClient::ls`] (what `pool ls` runs).
pub async fn ls(redis_url: &str) -> Result<Vec<PodInfo>, PoolError> {
    PoolClient::new(redis_url)?.ls().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_connections_outside_1_to_1024_are_refused_not_a_panic() {
        let url = "redis+sentinel://127.0.0.1:26379/mymaster";
        let with = |n| {
            PoolClient::with_options(
                url,
                ClientOptions {
                    wait_connections: n,
                },
            )
        };
        for bad in [0, 1025, usize::MAX] {
            let e = with(bad).err().expect("refused");
            assert_eq!(e.code(), "bad_request");
            let want = format!("wait_connections must be 1..=1024, got {bad}");
            assert!(e.to_string().contains(&want), "{e}");
        }
        assert!(with(1).is_ok() && with(1024).is_ok());
        assert_eq!(ClientOptions::default().wait_connections, 32);
    }
}
