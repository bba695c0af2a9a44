//! The web client, embedded in the binary so the release binary alone
//! serves it.

use axum::{http::header, routing::get, Router};

const INDEX: &str = include_str!("../../../web/index.html");
const APP: &str = include_str!("../../../web/app.js");
const WORKLET: &str = include_str!("../../../web/worklet.js");
const STYLE: &str = include_str!("../../../web/style.css");
const ADMIN: &str = include_str!("../../../web/admin.html");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `GET /` and the client's assets.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let file = |ctype: &'static str, body: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, ctype),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
        })
    };
    Router::new()
        .route("/", file(HTML, INDEX))
        .route("/index.html", file(HTML, INDEX))
        .route("/app.js", file(JS, APP))
        .route("/worklet.js", file(JS, WORKLET))
        .route("/style.css", file(CSS, STYLE))
}

/// `GET /admin` on the admin listener: the operator's page.
pub(crate) async fn admin_page() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        ADMIN,
    )
}
