//! The JSON error body every route and the upgrade share. It sits below
//! `http`, `ws` and `access` so that none of them imports another for it.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

/// A JSON error response: `{"error": code, "message": …}`.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}
