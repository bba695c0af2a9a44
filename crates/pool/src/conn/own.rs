//! Connections lent to one caller at a time, for requests that block
//! their connection (`WAIT`): dialled to the master the shared connection
//! found, at most [`Connector::lending`] at once (32 unless set), kept for
//! reuse within a generation.

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError, RedisResult};
use tokio::sync::SemaphorePermit;

use super::{lock, Connector};

impl Connector {
    /// A connection to the current master that no other caller uses until
    /// it is given back ([`Own::give_back`]); dropped instead, it is closed.
    /// Waits up to the timeout for a free one of the connections it may
    /// lend ([`Connector::lending`]). A claim confirmed by `WAIT` holds one
    /// for its write and its `WAIT` (up to 250 ms when no replica answers),
    /// so that caps such claims in flight per client; more wait here. A
    /// connection given back in an older generation (before a reconnect,
    /// maybe a failover) is never lent again.
    pub(crate) async fn own(&self) -> RedisResult<Own<'_>> {
        let permit = tokio::time::timeout(self.timeout, self.lendable.acquire())
            .await
            .map_err(|_| {
                RedisError::from((
                    ErrorKind::Io,
                    "timed out waiting for a free connection",
                    format!("all {} in use", self.lend_max),
                ))
            })?
            .map_err(|_| RedisError::from((ErrorKind::Io, "connector closed")))?;
        let current = self.current().await?;
        let reused = {
            let mut idle = lock(&self.idle);
            idle.retain(|(generation, _)| *generation == current.generation);
            idle.pop()
        };
        let conn = match reused {
            Some((_, conn)) => conn,
            None => {
                let dial = current
                    .client
                    .get_multiplexed_async_connection_with_config(&self.config);
                match tokio::time::timeout(self.timeout, dial).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => {
                        self.forget();
                        return Err(e);
                    }
                    Err(_) => {
                        self.forget();
                        return Err(RedisError::from((
                            ErrorKind::Io,
                            "timed out connecting to Redis",
                        )));
                    }
                }
            }
        };
        Ok(Own {
            conn,
            generation: current.generation,
            connector: self,
            _permit: permit,
        })
    }
}

/// A connection lent by [`Connector::own`]: its holder's alone.
pub(crate) struct Own<'a> {
    conn: MultiplexedConnection,
    generation: u64,
    connector: &'a Connector,
    _permit: SemaphorePermit<'a>,
}

impl Own<'_> {
    /// The connection, to send requests on.
    pub(crate) fn conn(&mut self) -> &mut MultiplexedConnection {
        &mut self.conn
    }

    /// Returns the connection for the next caller: only after every request
    /// sent on it was answered (a dropped request may still be running on
    /// the server, and would hold up the next holder). Ignored after a
    /// reconnect since it was lent.
    pub(crate) fn give_back(self) {
        let connector = self.connector;
        let current = lock(&connector.cached)
            .as_ref()
            .is_some_and(|c| c.generation == self.generation);
        if current {
            lock(&connector.idle).push((self.generation, self.conn));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::conn::Target;

    async fn id(conn: &mut MultiplexedConnection) -> i64 {
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn lends_at_most_its_cap_each_alone_and_reuses_only_what_is_given_back() {
        let redis = seatkeeper_testkit::redis_or_skip!();
        let target = Target::parse(&redis.url()).unwrap();
        const CAP: usize = 3;
        let conn = Connector::new(target, Duration::from_millis(300)).lending(CAP);
        let shared = id(&mut conn.get().await.unwrap()).await;

        let mut lent = Vec::new();
        let mut ids = HashSet::new();
        for _ in 0..CAP {
            let mut own = conn.own().await.unwrap();
            ids.insert(id(own.conn()).await);
            lent.push(own);
        }
        assert_eq!(ids.len(), CAP, "each lent connection is its own");
        assert!(!ids.contains(&shared), "the shared one is never lent");
        let busy = conn.own().await.err().expect("all lent: none to lend");
        assert!(busy.to_string().contains("free connection"), "{busy}");
        assert!(busy.to_string().contains("all 3 in use"), "{busy}");

        // Given back: lent again as it is.
        let mut back = lent.pop().unwrap();
        let back_id = id(back.conn()).await;
        back.give_back();
        let mut again = conn.own().await.unwrap();
        assert_eq!(id(again.conn()).await, back_id);
        // Dropped (maybe with a request still running): never lent again.
        drop(again);
        let mut fresh = conn.own().await.unwrap();
        let fresh_id = id(fresh.conn()).await;
        assert!(!ids.contains(&fresh_id));
        // Given back, then the connector reconnects: not lent again either.
        fresh.give_back();
        conn.forget();
        let mut after = conn.own().await.unwrap();
        assert_ne!(id(after.conn()).await, fresh_id);
        assert!(conn.generation() > 1);
    }
}
