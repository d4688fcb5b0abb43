//! A run's report once it ended, as JSON, JUnit XML, Markdown or a self-contained
//! HTML page (with the spans its scenarios collected).

use super::request::{Api, parsed};
use super::runs::existing;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store};
use crate::{App, auth};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clnrm_core::otel::SpanRecord;
use clnrm_core::report::RunReport;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportQuery {
    /// `json` (the default), `junit`, `markdown` or `html` (a self-contained page).
    format: Option<String>,
}

/// The report of a run that ended.
#[utoipa::path(get, path = "/api/v1/runs/{id}/report", tag = "runs",
    params(("id" = String, Path, description = "run id"), ReportQuery),
    responses((status = 200, description = "the report", content((Object = "application/json"), (String = "application/xml"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json"), (status = 409, description = "not ended yet", body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn report<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = parsed(q)?;
    auth::need(granted, Scope::Read)?;
    let run = existing(&app, &id).await?;
    let Some(text) = app.store.report(&id).await? else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "run \"{id}\" is {}: it has no report yet (follow /api/v1/runs/{id}/events)",
                run.status
            ),
        ));
    };
    let parsed = || {
        clnrm_core::report::from_json(&text)
            .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    };
    let (kind, body) = match q.format.as_deref().unwrap_or("json") {
        "json" => ("application/json", text.clone()),
        "junit" => ("application/xml", clnrm_core::report::to_junit(&parsed()?)),
        "markdown" => (
            "text/markdown; charset=utf-8",
            clnrm_core::report::to_markdown(&parsed()?),
        ),
        "html" => (
            "text/html; charset=utf-8",
            html(&app, &id, &parsed()?).await?,
        ),
        other => {
            return Err(Problem::bad_request(format!(
                "format \"{other}\": expected json, junit, markdown or html"
            )));
        }
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// `report.html` of run `id`'s `report`, with the spans its scenarios collected.
async fn html<S: Store>(app: &App<S>, id: &str, report: &RunReport) -> Result<String, Problem> {
    let mut spans = std::collections::HashMap::new();
    for r in report.results.iter().filter(|r| r.spans > 0) {
        if let Some(text) = app.store.spans(id, &r.id.0).await?
            && let Ok(list) = serde_json::from_str::<Vec<SpanRecord>>(&text)
        {
            spans.insert(r.id.0.clone(), list);
        }
    }
    // Rendering is CPU work of its own: off the request threads, each list moved
    // into the page rather than copied.
    let report = report.clone();
    tokio::task::spawn_blocking(move || {
        let spans = std::sync::Mutex::new(spans);
        let run = report.run_id.clone();
        clnrm_core::report::to_html(&report, &|r| {
            let list = spans.lock().ok()?.remove(&r.id.0)?;
            Some((run.clone(), list))
        })
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
