//! The HTTP routes (contract, "HTTP routes").

use std::sync::{atomic::Ordering::Relaxed, Arc};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use seatkeeper_protocol::ClientMsg;
use serde_json::{json, Value};

use crate::{app::App, metrics::family, net::ConnInfo, web, ws};

/// A JSON error response: `{"error": code, "message": …}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// Largest admin request body.
const MAX_BODY: usize = 64 << 10;

/// The router; state is the shared [`App`].
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ws", get(ws_route))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", get(get_session).delete(evict))
        .route("/sessions/{id}/cmd", post(command))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/readyz/pool", get(member_ready))
        .route("/drain", post(drain))
        .route("/metrics", get(metrics))
        .merge(web::routes())
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn ws_route(State(app): State<Arc<App>>, req: Request) -> Response {
    ws::upgrade(app, req).await
}

async fn list_sessions(State(app): State<Arc<App>>) -> Json<Value> {
    let (seats, sessions) = app.registry.snapshot();
    let mut list: Vec<Value> = sessions.iter().map(|s| s.to_json()).collect();
    list.sort_by_key(|v| v["started_at_ms"].as_u64());
    Json(json!({
        "lockHeld": seats.held > 0,
        "seats": {"total": seats.total, "held": seats.held},
        "sessions": list,
    }))
}

async fn get_session(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.registry.get(&id) {
        Some(s) => Json(s.to_json()).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such session"),
    }
}

/// Admin routes: the bearer token when one is set, else loopback peers only.
/// Returns the refusal, if refused.
fn refuse_admin(app: &App, headers: &HeaderMap, info: Option<&ConnInfo>) -> Option<Response> {
    let ok = match &app.config.admin_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())),
        None => info.is_some_and(|i| i.peer.ip().is_loopback()),
    };
    if ok {
        None
    } else {
        let why = if app.config.admin_token.is_some() {
            "admin routes need Authorization: Bearer <admin token>"
        } else {
            "admin routes answer loopback peers only (set --admin-token to allow others)"
        };
        Some(json_error(StatusCode::UNAUTHORIZED, "unauthorized", why))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn evict(
    State(app): State<Arc<App>>,
    info: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = refuse_admin(&app, &headers, info.as_deref()) {
        return r;
    }
    match app.registry.get(&id) {
        Some(s) => {
            s.evict();
            StatusCode::NO_CONTENT.into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such session"),
    }
}

async fn command(
    State(app): State<Arc<App>>,
    info: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_admin(&app, &headers, info.as_deref()) {
        return r;
    }
    let Some(session) = app.registry.get(&id) else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such session");
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_payload",
                "body is not UTF-8",
            )
        }
    };
    match ClientMsg::parse(text) {
        Ok(ClientMsg::Hello(_)) => json_error(
            StatusCode::BAD_REQUEST,
            "bad_message",
            "hello cannot be injected into a live session",
        ),
        Ok(msg) => {
            session.client_message(msg).await;
            (StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let seats = app.registry.count();
    let ready = app.ready();
    let body = Json(json!({
        "ready": ready,
        "seats": {"total": seats.total, "held": seats.held},
        "engine_ready": app.engine.is_ready(),
        "admission_ready": app.admission.as_ref().map(|a| a.ready()),
    }));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn member_ready(State(app): State<Arc<App>>) -> Response {
    let ready = app.member_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "draining": app.is_draining()})),
    )
        .into_response()
}

async fn drain(
    State(app): State<Arc<App>>,
    info: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse_admin(&app, &headers, info.as_deref()) {
        return r;
    }
    app.draining.store(true, Relaxed);
    app.seat_released(); // publish "draining" to the pool now
    let seats = app.registry.count();
    (
        StatusCode::ACCEPTED,
        Json(json!({"draining": true, "seats": {"total": seats.total, "held": seats.held}})),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut out = String::with_capacity(8 << 10);
    app.metrics.render(&mut out);
    let (seats, sessions) = app.registry.snapshot();
    let detached = sessions.iter().filter(|s| s.is_detached()).count() as u64;
    let st = app.sampler.stats();
    let secs = |ns: &std::sync::atomic::AtomicU64| ns.load(Relaxed) as f64 / 1e9;
    for (name, kind, help, value) in [
        (
            "seatkeeper_seats_total",
            "gauge",
            "Seats configured.",
            seats.total as f64,
        ),
        (
            "seatkeeper_seats_held",
            "gauge",
            "Seats held.",
            seats.held as f64,
        ),
        (
            "seatkeeper_lock_held",
            "gauge",
            "1 while at least one seat is held.",
            (seats.held > 0) as u8 as f64,
        ),
        (
            "seatkeeper_sessions_detached",
            "gauge",
            "Sessions waiting for a resume.",
            detached as f64,
        ),
        (
            "seatkeeper_engine_ready",
            "gauge",
            "1 while the engine can open sessions.",
            app.engine.is_ready() as u8 as f64,
        ),
        (
            "seatkeeper_watchdog_sweeps_total",
            "counter",
            "Watchdog sweeps over all session sockets.",
            st.sweeps.load(Relaxed) as f64,
        ),
        (
            "seatkeeper_watchdog_samples_total",
            "counter",
            "Socket samples taken by the watchdog.",
            st.samples.load(Relaxed) as f64,
        ),
        (
            "seatkeeper_watchdog_sweep_seconds_total",
            "counter",
            "Wall-clock time spent sweeping (includes waiting for a core).",
            secs(&st.sweep_ns_total),
        ),
        (
            "seatkeeper_watchdog_sweep_cpu_seconds_total",
            "counter",
            "CPU time the sweeps used (what watching costs).",
            secs(&st.sweep_cpu_ns_total),
        ),
        (
            "seatkeeper_watchdog_last_sweep_seconds",
            "gauge",
            "Duration of the last sweep.",
            secs(&st.last_sweep_ns),
        ),
        (
            "seatkeeper_watchdog_sockets",
            "gauge",
            "Sockets in the last sweep.",
            st.last_sweep_sockets.load(Relaxed) as f64,
        ),
    ] {
        family(&mut out, name, kind, help, &[("", value)]);
    }
    let gauges = app.engine.stat_gauges();
    if !gauges.is_empty() {
        // Names are checked and capped by the engine crate (bounded labels).
        let labels: Vec<(String, f64)> = gauges
            .into_iter()
            .map(|(name, v)| (format!("name=\"{name}\""), v))
            .collect();
        let samples: Vec<(&str, f64)> = labels.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        family(
            &mut out,
            "seatkeeper_engine_stat",
            "gauge",
            "Numeric fields of the engine's latest stats (engine-wide, at most 32 names).",
            &samples,
        );
    }
    if let Some(a) = &app.admission {
        a.render_metrics(&mut out);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
