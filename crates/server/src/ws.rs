//! `GET /ws`: the upgrade, the `hello`, and the decision it leads to — a
//! resumed session, a fresh one, `busy`, or a refusal.

use std::sync::{atomic::Ordering::Relaxed, Arc};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use seatkeeper_engine::OpenRequest;
use seatkeeper_protocol::{close, messages::Hello, ClientMsg, ServerMsg};
use tokio_tungstenite::{
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
        Message,
    },
    WebSocketStream,
};
use tracing::{debug, info};

use crate::{
    app::App,
    net::ConnInfo,
    reply::json_error,
    session::{
        self,
        conn::{self, read_error, violation, Conn, ConnEnd, Ws},
        goodbye::{self, Goodbye},
        Owned, Session, Sink,
    },
    write_through::WriteThrough,
};

/// The WebSocket read buffer of a connection (see [`upgrade`]).
const READ_BUFFER: usize = 1 << 10;

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Answers the upgrade and hands the connection to [`admit`].
pub(crate) async fn upgrade(app: Arc<App>, mut req: Request) -> Response {
    let headers = req.headers();
    if !header_has(headers, header::CONNECTION, "upgrade")
        || !header_has(headers, header::UPGRADE, "websocket")
    {
        return json_error(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "GET /ws is a WebSocket endpoint",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_version",
            "Sec-WebSocket-Version must be 13",
        );
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_key",
            "Sec-WebSocket-Key is missing",
        );
    };
    // Origin protects browsers from pages on other sites; clients that are
    // not browsers send none (and could send any), so only a foreign Origin
    // is refused.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = &app.config.allowed_origins;
        let origin = origin.to_str().unwrap_or("");
        if !allowed.is_empty() && !allowed.iter().any(|a| a == origin) {
            return json_error(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this Origin may not open sessions here",
            );
        }
    }
    let accept = derive_accept_key(key.as_bytes());
    let Some(info) = req.extensions().get::<ConnInfo>().cloned() else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "connection info missing",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let app2 = Arc::clone(&app);
    app.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // Client messages are small (an ack is ~40 bytes): a 1 KiB
                // read buffer instead of the default 128 KiB keeps a
                // session's memory small. It is allocated up front and kept
                // for the connection's life; a larger message is still read
                // whole (the buffer grows to its length, then is reused).
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .max_message_size(Some(app2.config.max_message_bytes))
                    .max_frame_size(Some(app2.config.max_message_bytes));
                let ws = WebSocketStream::from_raw_socket(
                    WriteThrough::new(TokioIo::new(upgraded)),
                    Role::Server,
                    Some(config),
                )
                .await;
                app2.metrics.upgrades.fetch_add(1, Relaxed);
                admit(ws, app2, info).await;
            }
            Err(e) => debug!("upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp.into_response()
}

/// Says an optional message and closes with `code` (see [`goodbye`]).
async fn refuse(
    ws: Ws,
    app: &App,
    info: &ConnInfo,
    msg: Option<ServerMsg>,
    code: u16,
    reason: &str,
) {
    let bye = Goodbye::Close {
        error: msg,
        code,
        reason: reason.to_owned(),
    };
    goodbye::say(ws, bye, &info.socket, app.config.close_grace).await;
}

/// Refuses a connection that broke a rule before its session began.
async fn refuse_with(ws: Ws, app: &App, info: &ConnInfo, end: ConnEnd) {
    app.metrics.refused.fetch_add(1, Relaxed);
    goodbye::say(ws, end.goodbye(), &info.socket, app.config.close_grace).await;
}

/// Waits for `hello`, then resumes, starts, or refuses a session.
async fn admit(mut ws: Ws, app: Arc<App>, info: ConnInfo) {
    let first = tokio::select! {
        _ = app.shutdown.cancelled() => {
            refuse(ws, &app, &info, None, close::GOING_AWAY, "server shutting down").await;
            return;
        }
        first = tokio::time::timeout(app.config.hello_timeout, next_message(&mut ws)) => first,
    };
    let hello = match first {
        Err(_) => {
            let msg = format!(
                "no hello within {} s of the upgrade",
                app.config.hello_timeout.as_secs_f64()
            );
            return refuse_with(
                ws,
                &app,
                &info,
                violation(close::POLICY, "hello_timeout", msg),
            )
            .await;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            let end = read_error(e, app.config.max_message_bytes);
            return refuse_with(ws, &app, &info, end).await;
        }
        Ok(Some(Ok(Message::Binary(_)))) => {
            let end = violation(
                close::UNSUPPORTED_DATA,
                "binary_not_accepted",
                "clients send text (JSON) messages only",
            );
            return refuse_with(ws, &app, &info, end).await;
        }
        Ok(Some(Ok(Message::Text(text)))) => match ClientMsg::parse(&text) {
            Ok(ClientMsg::Hello(h)) => h,
            Err(e) if e.is_fatal() => {
                let end = violation(close::INVALID_PAYLOAD, e.code(), e.to_string());
                return refuse_with(ws, &app, &info, end).await;
            }
            Err(e @ seatkeeper_protocol::ParseError::BadField { kind: "hello", .. }) => {
                let end = violation(close::POLICY, "bad_hello", e.to_string());
                return refuse_with(ws, &app, &info, end).await;
            }
            _ => {
                let end = violation(
                    close::POLICY,
                    "hello_required",
                    "the first message must be {\"type\":\"hello\"}",
                );
                return refuse_with(ws, &app, &info, end).await;
            }
        },
        // A close frame: the client left before saying hello; answer it.
        Ok(Some(Ok(_))) => {
            return goodbye::say(ws, Goodbye::Echo, &info.socket, app.config.close_grace).await
        }
    };

    if let Some(token) = hello.resume.as_deref() {
        if let Some(session) = app.registry.redeem(token) {
            let conn = Conn::new(&app, &session.id, info.peer, Arc::clone(&info.socket));
            if let Ok((generation, old)) = session.attach(&conn, true) {
                app.metrics.resumes.fetch_add(1, Relaxed);
                if let Some(old) = old {
                    app.metrics.takeovers.fetch_add(1, Relaxed);
                    old.finish(ConnEnd::Replaced);
                    info!(session_id = %session.id, peer = %info.peer, old_peer = %old.peer, "session taken over by a resume");
                } else {
                    info!(session_id = %session.id, peer = %info.peer, "session resumed");
                }
                run_conn(&app, ws, session, conn, generation);
                return;
            }
        }
        debug!(peer = %info.peer, "resume token not valid; treating as a fresh hello");
    }
    start(ws, app, info, hello).await;
}

