//! Reading and cancelling runs: the list, one run, its scenarios' results, its
//! recorded baseline, and cancelling it.

use super::request::{Api, parsed};
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store, is_final};
use crate::{App, auth};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// A page of runs.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RunsPage {
    /// Newest first.
    runs: Vec<crate::store::RunRow>,
    /// Pass it as `cursor` for the next page; none on the last.
    next_cursor: Option<String>,
}

/// A run's scenarios in brief.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Scenarios {
    /// `{id, name, file, status, reason, duration_ms, tags}` each.
    #[schema(value_type = Vec<Object>)]
    scenarios: Vec<Value>,
}

/// What a cancel did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Cancelled {
    /// The run's id.
    id: String,
    /// Its status after the cancel.
    status: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only runs in this status.
    status: Option<String>,
    /// Runs on a page (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the page before.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// Runs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(ListQuery),
    responses((status = 200, body = RunsPage), (status = 400, body = ProblemDoc, content_type = "application/problem+json"), (status = 401, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = parsed(q)?;
    auth::need(granted, Scope::Read)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit: expected 1 to 500"));
    }
    let cursor = match q.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| Problem::bad_request("cursor: not a cursor this server gave"))?,
        ),
        None => None,
    };
    let runs = app.store.runs(q.status.as_deref(), limit, cursor).await?;
    let next = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(axum::Json(RunsPage {
        runs,
        next_cursor: next,
    })
    .into_response())
}

/// One run.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = crate::store::RunRow), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn run<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    Ok(axum::Json(existing(&app, &id).await?).into_response())
}

/// Run `id`, or 404.
pub(super) async fn existing<S: Store>(
    app: &App<S>,
    id: &str,
) -> Result<crate::store::RunRow, Problem> {
    app.store
        .run(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no run \"{id}\"")))
}

/// The latest result of each scenario of a run, from its events (during the run too).
async fn results<S: Store>(app: &App<S>, id: &str) -> Result<Vec<Value>, Problem> {
    existing(app, id).await?;
    let mut out: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let batch = app.store.events(id, after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        for (_, data) in batch {
            let Ok(mut v) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if v["event"] != "scenario_finished" {
                continue;
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("event");
            }
            match out.iter().position(|x| x["id"] == v["id"]) {
                Some(i) => out[i] = v,
                None => out.push(v),
            }
        }
    }
    Ok(out)
}

/// The latest result of each scenario of a run, in brief (also while it runs).
#[utoipa::path(get, path = "/api/v1/runs/{id}/scenarios", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = Scenarios), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn scenarios<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    let brief: Vec<Value> = results(&app, &id)
        .await?
        .iter()
        .map(|s| json!({"id": s["id"], "name": s["name"], "file": s["file"], "status": s["status"], "reason": s["reason"], "duration_ms": s["duration_ms"], "tags": s["tags"]}))
        .collect();
    Ok(axum::Json(Scenarios { scenarios: brief }).into_response())
}

/// One scenario's latest result in full, as in the JSON report.
#[utoipa::path(get, path = "/api/v1/runs/{id}/scenarios/{sid}", tag = "runs",
    params(("id" = String, Path, description = "run id"), ("sid" = String, Path, description = "scenario id")),
    responses((status = 200, body = Object), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn scenario<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    let mut found = results(&app, &id)
        .await?
        .into_iter()
        .find(|s| s["id"] == sid.as_str());
    // The spans it collected, once its run ended.
    if let Some(s) = &mut found
        && let Some(spans) = app.store.spans(&id, &sid).await?
    {
        s["span_list"] = serde_json::from_str(&spans).unwrap_or_default();
    }
    match found {
        Some(s) => Ok(axum::Json(s).into_response()),
        None => Err(Problem::not_found(format!(
            "run \"{id}\" has no result for scenario \"{sid}\""
        ))),
    }
}

/// Cancels a run: a queued one at once, a running one at its worker's next renewal.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, description = "cancelled (or already ended)", body = Cancelled), (status = 202, description = "its worker will stop it", body = Cancelled),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn cancel<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Run)?;
    let (status, now_cancelled) = app
        .store
        .cancel(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no run \"{id}\"")))?;
    // A queued run ends now: its event streams and webhooks learn it (once).
    let _ = app.appended.send(id.clone());
    if now_cancelled {
        crate::webhook::run_finished(&app, &id);
    }
    let code = if is_final(&status) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, axum::Json(Cancelled { id, status })).into_response())
}

/// The span-tree baseline a run recorded (`update_baseline`): the baseline file to
/// commit as `.clnrm/trace.json`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/baseline", tag = "runs", params(("id" = String, Path, description = "run id")),
    responses((status = 200, description = "the baseline file", body = Object),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such run, or it recorded no baseline", body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn baseline<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    existing(&app, &id).await?;
    match app.store.baseline(&id).await? {
        Some(text) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        None => Err(Problem::not_found(format!(
            "run \"{id}\" recorded no baseline (submit it with update_baseline)"
        ))),
    }
}
