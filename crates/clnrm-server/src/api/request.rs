//! What every handler reads besides its own arguments: the app's state, a body and a
//! query string, each failing as a problem document.

use crate::App;
use crate::problem::Problem;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// The app, as handlers take it.
pub(super) type Api<S> = State<Arc<App<S>>>;

/// A body, or the problem it has (too large: 413).
pub(super) fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than this server takes (--max-upload-mb)",
        ),
        status => Problem::new(status, format!("body: {}", e.body_text())),
    })
}

/// A query string, or the problem it has (as a problem document, like every error).
pub(super) fn parsed<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(v)| v)
        .map_err(|e| Problem::bad_request(format!("query: {}", e.body_text())))
}
