//! One cached Redis connection with deadlines, rebuilt after any failure,
//! found directly or through Redis Sentinel.
//!
//! redis-rs follows no failover by itself (its `ConnectionManager` keeps
//! dialling the old address, and `READONLY` from a demoted master does not
//! make it reconnect), and it parses no `redis+sentinel://` URL. So this
//! module parses that URL, asks the Sentinels for the current master
//! whenever the cached connection is dropped, and drops it after *every*
//! error (I/O, timeout, `READONLY`, master not found). Each new connection
//! gets a new generation number: the pod agent treats a change as "maybe a
//! failover" and re-asserts what it holds.
//!
//! Beside the shared connection, [`Connector::own`] lends a connection to
//! one caller at a time, from a small bounded set dialled to the same
//! master: for a request that blocks its connection (`WAIT`), which on the
//! shared one would hold up every request pipelined behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, RedisResult};
use tokio::sync::Semaphore;
use tokio::time::Instant;

mod own;

use crate::client::ClientOptions;

/// The URL scheme that names Sentinels and a master name.
pub(crate) const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// Where the pool's Redis is.
pub(crate) enum Target {
    /// One Redis at a fixed address.
    Direct(redis::Client),
    /// The current master of `MASTER`, as the Sentinels say. The client's
    /// methods take `&mut self`, hence the async mutex.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Target {
    /// Parses `redis://…`, `rediss://…`, `unix://…` or
    /// `redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER`
    /// (the credentials are used for the Sentinels and the master alike).
    pub(crate) fn parse(url: &str) -> RedisResult<Self> {
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            return redis::Client::open(url).map(Self::Direct);
        };
        let bad = |reason: String| {
            RedisError::from((ErrorKind::InvalidClientConfig, "bad Sentinel URL", reason))
        };
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (sentinels, master) = parse_sentinel(rest).map_err(bad)?;
        let addrs = sentinels
            .into_iter()
            .map(|(host, port)| ConnectionAddr::Tcp(host, port));
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
        if let Some(auth) = auth {
            let (user, password) = auth.split_once(':').unwrap_or(("", auth));
            if password.is_empty() {
                return Err(bad("empty password before '@'".into()));
            }
            builder = builder
                .set_client_to_redis_password(password)
                .set_client_to_sentinel_password(password);
            if !user.is_empty() {
                builder = builder
                    .set_client_to_redis_username(user)
                    .set_client_to_sentinel_username(user);
            }
        }
        Ok(Self::Sentinel(tokio::sync::Mutex::new(builder.build()?)))
    }

    /// True for a Sentinel URL: claims are then confirmed with `WAIT`.
    pub(crate) fn replicated(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }
}

/// `HOST:PORT[,HOST:PORT…]/MASTER` into its parts. Hosts may be IPv6 in
/// brackets; the master name is 1-128 characters of `[A-Za-z0-9._-]`.
pub(crate) fn parse_sentinel(rest: &str) -> Result<(Vec<(String, u16)>, String), String> {
    let (hosts, master) = rest
        .split_once('/')
        .ok_or("expected redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME")?;
    let master = master.strip_suffix('/').unwrap_or(master);
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !(1..=128).contains(&master.len()) || !master.bytes().all(plain) {
        return Err(format!(
            "master name {master:?} must be 1-128 characters of A-Z a-z 0-9 . _ -"
        ));
    }
    let mut out = Vec::new();
    for entry in hosts.split(',') {
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("Sentinel {entry:?} must be HOST:PORT"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("Sentinel {entry:?}: bad port"))?;
        if host.is_empty() || !host.bytes().all(|b| plain(b) || b == b':') {
            return Err(format!("Sentinel {entry:?}: bad host"));
        }
        out.push((host.to_owned(), port));
    }
    Ok((out, master.to_owned()))
}

/// The connection to the current master, with what made it.
#[derive(Clone)]
struct Cached {
    conn: MultiplexedConnection,
    /// The master's address, resolved once per generation: connections of
    /// their own are dialled to it without asking the Sentinels again.
    client: redis::Client,
    generation: u64,
}

/// A lazily (re)connected multiplexed connection.
///
/// The connection pipelines concurrent requests, so cloning it out of the
/// cache is how callers share it; the std lock is never held across an
/// await.
pub(crate) struct Connector {
    target: Target,
    cached: Mutex<Option<Cached>>,
    /// Connections lent by [`Self::own`] and given back healthy, each with
    /// the generation it was dialled in.
    idle: Mutex<Vec<(u64, MultiplexedConnection)>>,
    /// One permit per connection [`Self::own`] may lend at once.
    lendable: Semaphore,
    /// How many permits `lendable` started with.
    lend_max: usize,
    config: AsyncConnectionConfig,
    timeout: Duration,
    /// Bumped on every new connection.
    generation: AtomicU64,
    /// After a failed connect, callers fail fast until this instant
    /// (doubling from 50 ms to 1 s), so a burst of claims during a
    /// failover does not hammer the Sentinels.
    retry: Mutex<(Option<Instant>, Duration)>,
    /// 1 while the last round trip succeeded (the `redis_up` gauge).
    up: AtomicU64,
    /// One caller connects at a time; the others wait for its result
    /// instead of each opening (and asking the Sentinels for) their own.
    connecting: tokio::sync::Mutex<()>,
    /// Failed connects so far.
    failures: AtomicU64,
}

