//! The validated settings of a pod in pool mode.

use std::collections::BTreeMap;
use std::time::Duration;

/// Everything a pod needs to join the pool.
///
/// Build it with [`PoolConfig::new`] (which fills in the default TTLs),
/// adjust fields, then call [`PoolConfig::validate`] once before binding any
/// port, so a bad value exits with one clear line instead of a runtime error.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// `redis://HOST:PORT[/DB]`, `unix:///path`, or
    /// `redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER` of the pool's Redis.
    pub redis_url: String,
    /// This pod's unique name in the pool (a Kubernetes pod name fits).
    pub pod_id: String,
    /// The WebSocket URL a claimed user connects to, e.g. `ws://10.0.0.7:1318/ws`.
    pub advertise_url: String,
    /// How long the pod stays in the pool without a heartbeat (`--pool-ttl-s`).
    /// Heartbeats go out every third of it.
    pub ttl: Duration,
    /// How long a claim waits to be redeemed before its seat returns
    /// (`--claim-ttl-s`).
    pub claim_ttl: Duration,
    /// Seats this pod offers (the server's `--seats`).
    pub seats_total: u32,
    /// `--pod-label KEY=VALUE` pairs, published with the pod; claims with a
    /// selector land only on pods whose labels match it.
    pub labels: BTreeMap<String, String>,
}

/// A setting [`PoolConfig::validate`] refused; the message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The Redis URL does not parse or names an unsupported scheme.
    #[error("--pool: invalid Redis URL {url:?}: {reason}")]
    RedisUrl {
        /// The URL as given, its password replaced by [`redact_url`].
        url: String,
        /// Why the Redis client refused it.
        reason: String,
    },
    /// The pod id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("--pod-id: {0:?} must be 1-253 characters of A-Z a-z 0-9 . _ -")]
    PodId(String),
    /// The advertised URL is not a `ws://`, `wss://`, `http://` or `https://` URL.
    #[error("--advertise-url: {0:?} must be a ws:// or wss:// URL with a host")]
    AdvertiseUrl(String),
    /// The pool TTL is outside 300 ms ..= 1 h.
    #[error("--pool-ttl-s: {0:?} must be between 0.3 s and 3600 s")]
    Ttl(Duration),
    /// The claim TTL is outside 100 ms ..= 1 h.
    #[error("--claim-ttl-s: {0:?} must be between 0.1 s and 3600 s")]
    ClaimTtl(Duration),
    /// The seat count is 0 or over 100 000.
    #[error("--seats: {0} must be between 1 and 100000 in pool mode")]
    Seats(u32),
    /// A label key or value is empty, too long or has other characters.
    #[error("--pod-label: {0}")]
    Label(String),
}

impl ConfigError {
    /// The URL refused for `reason`; only its redacted form is kept.
    pub(crate) fn redis_url(url: &str, reason: &redis::RedisError) -> Self {
        Self::RedisUrl {
            url: redact_url(url),
            reason: reason.to_string(),
        }
    }
}

/// `url` with its password replaced by `***`: the one form of a Redis URL
/// that goes into an error message or a log line.
///
/// - `scheme://USER:PASSWORD@HOST…` becomes `scheme://USER:***@HOST…`, and
///   `scheme://:PASSWORD@…` becomes `scheme://:***@…`. The credentials run
///   to the *last* `@`, as the Sentinel parser reads them, so a password
///   with a raw `@` in it is hidden whole; percent-encoding is irrelevant.
/// - A lone `scheme://SECRET@HOST…` becomes `scheme://***@HOST…`: the
///   Sentinel form reads it as the password.
/// - `pass=` / `password=` query values (`unix:///path?pass=…`) become `***`.
///
/// Hosts, ports, paths and Sentinel lists stay, so the message still says
/// which Redis it is about.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (auth, host) = (&rest[..at], &rest[at + 1..]);
            match auth.split_once(':') {
                // A '/' or '?' before the ':' means the '@' is not in the
                // authority; hide it all rather than guess.
                Some((user, _)) if !user.contains(['/', '?', '#']) => format!("{user}:***@{host}"),
                _ => format!("***@{host}"),
            }
        }
        None => rest.to_owned(),
    };
    let Some((before, query)) = rest.split_once('?') else {
        return format!("{head}{rest}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _))
                if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") =>
            {
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}{before}?{}", query.join("&"))
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("pod_id", &self.pod_id)
            .field("advertise_url", &self.advertise_url)
            .field("ttl", &self.ttl)
            .field("claim_ttl", &self.claim_ttl)
            .field("seats_total", &self.seats_total)
            .field("labels", &self.labels)
            .finish()
    }
}

