//! The service's own endpoints: whether it answers, and its Prometheus metrics.

use super::request::Api;
use crate::auth;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store};
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Whether the service answers (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "ok", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
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