const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

impl Connector {
    /// `timeout` bounds finding the master, connecting, and every single
    /// request, so a partitioned Redis costs a caller at most about that.
    /// [`Self::own`] lends up to [`ClientOptions::DEFAULT_WAIT_CONNECTIONS`]
    /// at once; see [`Self::lending`].
    pub(crate) fn new(target: Target, timeout: Duration) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Self {
            target,
            cached: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            lendable: Semaphore::new(ClientOptions::DEFAULT_WAIT_CONNECTIONS),
            lend_max: ClientOptions::DEFAULT_WAIT_CONNECTIONS,
            config,
            timeout,
            generation: AtomicU64::new(0),
            retry: Mutex::new((None, RETRY_MIN)),
            up: AtomicU64::new(0),
            connecting: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
        }
    }

    /// Lends at most `n` connections at once (callers check `n >= 1`: with
    /// none, every [`Self::own`] would time out).
    pub(crate) fn lending(mut self, n: usize) -> Self {
        self.lendable = Semaphore::new(n);
        self.lend_max = n;
        self
    }

    /// Whether the target is replicated (Sentinel).
    pub(crate) fn replicated(&self) -> bool {
        self.target.replicated()
    }

    /// The cached connection, or a new one (after asking the Sentinels).
    pub(crate) async fn get(&self) -> RedisResult<MultiplexedConnection> {
        self.current().await.map(|c| c.conn)
    }

    async fn current(&self) -> RedisResult<Cached> {
        if let Some(cached) = lock(&self.cached).clone() {
            return Ok(cached);
        }
        let failures = self.failures.load(Ordering::Relaxed);
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(cached) = lock(&self.cached).clone() {
            return Ok(cached);
        }
        if self.failures.load(Ordering::Relaxed) != failures {
            // The attempt we queued behind just failed: share its answer
            // rather than queue another full timeout behind it.
            return Err(RedisError::from((
                ErrorKind::Io,
                "Redis unreachable (a concurrent connect just failed)",
            )));
        }
        let wait = lock(&self.retry).0;
        if let Some(at) = wait.filter(|at| *at > Instant::now()) {
            // Pace reconnects, but do not answer before the pause is over:
            // a caller that retries at once would only spin.
            tokio::time::sleep_until(at.min(Instant::now() + RETRY_MAX)).await;
        }
        match tokio::time::timeout(self.timeout * 2, self.connect()).await {
            Ok(Ok((client, conn))) => {
                *lock(&self.retry) = (None, RETRY_MIN);
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let cached = Cached {
                    conn,
                    client,
                    generation,
                };
                *lock(&self.cached) = Some(cached.clone());
                Ok(cached)
            }
            Ok(Err(e)) => {
                self.failed();
                Err(e)
            }
            Err(_) => {
                self.failed();
                Err(RedisError::from((
                    ErrorKind::Io,
                    "timed out finding or connecting to Redis",
                )))
            }
        }
    }

    async fn connect(&self) -> RedisResult<(redis::Client, MultiplexedConnection)> {
        let client = match &self.target {
            Target::Direct(client) => client.clone(),
            Target::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await?,
        };
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok((client, conn))
    }

    /// The number of connections made so far; a change means the next
    /// round trip may reach another server (a failover).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Records a successful round trip.
    pub(crate) fn succeeded(&self) {
        self.up.store(1, Ordering::Relaxed);
    }

    /// Drops the cached connection after an error, so the next call
    /// reconnects (re-resolving the master) instead of reusing a dead or
    /// demoted one.
    pub(crate) fn forget(&self) {
        self.up.store(0, Ordering::Relaxed);
        *lock(&self.cached) = None;
        lock(&self.idle).clear();
    }

    /// 1 while the last round trip succeeded, else 0.
    pub(crate) fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        self.up.store(0, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut retry = lock(&self.retry);
        let pause = retry.1;
        *retry = (Some(Instant::now() + pause), (pause * 2).min(RETRY_MAX));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain handles and instants, never half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_parse() {
        let (hosts, master) =
            parse_sentinel("10.0.0.1:26379,[::1]:26380,s3.local:1/mymaster").unwrap();
        assert_eq!(
            hosts,
            [
                ("10.0.0.1".to_owned(), 26379),
                ("::1".to_owned(), 26380),
                ("s3.local".to_owned(), 1)
            ]
        );
        assert_eq!(master, "mymaster");
        assert_eq!(parse_sentinel("h:1/m/").unwrap().1, "m");
        for bad in [
            "h:1", "h:1/", "h/m", "h:0/m", "h:x/m", ":1/m", "h:1,/m", "h:1/a b",
        ] {
            assert!(parse_sentinel(bad).is_err(), "{bad}");
        }
        assert!(Target::parse("redis+sentinel://127.0.0.1:26379/mymaster").is_ok());
        assert!(Target::parse("redis+sentinel://:pw@127.0.0.1:26379/mymaster").is_ok());
        assert!(Target::parse("redis+sentinel://u:p@w@10.0.0.1:1,10.0.0.2:2/m").is_ok());
        assert!(Target::parse("redis+sentinel://@10.0.0.1:1/m").is_err());
        assert!(Target::parse("redis+sentinel://127.0.0.1/mymaster").is_err());
        assert!(Target::parse("http://x").is_err());
    }
}
