//! The HTTP routes (contract, "HTTP routes").

use std::sync::{atomic::Ordering::Relaxed, Arc};

use axum::{
    extract::{Path, Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Extension, Json, Router,
};
use seatkeeper_protocol::ClientMsg;
use serde_json::{json, Value};

use crate::{
    access::{self, Listener},
    app::App,
    reply::json_error,
    session::EndRequest,
    web, ws,
};

/// Routes that need admin rights, behind the check that runs before any
/// body is read.
fn admin_routes(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/sessions/{id}", delete(evict))
        .route("/sessions/{id}/cmd", post(command))
        .route("/drain", post(drain).delete(undrain))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(app),
            access::require_admin,
        ))
}

/// Routes both listeners answer.
fn shared_routes(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", get(get_session))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/readyz/pool", get(member_ready))
        .route("/metrics", get(metrics))
        .merge(admin_routes(app))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
}

/// The public port's router: sessions, the web client, public and admin routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    shared_routes(&app)
        .route("/ws", get(ws_route))
        .merge(web::routes())
        .with_state(app)
}

/// The admin listener's router: no sessions, no web client; every request
/// is admin, and a `Host` that is a DNS name is refused.
pub(crate) fn admin_router(app: Arc<App>) -> Router {
    shared_routes(&app)
        .route("/admin", get(web::admin_page))
        .route("/admin/state", get(admin_state))
        .layer(middleware::from_fn(access::check_host))
        .with_state(app)
}

async fn ws_route(State(app): State<Arc<App>>, req: Request) -> Response {
    ws::upgrade(app, req).await
}

fn admin_view(app: &App, listener: Option<Extension<Listener>>, headers: &HeaderMap) -> bool {
    access::is_admin(app, listener.map(|l| l.0), headers)
}

async fn list_sessions(
    State(app): State<Arc<App>>,
    listener: Option<Extension<Listener>>,
    headers: HeaderMap,
) -> Json<Value> {
    let admin = admin_view(&app, listener, &headers);
    let (seats, sessions) = app.registry.snapshot();
    let mut list: Vec<Value> = sessions.iter().map(|s| s.to_json(admin)).collect();
    list.sort_by_key(|v| v["started_at_ms"].as_u64());
    Json(json!({
        "lockHeld": seats.held > 0,
        "seats": {"total": seats.total, "held": seats.held},
        "sessions": list,
    }))
}

async fn get_session(
    State(app): State<Arc<App>>,
    listener: Option<Extension<Listener>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let admin = admin_view(&app, listener, &headers);
    match app.registry.get(&id) {
        Some(s) => Json(s.to_json(admin)).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such session"),
    }
}

/// Everything the operator's page shows, in one answer.
async fn admin_state(State(app): State<Arc<App>>) -> Json<Value> {
    let (seats, sessions) = app.registry.snapshot();
    let mut list: Vec<Value> = sessions.iter().map(|s| s.to_json(true)).collect();
    list.sort_by_key(|v| v["started_at_ms"].as_u64());
    let fleet = match &app.admission {
        Some(a) => a.fleet().await,
        None => None,
    };
    let cfg = &app.config;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let st = app.sampler.stats();
    Json(json!({
        "now_ms": crate::ids::now_ms(),
        "seats": {"total": seats.total, "held": seats.held},
        "ready": app.ready(),
        "draining": app.is_draining(),
        "engine": {"name": app.engine.name(), "ready": app.engine.is_ready()},
        "config": {
            "grace_ms": ms(cfg.stall_grace),
            "pong_timeout_ms": cfg.pong_timeout.map(ms),
            "ping_interval_ms": ms(cfg.ping_interval),
            "watchdog_interval_ms": ms(cfg.watchdog_interval),
            "resume_window_ms": cfg.resume_window.map(ms),
        },
        "watchdog": {
            "sockets": st.last_sweep_sockets.load(Relaxed),
            "last_sweep_us": st.last_sweep_ns.load(Relaxed) / 1000,
            "sweeps": st.sweeps.load(Relaxed),
            "last_sweep_looks": st.last_sweep_looks.load(Relaxed),
            "last_sweep_exempt": st.last_sweep_exempted.load(Relaxed),
        },
        "sessions": list,
        "reaps": app.recent_reaps.list(),
        "fleet": fleet,
    }))
}

async fn evict(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(session) = app.registry.get(&id) else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such session");
    };
    match session.request_end(EndRequest::Evict) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => json_error(
            StatusCode::CONFLICT,
            "already_ending",
            "the session is already ending for another reason",
        ),
    }
}

async fn command(State(app): State<Arc<App>>, Path(id): Path<String>, req: Request) -> Response {
    let Some(session) = app.registry.get(&id) else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such session");
    };
    let body = match access::read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
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
        "seats": {
            "total": seats.total,
            "held": seats.held,
            // Unredeemed pool claims: free here, promised to someone.
            "reserved": app.admission.as_ref().map_or(0, |a| a.reserved()),
        },
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

async fn drain(State(app): State<Arc<App>>) -> Response {
    set_draining(&app, true)
}

async fn undrain(State(app): State<Arc<App>>) -> Response {
    set_draining(&app, false)
}

fn set_draining(app: &App, on: bool) -> Response {
    let was = app.draining.swap(on, Relaxed);
    if was != on {
        tracing::info!(
            draining = on,
            "{}",
            if on {
                "draining: no new sessions"
            } else {
                "drain cancelled: admitting sessions again"
            }
        );
    }
    app.seat_released(); // publish the new state to the pool now
    let seats = app.registry.count();
    (
        StatusCode::ACCEPTED,
        Json(json!({"draining": on, "seats": {"total": seats.total, "held": seats.held}})),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.render_metrics(),
    )
        .into_response()
}
