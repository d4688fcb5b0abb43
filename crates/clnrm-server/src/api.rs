//! The HTTP API (SPEC §9), under `/api/v1`: thin handlers that authorise, parse and
//! call the store. A submitted project is checked (paths, size, validation, host
//! mounts) and stored before the 201; running it is a worker's job.

use crate::job::RunOptions;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store, is_final};
use crate::upload::{Bundle, Refused};
use crate::{App, auth};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clnrm_core::otel::SpanRecord;
use clnrm_core::report::RunReport;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type Api<S> = State<Arc<App<S>>>;

/// A body, or the problem it has (too large: 413).
fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than this server takes (--max-upload-mb)",
        ),
        status => Problem::new(status, format!("body: {}", e.body_text())),
    })
}

/// A query string, or the problem it has (as a problem document, like every error).
fn parsed<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(v)| v)
        .map_err(|e| Problem::bad_request(format!("query: {}", e.body_text())))
}

/// Whether the service answers (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "ok", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `POST /runs` with a JSON body: the project's files and the options.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// Path (relative to the project root) → the file's text; at least one.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    files: serde_json::Map<String, Value>,
    /// How to run.
    #[serde(default)]
    options: RunOptions,
}

/// The answer to a submission.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The run's id.
    id: String,
    /// `queued`.
    status: String,
}

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

/// Query of `POST /runs` with a `.tar.gz` body: the options as parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TarQuery {
    /// Scenarios at once.
    #[param(minimum = 1, maximum = 1024)]
    workers: Option<u64>,
    /// Scenario-id glob.
    filter: Option<String>,
    /// Only scenarios with this tag.
    tag: Option<String>,
    /// Run everything.
    force: Option<bool>,
    /// Runs after a failure.
    #[param(maximum = 100)]
    retries: Option<u64>,
    /// Record baselines.
    update_baseline: Option<bool>,
}

/// Submits a run: a project (`.tar.gz`, or JSON files) and options; stored and queued
/// before the answer.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    params(TarQuery, ("X-Clnrm-Options" = Option<String>, Header, description = "the options as JSON, with a .tar.gz body")),
    request_body(content((Submit = "application/json"), (Vec<u8> = "application/gzip")), description = "the project"),
    responses(
        (status = 201, description = "stored and queued", body = Created),
        (status = 400, description = "a malformed body or option, a path that escapes, a link", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or an unknown token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "too small a scope, or a host mount", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "over --max-upload-mb", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "another content type", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "the project does not validate", body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn submit<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    headers: HeaderMap,
    query: Result<Query<TarQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = bytes(body)?;
    auth::need(granted, Scope::Run)?;
    let max = app.options.max_upload;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let refused = |e: Refused| match e {
        Refused::Bad(m) => Problem::bad_request(m),
        Refused::TooLarge(m) => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, m),
    };
    let (bundle, options) = match kind.as_str() {
        "application/gzip" | "application/x-gzip" => {
            if body.len() > max {
                return Err(refused(Refused::TooLarge(format!(
                    "the archive is larger than {} MiB (--max-upload-mb)",
                    max >> 20
                ))));
            }
            let q = parsed(query)?;
            let in_header = headers
                .get("x-clnrm-options")
                .map(|v| {
                    v.to_str()
                        .map_err(|_| Problem::bad_request("X-Clnrm-Options: not text"))
                        .and_then(|t| {
                            serde_json::from_str::<RunOptions>(t)
                                .map_err(|e| Problem::bad_request(format!("X-Clnrm-Options: {e}")))
                        })
                })
                .transpose()?;
            let options = in_header.unwrap_or(RunOptions {
                workers: q.workers,
                filter: q.filter,
                tags: q.tag.into_iter().collect(),
                force: q.force.unwrap_or(false),
                retries: q.retries,
                update_baseline: q.update_baseline.unwrap_or(false),
                ..RunOptions::default()
            });
            (Bundle::from_tar_gz(&body, max).map_err(refused)?, options)
        }
        "application/json" => {
            let s: Submit = serde_json::from_slice(&body)
                .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
            (
                Bundle::from_json(&s.files, max).map_err(refused)?,
                s.options,
            )
        }
        other => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type \"{other}\": send application/gzip (a .tar.gz of the project) or application/json"
                ),
            ));
        }
    };
    options.check()?;
    let allow = app.options.allow_host_volumes;
    let checked = {
        let bundle = bundle.clone();
        let vars = options.assignments();
        tokio::task::spawn_blocking(move || check_project(&bundle, &vars, allow))
            .await
            .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    checked?;
    let id = crate::random_hex(8);
    let options = serde_json::to_value(&options).unwrap_or_default();
    app.store.insert_run(&id, &options, &bundle.pack()).await?;
    app.queued.notify_waiters();
    let location = format!("/api/v1/runs/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Created {
            id,
            status: "queued".into(),
        }),
    )
        .into_response())
}

/// A directory to check an upload in: in memory (`/dev/shm`) where the machine has
/// it, where making and removing one costs a fifth of what it does on disk.
fn scratch() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("clnrm-upload-")
            .tempdir_in(shm)
    {
        return Ok(dir);
    }
    tempfile::tempdir()
}

