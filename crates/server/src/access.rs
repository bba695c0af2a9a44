//! Who may do what over HTTP, and how long a request may take.
//!
//! Nothing is admin because of its address: behind a tunnel (cloudflared,
//! ngrok, a GPU cloud's proxy) every visitor arrives from 127.0.0.1. Admin
//! rights come from the bearer token (`--admin-token`, either listener) or
//! from arriving on the admin listener (`--admin-listen`, loopback or a Unix
//! socket only). They are checked by a route layer, before a handler reads
//! the request body.
//!
//! One deadline covers a whole request, headers and body: it starts when
//! the connection begins waiting for the request (accept, or the previous
//! response), the same moment hyper's header timer starts.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::time::Instant;

use crate::{app::App, reply::json_error};

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The public port (`--listen`): sessions, the web client, public routes.
    Public,
    /// The admin listener (`--admin-listen`): admin without a token.
    Admin,
}

/// When the request must be complete, body included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

/// Largest request body (admin commands are small JSON objects).
pub(crate) const MAX_BODY: usize = 64 << 10;

/// Whether the request carries admin rights.
pub(crate) fn is_admin(app: &App, listener: Option<Listener>, headers: &HeaderMap) -> bool {
    listener == Some(Listener::Admin) || bearer_ok(app, headers)
}

fn bearer_ok(app: &App, headers: &HeaderMap) -> bool {
    let Some(token) = &app.config.admin_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

/// Compares without an early exit, so the time taken says nothing about
/// how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Route layer for admin routes: refuses before the handler runs, so a
/// refused request's body is never read.
pub(crate) async fn require_admin(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    let listener = req.extensions().get::<Listener>().copied();
    if is_admin(&app, listener, req.headers()) {
        return next.run(req).await;
    }
    let mut resp = if app.config.admin_token.is_some() {
        json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin routes need Authorization: Bearer <admin token>",
        )
    } else {
        json_error(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin routes are off on this port: start the server with --admin-token, \
             or use the --admin-listen listener",
        )
    };
    // The body was not read: do not keep the connection for another request.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if app.config.admin_token.is_some() {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Layer of the admin listener: refuses a `Host` that is not an IP literal
/// or `localhost`, so a web page cannot reach the listener through a DNS
/// name rebound to 127.0.0.1.
pub(crate) async fn check_host(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"));
    match host {
        Some(h) if !host_is_local_literal(h) => {
            let mut resp = json_error(
                StatusCode::FORBIDDEN,
                "bad_host",
                "the admin listener answers only Host: an IP literal or localhost",
            );
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
        _ => next.run(req).await,
    }
}

/// `127.0.0.1`, `[::1]:8080`, `localhost:1320`, … — no DNS names.
pub(crate) fn host_is_local_literal(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if tail.is_empty() || valid_port(tail) => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn valid_port(tail: &str) -> bool {
    tail.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

/// Reads a request body within the request's deadline and the size limit.
pub(crate) async fn read_body(req: Request) -> Result<Bytes, Response> {
    let deadline = req.extensions().get::<Deadline>().map(|d| d.0);
    let body: Body = req.into_body();
    let read = axum::body::to_bytes(body, MAX_BODY);
    let result = match deadline {
        Some(at) => match tokio::time::timeout_at(at, read).await {
            Ok(r) => r,
            Err(_) => return Err(closing(request_timeout())),
        },
        None => read.await,
    };
    result.map_err(|e| {
        closing(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("the request body could not be read within {MAX_BODY} bytes: {e}"),
        ))
    })
}

fn request_timeout() -> Response {
    json_error(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request (headers and body) did not arrive in time",
    )
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_literals_and_localhost_pass_the_host_check() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:1320",
            "localhost",
            "LOCALHOST:80",
            "[::1]",
            "[::1]:1320",
            "10.0.0.7:8080",
        ] {
            assert!(host_is_local_literal(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:1320",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[::1",
            "[::1]x",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "",
        ] {
            assert!(!host_is_local_literal(bad), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token", b"s3cret-tokeN"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-token"));
    }
}