/// Most labels on one pod (or terms in one selector).
pub const MAX_LABELS: usize = 16;

/// Checks one label key or value: 1-63 characters of `[A-Za-z0-9._/-]`
/// (they become parts of Redis keys and log lines).
pub fn valid_label_part(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// Parses `KEY=VALUE[,KEY=VALUE…]` (a `--selector`, or one `--pod-label`
/// per call) into a map; a repeated key with another value is an error.
pub fn parse_labels(spec: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for term in spec.split(',') {
        let (k, v) = term
            .split_once('=')
            .ok_or_else(|| format!("{term:?} must be KEY=VALUE"))?;
        check_label(k, v)?;
        if out
            .insert(k.to_owned(), v.to_owned())
            .is_some_and(|old| old != v)
        {
            return Err(format!("label {k:?} given twice with different values"));
        }
    }
    if out.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels"));
    }
    Ok(out)
}

/// One label's key and value, or why not.
pub fn check_label(k: &str, v: &str) -> Result<(), String> {
    if !valid_label_part(k) || !valid_label_part(v) {
        return Err(format!(
            "{k:?}={v:?}: keys and values must be 1-63 characters of A-Z a-z 0-9 . _ / -"
        ));
    }
    Ok(())
}

impl PoolConfig {
    /// Default `--pool-ttl-s`.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
    /// Default `--claim-ttl-s`.
    pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(30);