/// The next data or close message, skipping pings and pongs.
async fn next_message(
    ws: &mut Ws,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    loop {
        match ws.next().await? {
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            other => return Some(other),
        }
    }
}

async fn start(ws: Ws, app: Arc<App>, info: ConnInfo, hello: Hello) {
    // The seat token is judged before the seats are counted, so a caller
    // without a good token learns nothing about the pod's seats (a full pod
    // answers it `bad_seat_token`, not `busy`).
    let lease = match &app.admission {
        Some(adm) => {
            let admitted = tokio::select! {
                _ = app.shutdown.cancelled() => None,
                a = adm.admit(hello.seat_token.clone()) => Some(a),
            };
            match admitted {
                None => return going_away(ws, &app, &info).await,
                Some(Ok(lease)) => Some(lease),
                Some(Err(r)) => {
                    info!(peer = %info.peer, code = %r.code, "hello refused: {}", r.message);
                    let end = violation(r.close_code, &r.code, r.message);
                    return refuse_with(ws, &app, &info, end).await;
                }
            }
        }
        None => None,
    };
    let seat = if app.is_draining() {
        None
    } else {
        app.registry.try_reserve()
    };
    let Some(mut seat) = seat else {
        drop(lease); // its seat goes back to the pool
        app.metrics.busy.fetch_add(1, Relaxed);
        let busy = ServerMsg::Busy {
            retry_after_s: app.config.busy_retry_after.as_secs_f64(),
        };
        return refuse(ws, &app, &info, Some(busy), close::BUSY, "busy").await;
    };
    let (session, events) = Session::new(&app, hello.client_id);
    let opened = app
        .engine
        .open(OpenRequest {
            session_id: session.id.clone(),
            config: hello.engine.unwrap_or_default(),
            sink: Arc::new(Sink(Arc::clone(&session))),
            shutdown: app.shutdown.clone(),
        })
        .await;
    // Mutable: its description moves to the session (one copy, not two).
    let mut engine = match opened {
        Ok(e) => e,
        Err(_) if app.shutdown.is_cancelled() => {
            drop(seat);
            return going_away(ws, &app, &info).await;
        }
        Err(e) => {
            drop(seat);
            info!(peer = %info.peer, "engine refused a session: {e}");
            let code = if e.is_client_fault() {
                close::POLICY
            } else {
                close::INTERNAL
            };
            return refuse_with(ws, &app, &info, violation(code, e.code(), e.to_string())).await;
        }
    };
    *session
        .engine_info
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = std::mem::take(&mut engine.info);
    let _ = session.engine_stats.set(engine.stats());
    seat.bind(Arc::clone(&session));
    app.metrics.sessions_started.fetch_add(1, Relaxed);
    let conn = Conn::new(&app, &session.id, info.peer, Arc::clone(&info.socket));
    let Ok((generation, _)) = session.attach(&conn, false) else {
        return; // unreachable: nothing can close a session before its task runs
    };
    info!(session_id = %session.id, peer = %info.peer, client_id = session.client_id.as_deref(), "session started");
    app.tracker.spawn(session::run_guarded(
        Arc::clone(&session),
        events,
        Owned {
            seat,
            engine,
            lease,
        },
    ));
    run_conn(&app, ws, session, conn, generation);
}

/// Hands an attached connection to a task of its own. The task that did the
/// upgrade and the `hello` then ends, so a streaming session holds only the
/// connection's state, not also the (larger) state of every admission path.
fn run_conn(app: &App, ws: Ws, session: Arc<Session>, conn: Arc<Conn>, generation: u64) {
    app.tracker.spawn(conn::run(ws, session, conn, generation));
}

/// Closes a connection whose session never began because the server is
/// stopping.
async fn going_away(ws: Ws, app: &App, info: &ConnInfo) {
    refuse(
        ws,
        app,
        info,
        None,
        close::GOING_AWAY,
        "server shutting down",
    )
    .await
}
