//! Planned steps: each step of a file as the executor runs it (argv or an `http`
//! request, its checks, environment, timeout, retry and captures).

use super::encoding::{millis, optional_millis, pattern};
use super::grpc::{GrpcSpec, grpc_spec};
use super::http::{HttpSpec, http_spec};
use crate::model::defaults;
use regex::Regex;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// One command of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedStep {
    /// Step name (`run` for a scenario's `run`).
    pub name: String,
    /// Service it runs in.
    pub service: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Exit code that counts as success.
    pub expected_exit_code: i64,
    /// Regex stdout or stderr must match; `^` and `$` match at line ends, as in grep.
    #[serde(serialize_with = "pattern")]
    pub expected_output_regex: Option<Regex>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Go on after a failure.
    pub continue_on_failure: bool,
    /// Step timeout.
    #[serde(serialize_with = "optional_millis")]
    pub timeout: Option<Duration>,
    /// Runs in all while it fails, and the pause between them (`retry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// What it captures for later steps, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<CaptureSpec>,
    /// The request clnrm sends instead of running a command (`argv` is empty then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<HttpSpec>>,
    /// The gRPC call clnrm makes instead of running a command (`argv` is empty then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Box<GrpcSpec>>,
    /// Where its output snapshot is and how it is compared (`snapshot = true`;
    /// cache keys add it themselves).
    #[serde(skip)]
    pub snapshot: Option<Arc<crate::snapshots::SnapshotSpec>>,
    /// Where it is written (its `name`, or the scenario's `run`): shown when it fails;
    /// no part of any key (moving a step is no change).
    #[serde(skip)]
    pub span: Option<crate::diag::Span>,
}

/// One capture of a step.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureSpec {
    /// The name later steps use as `${name}`.
    pub name: String,
    /// `stdout` or `stderr`.
    pub from: String,
    /// How the value is found.
    pub how: CaptureHow,
}

/// How a capture finds its value.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureHow {
    /// The first value a JSONPath query selects in the output parsed as JSON.
    Json(#[serde(serialize_with = "query_text")] crate::model::JsonPathQuery),
    /// The first group of the first match (the whole match without groups).
    Regex(#[serde(serialize_with = "regex_text")] Regex),
}

fn query_text<S: serde::Serializer>(
    q: &crate::model::JsonPathQuery,
    s: S,
) -> Result<S::Ok, S::Error> {
    q.as_str().serialize(s)
}

fn regex_text<S: serde::Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
    re.as_str().serialize(s)
}

/// A step's `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetrySpec {
    /// Runs in all, the first included.
    pub attempts: u32,
    /// Pause between runs.
    #[serde(serialize_with = "millis")]
    pub interval: Duration,
}

/// A step as the executor runs it; `service` when the step names none (an `http`
/// step runs in the service its URL names, when it names one).
pub(super) fn planned_step(
    st: &crate::model::Step,
    service: &str,
    base: &std::path::Path,
) -> PlannedStep {
    let http = st.http.as_ref().map(|h| Box::new(http_spec(st, h)));
    let grpc = st.grpc.as_ref().map(|g| Box::new(grpc_spec(st, g, base)));
    let target = http
        .as_ref()
        .and_then(|h| h.url.target().map(|t| t.host.clone()))
        .or_else(|| grpc.as_ref().and_then(|g| g.target().map(|(host, _)| host)));
    PlannedStep {
        name: st.name.value.clone(),
        service: st.service.as_ref().map_or_else(
            || target.unwrap_or_else(|| service.to_owned()),
            |s| s.value.clone(),
        ),
        argv: st
            .command
            .iter()
            .flat_map(|c| c.value.iter().map(|a| a.value.clone()))
            .collect(),
        http,
        grpc,
        snapshot: None,
        span: Some(st.name.span),
        expected_exit_code: st.expected_exit_code.as_ref().map_or(0, |c| c.value),
        expected_output_regex: st.expected_output_regex.as_ref().map(|r| r.regex().clone()),
        workdir: st.workdir.as_ref().map(|w| w.value.clone()),
        env: st
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        continue_on_failure: st.continue_on_failure.as_ref().is_some_and(|c| c.value),
        timeout: st
            .timeout_ms
            .as_ref()
            .map(|t| Duration::from_millis(t.value)),
        captures: st
            .capture
            .iter()
            .filter_map(|(name, c)| {
                let how = match (&c.json, &c.regex) {
                    (Some(q), _) => CaptureHow::Json(q.value.clone()),
                    (None, Some(r)) => CaptureHow::Regex(r.value.regex().clone()),
                    (None, None) => return None,
                };
                Some(CaptureSpec {
                    name: name.value.clone(),
                    from: c.from.as_ref().map_or_else(
                        || {
                            if st.http.is_some() || st.grpc.is_some() {
                                "body"
                            } else {
                                "stdout"
                            }
                            .to_owned()
                        },
                        |f| f.value.clone(),
                    ),
                    how,
                })
            })
            .collect(),
        retry: st.retry.as_ref().map(|r| RetrySpec {
            attempts: r.attempts.value.clamp(1, defaults::RETRY_MAX_ATTEMPTS) as u32,
            interval: Duration::from_millis(
                r.interval_ms
                    .as_ref()
                    .map_or(defaults::RETRY_INTERVAL_MS, |i| i.value),
            ),
        }),
    }
}