    /// A config with the default TTLs.
    pub fn new(
        redis_url: impl Into<String>,
        pod_id: impl Into<String>,
        advertise_url: impl Into<String>,
        seats_total: u32,
    ) -> Self {
        Self {
            redis_url: redis_url.into(),
            pod_id: pod_id.into(),
            advertise_url: advertise_url.into(),
            ttl: Self::DEFAULT_TTL,
            claim_ttl: Self::DEFAULT_CLAIM_TTL,
            seats_total,
            labels: BTreeMap::new(),
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::conn::Target::parse(&self.redis_url)
            .map_err(|e| ConfigError::redis_url(&self.redis_url, &e))?;
        if !valid_pod_id(&self.pod_id) {
            return Err(ConfigError::PodId(self.pod_id.clone()));
        }
        if !valid_advertise_url(&self.advertise_url) {
            return Err(ConfigError::AdvertiseUrl(self.advertise_url.clone()));
        }
        if !(Duration::from_millis(300)..=Duration::from_secs(3600)).contains(&self.ttl) {
            return Err(ConfigError::Ttl(self.ttl));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.claim_ttl) {
            return Err(ConfigError::ClaimTtl(self.claim_ttl));
        }
        if !(1..=100_000).contains(&self.seats_total) {
            return Err(ConfigError::Seats(self.seats_total));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(ConfigError::Label(format!("at most {MAX_LABELS} labels")));
        }
        for (k, v) in &self.labels {
            check_label(k, v).map_err(ConfigError::Label)?;
        }
        Ok(())
    }

    /// How often the pod heartbeats: a third of the TTL, so two heartbeats
    /// can be lost before the pod drops out of the pool.
    pub fn heartbeat_interval(&self) -> Duration {
        self.ttl / 3
    }

    /// The deadline of one Redis round trip: a stalled Redis must not hold
    /// the agent past its next heartbeat.
    pub(crate) fn op_timeout(&self) -> Duration {
        self.heartbeat_interval()
            .clamp(Duration::from_millis(100), Duration::from_secs(2))
    }
}

/// Pod ids become parts of Redis keys and log lines; keep them plain.
fn valid_pod_id(id: &str) -> bool {
    (1..=253).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_advertise_url(url: &str) -> bool {
    let rest = ["ws://", "wss://", "http://", "https://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && !url
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> PoolConfig {
        PoolConfig::new(
            "redis://127.0.0.1:6379",
            "pod-a.1_x",
            "ws://10.0.0.1:1318/ws",
            1,
        )
    }

    #[test]
    fn defaults_validate() {
        let cfg = good();
        assert_eq!(cfg.ttl, Duration::from_secs(5));
        assert_eq!(cfg.claim_ttl, Duration::from_secs(30));
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(
            cfg.heartbeat_interval(),
            Duration::from_nanos(1_666_666_666)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut c = good();
        c.redis_url = "http://nope".into();
        assert!(matches!(c.validate(), Err(ConfigError::RedisUrl { .. })));
        for id in ["", "a:b", "a b", "ü"] {
            let mut c = good();
            c.pod_id = id.into();
            assert_eq!(c.validate(), Err(ConfigError::PodId(id.into())));
        }
        for url in ["", "ws://", "tcp://x:1", "ws://a b/ws"] {
            let mut c = good();
            c.advertise_url = url.into();
            assert_eq!(c.validate(), Err(ConfigError::AdvertiseUrl(url.into())));
        }
        let mut c = good();
        c.ttl = Duration::from_millis(10);
        assert_eq!(c.validate(), Err(ConfigError::Ttl(c.ttl)));
        let mut c = good();
        c.claim_ttl = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ClaimTtl(Duration::ZERO)));
        let mut c = good();
        c.seats_total = 0;
        assert_eq!(c.validate(), Err(ConfigError::Seats(0)));
        let mut c = good();
        c.labels.insert("gpu".into(), "a b".into());
        assert!(matches!(c.validate(), Err(ConfigError::Label(_))));
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            ("redis://:hunter2@127.0.0.1:1/", "redis://:***@127.0.0.1:1/"),
            ("redis://user:hunter2@h:6379/0", "redis://user:***@h:6379/0"),
            (
                "rediss://u:hunter2@h:6380/#insecure",
                "rediss://u:***@h:6380/#insecure",
            ),
            ("redis://u:hun%40ter%3A2@h:1", "redis://u:***@h:1"),
            ("redis://u:hun@ter2@h:1/", "redis://u:***@h:1/"),
            ("redis://hunter2@h:1", "redis://***@h:1"),
            (
                "redis+sentinel://:hunter2@10.0.0.1:26379,[::1]:26380/mymaster",
                "redis+sentinel://:***@10.0.0.1:26379,[::1]:26380/mymaster",
            ),
            (
                "redis+sentinel://u:p@hunter2@s1:1,s2:2/m",
                "redis+sentinel://u:***@s1:1,s2:2/m",
            ),
            (
                "unix:///run/redis.sock?db=1&user=u&pass=hunter2",
                "unix:///run/redis.sock?db=1&user=u&pass=***",
            ),
            (":hunter2@127.0.0.1:6379", ":***@127.0.0.1:6379"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        // Nothing to hide: unchanged.
        for url in [
            "redis://127.0.0.1:6379/",
            "redis+sentinel://s1:26379,s2:26379/m",
            "unix:///run/redis.sock?db=1",
            "not a url",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn config_errors_and_debug_hide_the_password() {
        let mut c = good();
        c.redis_url = "redis://u:hunter2@127.0.0.1:notaport/".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("u:***@127.0.0.1:notaport"), "{err}");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("127.0.0.1"),
            "{debug}"
        );
    }

    #[test]
    fn labels_parse() {
        let m = parse_labels("gpu=5090,region=eu-west/1").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["region"], "eu-west/1");
        for bad in ["", "gpu", "=x", "gpu=", "a=b,a=c", "a=b=c", "g pu=1"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
        assert!(parse_labels("a=b,a=b").is_ok());
    }
}
