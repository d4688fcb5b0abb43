//! The service's routes: which handler answers which path, and what every request
//! goes through first (a token before its body is read, a bound on its time).

use crate::problem::Problem;
use crate::store::{Scope, Store};
use crate::{App, api, auth};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The routes, over `app`.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router {
    // JSON escapes text: room for twice the project, the bound is checked on the files.
    let limit = app
        .options
        .max_upload
        .saturating_mul(2)
        .saturating_add(1 << 20);
    // Every request but an event stream is bounded in time (a slow body included).
    // A request without a valid token is refused before its body is read.
    let token_first = axum::middleware::from_fn_with_state(app.clone(), token_first::<S>);
    let open = Router::new()
        .route("/healthz", get(api::service::healthz))
        .route("/api/v1/openapi.json", get(crate::openapi::serve))
        .route("/", get(crate::ui::index))
        .route("/ui/app.js", get(crate::ui::script))
        .route("/ui/app.css", get(crate::ui::style))
        .route_layer(axum::middleware::from_fn(bounded_time));
    let bounded = Router::new()
        .route("/metrics", get(api::service::metrics::<S>))
        .route(
            "/api/v1/runs",
            post(api::submit::submit::<S>).get(api::runs::list::<S>),
        )
        .route("/api/v1/runs/{id}", get(api::runs::run::<S>))
        .route(
            "/api/v1/runs/{id}/scenarios",
            get(api::runs::scenarios::<S>),
        )
        .route(
            "/api/v1/runs/{id}/scenarios/{sid}",
            get(api::runs::scenario::<S>),
        )
        .route("/api/v1/runs/{id}/report", get(api::report::report::<S>))
        .route("/api/v1/runs/{id}/cancel", post(api::runs::cancel::<S>))
        .route("/api/v1/runs/{id}/baseline", get(api::runs::baseline::<S>))
        .route(
            "/api/v1/scenarios/{sid}/history",
            get(api::history::history::<S>),
        )
        .route(
            "/api/v1/tokens",
            post(api::tokens::create_token::<S>).get(api::tokens::tokens::<S>),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(api::tokens::delete_token::<S>),
        )
        .route_layer(axum::middleware::from_fn(bounded_time))
        .route_layer(token_first.clone());
    Router::new()
        .route("/api/v1/runs/{id}/events", get(crate::sse::events::<S>))
        .route_layer(token_first)
        .merge(bounded)
        .merge(open)
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

/// How long a request (but an event stream) may take, its body included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Refuses a request without a known token (401) before anything reads its body; the
/// handler then checks the scope it needs.
async fn token_first<S: Store>(
    State(app): State<Arc<App<S>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut req = req;
    match auth::authorize(&app.store, req.headers(), Scope::Read).await {
        Ok(granted) => {
            req.extensions_mut().insert(granted);
            next.run(req).await
        }
        Err(p) => p.into_response(),
    }
}

async fn bounded_time(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(answer) => answer,
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took more than {} s", REQUEST_TIMEOUT.as_secs()),
        )
        .into_response(),
    }
}
