//! A scenario across runs: its last outcomes and its flaky rate.

use super::request::Api;
use crate::auth;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store};
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};

/// A scenario's last outcomes.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct History {
    /// Its id.
    scenario: String,
    /// Newest first, at most 100.
    runs: Vec<crate::store::ScenarioOutcome>,
    /// Share of them that were `flaky`.
    flaky_rate: f64,
}

/// A scenario's last outcomes and its flaky rate.
#[utoipa::path(get, path = "/api/v1/scenarios/{sid}/history", tag = "scenarios", params(("sid" = String, Path, description = "scenario id")),
    responses((status = 200, body = History), (status = 401, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn history<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(sid): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    let runs = app.store.history(&sid, 100).await?;
    let flaky = runs.iter().filter(|r| r.status == "flaky").count();
    let rate = if runs.is_empty() {
        0.0
    } else {
        flaky as f64 / runs.len() as f64
    };
    Ok(axum::Json(History {
        scenario: sid,
        runs,
        flaky_rate: rate,
    })
    .into_response())
}
