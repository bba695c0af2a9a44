//! `pool allocator`: claims over HTTP for routers that would rather not
//! speak Redis (the role Agones' allocator service plays).

mod guard;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::claim::ClaimError;
use crate::client::{ClaimRequest, ClientOptions, PoolClient, PoolError};
use crate::config::redact_url;
use crate::metrics::{family, PoolMetrics};
use guard::{token_matches, RateLimit};

/// How the allocator serves.
#[derive(Clone)]
pub struct AllocatorConfig {
    /// The pool's Redis (`redis://…` or `redis+sentinel://…`).
    pub redis_url: String,
    /// `--token`: `POST /claim` then needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// `--rate-limit`: claims a second per client IP (0: no limit).
    pub rate_per_s: f64,
    /// `--rate-burst`: how many a client may send at once.
    pub burst: f64,
    /// How its [`PoolClient`] is built (`--redis-wait-connections`).
    pub client: ClientOptions,
}

impl AllocatorConfig {
    /// Defaults: no token, 50 claims/s per client, bursts of 100, default
    /// [`ClientOptions`].
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            token: None,
            rate_per_s: 50.0,
            burst: 100.0,
            client: ClientOptions::default(),
        }
    }
}

impl std::fmt::Debug for AllocatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllocatorConfig")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("rate_per_s", &self.rate_per_s)
            .field("burst", &self.burst)
            .field("client", &self.client)
            .finish()
    }
}

struct Allocator {
    client: PoolClient,
    token: Option<String>,
    limit: RateLimit,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    bad_request: AtomicU64,
}

type Shared = Arc<Allocator>;

/// How often the allocator checks Redis when no claim does it.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Serves the allocator on `listener` until `shutdown` fires:
///
/// - `POST /claim` (body empty or `{"selector": {...}, "claim_id": "..."}`):
///   `200` with the claim JSON (as `pool claim` prints), `503`
///   `{"error":"no_free_seat"}` when no matching pod has a free seat, `503`
///   `{"error":"pool_unavailable","message":..}` when Redis is down, `401`
///   without the right bearer token, `429` over the client's rate, `400`
///   for a bad body, `409` `claim_id_conflict`;
/// - `GET /healthz`: `200 {"ok":true,"redis_up":bool}`; `GET /metrics`:
///   the allocator's own figures;
/// - anything else: `404 {"error":"not_found"}` (`405` JSON for a known
///   path with the wrong method).
pub async fn allocator(
    cfg: AllocatorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), PoolError> {
    let client = PoolClient::with_options(&cfg.redis_url, cfg.client)?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        redis = %redact_url(&cfg.redis_url),
        auth = cfg.token.is_some(),
        rate_limit_per_s = cfg.rate_per_s,
        wait_connections = cfg.client.wait_connections,
        "pool allocator listening"
    );
    let state = Arc::new(Allocator {
        client,
        token: cfg.token.filter(|t| !t.is_empty()),
        limit: RateLimit::new(cfg.rate_per_s, cfg.burst),
        unauthorized: AtomicU64::new(0),
        rate_limited: AtomicU64::new(0),
        bad_request: AtomicU64::new(0),
    });
    tokio::spawn(watch_redis(Arc::clone(&state), shutdown.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    tracing::info!("pool allocator stopped");
    Ok(())
}

/// Logs each Redis up/down transition, probing when idle so `/healthz`
/// and the gauge follow the connection even without claims.
async fn watch_redis(state: Shared, shutdown: CancellationToken) {
    let mut was: Option<bool> = None;
    loop {
        let up = state.client.ping().await.is_ok();
        match (was, up) {
            (None | Some(false), true) => tracing::info!("seat pool Redis reachable"),
            (None | Some(true), false) => {
                tracing::warn!("seat pool Redis unreachable: claims answer 503 pool_unavailable");
            }
            _ => {}
        }
        was = Some(up);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/claim", post(claim))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", None) })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
        })
        .with_state(state)
}

/// The `POST /claim` body; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    selector: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    claim_id: Option<String>,
}

async fn claim(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(want) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token_matches(given, want) {
            PoolMetrics::inc(&state.unauthorized);
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                Some("POST /claim needs Authorization: Bearer <allocator token>"),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
            return r;
        }
    }
    if let Err(wait) = state.limit.take(peer.ip(), Instant::now()) {
        PoolMetrics::inc(&state.rate_limited);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some("too many claims from this client; retry later"),
        );
        let secs = wait.as_secs().max(1).to_string();
        r.headers_mut()
            .insert(header::RETRY_AFTER, secs.parse().expect("digits"));
        return r;
    }
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                PoolMetrics::inc(&state.bad_request);
                return error(StatusCode::BAD_REQUEST, "bad_request", Some(&e.to_string()));
            }
        }
    };
    let req = ClaimRequest {
        selector: body.selector,
        claim_id: body.claim_id,
    };
    match state.client.claim_with(&req).await {
        Ok(claim) => Json(claim).into_response(),
        Err(e) => {
            let status = match &e {
                ClaimError::NoFreeSeat => StatusCode::SERVICE_UNAVAILABLE,
                ClaimError::Pool(PoolError::BadRequest(_)) => {
                    PoolMetrics::inc(&state.bad_request);
                    StatusCode::BAD_REQUEST
                }
                ClaimError::Pool(PoolError::ClaimIdConflict) => StatusCode::CONFLICT,
                ClaimError::Pool(_) => {
                    tracing::warn!(error = %e, "claim failed");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            (status, Json(e)).into_response()
        }
    }
}

async fn healthz(State(state): State<Shared>) -> Response {
    Json(json!({"ok": true, "redis_up": state.client.redis_up() == 1})).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    let mut out = String::new();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    state
        .client
        .metrics()
        .render_prometheus(state.client.redis_up(), &mut out);
    let m = state.client.metrics();
    family(
        &mut out,
        "seatkeeper_pool_allocator_refusals_total",
        "counter",
        "Claim requests the allocator refused, by reason.",
        &[
            ("reason=\"unauthorized\"", get(&state.unauthorized)),
            ("reason=\"rate_limited\"", get(&state.rate_limited)),
            ("reason=\"bad_request\"", get(&state.bad_request)),
            ("reason=\"no_free_seat\"", get(&m.no_free_seat)),
            ("reason=\"error\"", get(&m.failed)),
        ],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn error(status: StatusCode, code: &str, message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => json!({ "error": code, "message": m }),
        None => json!({ "error": code }),
    };
    (status, Json(body)).into_response()
}
