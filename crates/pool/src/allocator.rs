//! `pool allocator`: claims over HTTP for routers that would rather not
//! speak Redis (the role Agones' allocator service plays).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::claim::ClaimError;
use crate::client::{PoolClient, PoolError};

/// Serves the allocator on `listener` until `shutdown` fires:
///
/// - `POST /claim`: `200` with the claim JSON (as `pool claim` prints), `503`
///   `{"error":"no_free_seat"}` when the pool is full, `503`
///   `{"error":"pool_unavailable","message":..}` when Redis is down;
/// - `GET /healthz`: `200`; `GET /metrics`: the claim counters;
/// - anything else: `404 {"error":"not_found"}` (`405` JSON for a known
///   path with the wrong method).
pub async fn allocator(
    redis_url: &str,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), PoolError> {
    let client = PoolClient::new(redis_url)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "pool allocator listening");
    }
    axum::serve(listener, router(client))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

fn router(client: PoolClient) -> Router {
    Router::new()
        .route("/claim", post(claim))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found") })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        })
        .with_state(client)
}

async fn claim(State(client): State<PoolClient>) -> Response {
    match client.claim().await {
        Ok(claim) => Json(claim).into_response(),
        Err(e) => {
            if !matches!(e, ClaimError::NoFreeSeat) {
                tracing::warn!(error = %e, "claim failed");
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(e)).into_response()
        }
    }
}

async fn metrics(State(client): State<PoolClient>) -> Response {
    let mut out = String::new();
    client.metrics().render_prometheus(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}
