//! One cached Redis connection with deadlines, rebuilt after any failure.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};

/// A lazily (re)connected multiplexed connection.
///
/// The connection pipelines concurrent requests, so cloning it out of the
/// cache is how callers share it; the lock is never held across an await.
pub(crate) struct Connector {
    client: redis::Client,
    cached: Mutex<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

impl Connector {
    /// `timeout` bounds connecting and every single request, so a
    /// partitioned Redis costs a caller at most that long.
    pub(crate) fn new(client: redis::Client, timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Self {
            client,
            cached: Mutex::new(None),
            config,
        }
    }

    /// The cached connection, or a new one.
    pub(crate) async fn get(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.slot().clone() {
            return Ok(conn);
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *self.slot() = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the cached connection after an error, so the next call
    /// reconnects instead of reusing a dead socket.
    pub(crate) fn forget(&self) {
        *self.slot() = None;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        // The guarded value is a plain handle; a panic elsewhere cannot
        // leave it half-written.
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