/// Validates the project as `clnrm validate` would, and refuses host bind mounts
/// unless they are allowed.
fn check_project(
    bundle: &Bundle,
    vars: &[String],
    allow_host_volumes: bool,
) -> Result<(), Problem> {
    let dir =
        scratch().map_err(|e| Problem::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()))?;
    bundle
        .write_to(dir.path())
        .map_err(|e| Problem::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()))?;
    // On this blocking thread, whose stack is large enough (see `runtime`).
    let prepared =
        clnrm_core::pipeline::prepare_with(dir.path(), &crate::job::paths(dir.path()), vars, true);
    let style = clnrm_core::diag::Style::Plain;
    if prepared.has_errors() {
        let text: Vec<String> = prepared
            .diagnostics()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| clnrm_core::diag::render_human(d, style))
            .collect();
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the project does not validate:\n{}", text.join("\n")),
        ));
    }
    crate::job::confined(&prepared)
        .map_err(|e| Problem::new(StatusCode::FORBIDDEN, e.to_string()))?;
    if !allow_host_volumes {
        for f in &prepared.files {
            let Some(file) = &f.file else { continue };
            for (id, svc) in file.services.iter() {
                if let Some(v) = svc.volumes.first() {
                    let at = f
                        .rendered
                        .as_ref()
                        .map(|s| s.line_col(v.host_path.span.start))
                        .map(|p| format!(":{}:{}", p.line, p.col))
                        .unwrap_or_default();
                    return Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{}{at}: service \"{}\" bind-mounts the host path \"{}\"; this server refuses host mounts in uploaded files (start it with --allow-host-volumes to allow them)",
                            f.display, id.value, v.host_path.value
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
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
async fn existing<S: Store>(app: &App<S>, id: &str) -> Result<crate::store::RunRow, Problem> {
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

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain"), (status = 401, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn metrics<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Read)?;
    let mut text = String::from("# HELP clnrm_runs Runs by status.\n# TYPE clnrm_runs gauge\n");
    let mut queued = 0;
    for (status, n) in app.store.counts().await? {
        if status == "queued" {
            queued = n;
        }
        text.push_str(&format!("clnrm_runs{{status=\"{status}\"}} {n}\n"));
    }
    text.push_str(&format!(
        "# HELP clnrm_queue_depth Runs waiting for a worker.\n# TYPE clnrm_queue_depth gauge\nclnrm_queue_depth {queued}\n"
    ));
    let since = crate::now_ms() - 3 * crate::HEARTBEAT.as_millis() as i64;
    let alive = app.store.workers_alive(since).await?;
    text.push_str(&format!(
        "# HELP clnrm_workers_alive Workers heard from in the last 15 s.\n# TYPE clnrm_workers_alive gauge\nclnrm_workers_alive {alive}\n"
    ));
    const BOUNDS_S: [f64; 9] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
    let bounds_ms: Vec<i64> = BOUNDS_S.iter().map(|b| (b * 1000.0) as i64).collect();
    let (buckets, count, sum_ms) = app.store.durations(&bounds_ms).await?;
    text.push_str("# HELP clnrm_scenario_duration_seconds How long scenarios of finished runs took.\n# TYPE clnrm_scenario_duration_seconds histogram\n");
    for (b, n) in BOUNDS_S.iter().zip(&buckets) {
        text.push_str(&format!(
            "clnrm_scenario_duration_seconds_bucket{{le=\"{b}\"}} {n}\n"
        ));
    }
    text.push_str(&format!(
        "clnrm_scenario_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nclnrm_scenario_duration_seconds_sum {}\nclnrm_scenario_duration_seconds_count {count}\n",
        sum_ms as f64 / 1000.0
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// A token to make.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it may do: `read`, `run` or `admin`.
    scope: String,
    /// A name to recognise it by.
    #[serde(default = "default_token_name")]
    name: String,
}

fn default_token_name() -> String {
    "token".into()
}

/// A token just made: shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MadeToken {
    /// The token (only its hash is kept).
    token: String,
    /// Its name.
    name: String,
    /// Its scope.
    scope: String,
}

/// Every token (not the tokens themselves).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// Oldest first.
    tokens: Vec<crate::store::TokenRow>,
}

/// Makes a token (admin).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = MadeToken), (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn create_token<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = bytes(body)?;
    auth::need(granted, Scope::Admin)?;
    let t: NewToken =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let scope = Scope::parse(&t.scope)
        .ok_or_else(|| Problem::bad_request("scope: expected read, run or admin"))?;
    if t.name.is_empty() || t.name.len() > 200 {
        return Err(Problem::bad_request("name: 1 to 200 characters"));
    }
    let token = auth::create(&app.store, &t.name, scope).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(MadeToken {
            token,
            name: t.name,
            scope: scope.as_str().into(),
        }),
    )
        .into_response())
}

/// Lists the tokens (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Tokens), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn tokens<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Admin)?;
    Ok(axum::Json(Tokens {
        tokens: app.store.tokens().await?,
    })
    .into_response())
}

/// Deletes a token (admin): it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "deleted"), (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_token<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Admin)?;
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::bad_request("id: not a token id"))?;
    if app.store.delete_token(id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no token {id}")))
    }
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
