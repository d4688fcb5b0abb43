//! `http` steps: the request clnrm sends and what its response is checked against,
//! planned from a step's `http` table. Sending it is `exec::http`'s job.

use super::encoding::{millis, pattern};
use crate::model::defaults;
use regex::Regex;
use serde::Serialize;
use std::time::Duration;

/// An `http` step's request and checks.
#[derive(Clone, Debug, Serialize)]
pub struct HttpSpec {
    /// The method, upper case.
    pub method: String,
    /// The URL as written (`${name}` resolved before it is sent).
    pub url: crate::model::HttpUrl,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// The body: text as written, or JSON.
    pub body: Option<HttpBody>,
    /// Time the request may take.
    #[serde(serialize_with = "millis")]
    pub timeout: Duration,
    /// Status codes that count as success; empty: any 2xx.
    pub expected_status: Vec<u16>,
    /// Regex the body must match.
    #[serde(serialize_with = "pattern")]
    pub expected_body_regex: Option<Regex>,
    /// JSONPath → the value it must select first in the body.
    #[serde(serialize_with = "json_checks")]
    pub expected_json: Vec<(crate::model::JsonPathQuery, serde_json::Value)>,
}

/// An `http` step's body.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpBody {
    /// `body`: sent as it is.
    Text(String),
    /// `json`: sent as JSON, with `Content-Type: application/json` unless set.
    Json(serde_json::Value),
}

pub(super) fn json_checks<S: serde::Serializer>(
    checks: &[(crate::model::JsonPathQuery, serde_json::Value)],
    s: S,
) -> Result<S::Ok, S::Error> {
    checks
        .iter()
        .map(|(q, v)| (q.as_str(), v))
        .collect::<Vec<_>>()
        .serialize(s)
}

pub(super) fn http_spec(st: &crate::model::Step, h: &crate::model::HttpRequest) -> HttpSpec {
    let json = toml_json;
    HttpSpec {
        method: h
            .method
            .as_ref()
            .map_or_else(|| "GET".to_owned(), |m| m.value.to_ascii_uppercase()),
        url: h.url.value.clone(),
        headers: h
            .headers
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        body: match (&h.json, &h.body) {
            (Some(j), _) => Some(HttpBody::Json(json(&j.value))),
            (None, Some(b)) => Some(HttpBody::Text(b.value.clone())),
            (None, None) => None,
        },
        timeout: Duration::from_millis(
            h.timeout_ms
                .as_ref()
                .map_or(defaults::HTTP_TIMEOUT_MS, |t| t.value),
        ),
        expected_status: st
            .expected_status
            .as_ref()
            .map(|s| s.value.iter().map(|c| c.value).collect())
            .unwrap_or_default(),
        expected_body_regex: st.expected_body_regex.as_ref().map(|r| r.regex().clone()),
        expected_json: expected_json(st),
    }
}

/// A step's `expected_json` as checks (the validator refuses a path that does not
/// parse).
pub(super) fn expected_json(
    st: &crate::model::Step,
) -> Vec<(crate::model::JsonPathQuery, serde_json::Value)> {
    st.expected_json
        .iter()
        .filter_map(|(path, v)| {
            let query = crate::model::JsonPathQuery::parse(&path.value).ok()?;
            Some((query, toml_json(v)))
        })
        .collect()
}

/// A TOML value as JSON.
pub(super) fn toml_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
