//! The router's side of the pool: claim a seat, list pods.

use std::sync::Arc;
use std::time::Duration;

use crate::claim::{Claim, ClaimError, ScriptAnswer};
use crate::conn::Connector;
use crate::ls::PodInfo;
use crate::metrics::PoolMetrics;
use crate::{scripts, token};

/// How long one claim or `ls` may wait on Redis before giving up.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis failure seen by a claim, `ls` or the allocator.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The Redis URL does not parse.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis could not be reached or failed the request.
    #[error("seat pool unavailable: {0}")]
    Unavailable(#[source] redis::RedisError),
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
            Self::Unavailable(_) | Self::Io(_) => "pool_unavailable",
            Self::Protocol(_) => "pool_protocol",
        }
    }
}

/// A reusable handle on the pool for routers: one cached connection,
/// reconnected after failures, and the claim counters.
#[derive(Clone)]
pub struct PoolClient {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connector,
    metrics: PoolMetrics,
}

impl PoolClient {
    /// Parses the URL; connects on first use.
    pub fn new(redis_url: &str) -> Result<Self, PoolError> {
        let client = redis::Client::open(redis_url).map_err(PoolError::InvalidUrl)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Connector::new(client, CLIENT_TIMEOUT),
                metrics: PoolMetrics::default(),
            }),
        })
    }

    /// Reserves one free seat with the claim script, minting the token here
    /// and sending Redis only its hash.
    pub async fn claim(&self) -> Result<Claim, ClaimError> {
        let token = token::mint();
        let answer: String = self
            .invoke(&mut scripts::CLAIM.arg(token::hash(&token)))
            .await
            .inspect_err(|_| PoolMetrics::inc(&self.inner.metrics.claims_failed))?;
        let metrics = &self.inner.metrics;
        match serde_json::from_str::<ScriptAnswer>(&answer) {
            Ok(ScriptAnswer::Granted {
                pod_id,
                url,
                expires_in_ms,
            }) => {
                PoolMetrics::inc(&metrics.claims_granted);
                Ok(Claim {
                    pod_id,
                    url,
                    seat_token: token,
                    expires_in_s: Duration::from_millis(expires_in_ms).as_secs_f64(),
                })
            }
            Ok(ScriptAnswer::Refused { error }) if error == "no_free_seat" => {
                PoolMetrics::inc(&metrics.claims_no_free_seat);
                Err(ClaimError::NoFreeSeat)
            }
            _ => {
                PoolMetrics::inc(&metrics.claims_failed);
                Err(PoolError::Protocol(answer).into())
            }
        }
    }

    /// Every live pod, sorted by id.
    pub async fn ls(&self) -> Result<Vec<PodInfo>, PoolError> {
        let rows: Vec<String> = self.invoke(&mut scripts::LS.prepare_invoke()).await?;
        let mut pods = rows
            .iter()
            .map(|row| serde_json::from_str(row).map_err(|_| PoolError::Protocol(row.clone())))
            .collect::<Result<Vec<PodInfo>, _>>()?;
        pods.sort_by(|a, b| a.pod_id.cmp(&b.pod_id));
        Ok(pods)
    }

    /// Claim counters of this client.
    pub fn metrics(&self) -> &PoolMetrics {
        &self.inner.metrics
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
    ) -> Result<T, PoolError> {
        let mut conn = self
            .inner
            .conn
            .get()
            .await
            .map_err(PoolError::Unavailable)?;
        invocation.invoke_async(&mut conn).await.map_err(|e| {
            self.inner.conn.forget();
            PoolError::Unavailable(e)
        })
    }
}

/// Claims one seat: a one-shot [`PoolClient::claim`] (what `pool claim` runs).
pub async fn claim(redis_url: &str) -> Result<Claim, ClaimError> {
    PoolClient::new(redis_url)?.claim().await
}

/// Lists live pods: a one-shot [`PoolClient::ls`] (what `pool ls` runs).
pub async fn ls(redis_url: &str) -> Result<Vec<PodInfo>, PoolError> {
    PoolClient::new(redis_url)?.ls().await
}
