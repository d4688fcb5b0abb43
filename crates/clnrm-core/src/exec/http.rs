//! `http` steps (SPEC §7.4): clnrm sends the request itself, to the loopback port the
//! engine published for the service's container port, so images without a shell or
//! an HTTP client can be tested; then it checks the answer. Each request carries a
//! `traceparent` naming a client span clnrm adds to the scenario's spans, so the
//! server's spans join clnrm's trace.

use super::captures::Captured;
use super::events::fail;
use super::events::{Reason, Status, StepResult};
use super::pool::Env;
use crate::model::UrlTarget;
use crate::otel::SpanRecord;
use crate::plan::{HttpBody, HttpSpec, PlannedStep};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// The most of a response body clnrm reads.
pub const BODY_CAP: usize = 8 * 1024 * 1024;

pub use super::events::Answer;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection to the published port.
    #[error("cannot connect to {host}:{port} ({source})")]
    Connect {
        /// The URL's host.
        host: String,
        /// The URL's port.
        port: u16,
        /// What the connection failed with.
        source: std::io::Error,
    },
    /// The connection was made but HTTP could not start on it.
    #[error("HTTP handshake with {host}:{port}: {source}")]
    Handshake {
        /// The URL's host.
        host: String,
        /// The URL's port.
        port: u16,
        /// What the handshake failed with.
        source: hyper::Error,
    },
    /// A method, header or path hyper refuses to send.
    #[error("the request cannot be made: {0}")]
    Request(#[from] hyper::http::Error),
    /// Sending, or reading the status and headers, failed.
    #[error("{method} {url}: {source}")]
    Exchange {
        /// The method sent.
        method: String,
        /// The URL as written.
        url: String,
        /// What it failed with.
        source: hyper::Error,
    },
    /// Reading the body failed, or it is longer than [`BODY_CAP`].
    #[error("reading the body of {method} {url}: {source}")]
    Body {
        /// The method sent.
        method: String,
        /// The URL as written.
        url: String,
        /// What it failed with.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The `User-Agent` of an HTTP step that sets none.
pub const USER_AGENT: &str = concat!("clnrm/", env!("CARGO_PKG_VERSION"));

/// Sends `spec` (its `${name}` already resolved) to `addr`, the published port of
/// `target`, the container its URL names; the `Host` header is the URL's, as the
/// service would see it from a peer. The caller bounds the time.
pub async fn send(
    addr: SocketAddr,
    target: &UrlTarget,
    spec: &HttpSpec,
    extra: &[(String, String)],
) -> Result<Answer, SendError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| SendError::Connect {
            host: target.host.clone(),
            port: target.port,
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|source| SendError::Handshake {
                host: target.host.clone(),
                port: target.port,
                source,
            })?;
    let driver = tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(spec.method.as_str())
        .uri(target.path.as_str())
        .header(
            hyper::header::HOST,
            format!("{}:{}", target.host, target.port),
        );
    let (mut has_type, mut has_agent) = (false, false);
    for (k, v) in spec.headers.iter().chain(extra) {
        has_type |= k.eq_ignore_ascii_case("content-type");
        has_agent |= k.eq_ignore_ascii_case("user-agent");
        request = request.header(k.as_str(), v.as_str());
    }
    // Every real client names itself; some servers refuse or crash without it.
    if !has_agent {
        request = request.header(hyper::header::USER_AGENT, USER_AGENT);
    }
    let body = match &spec.body {
        None => Bytes::new(),
        Some(HttpBody::Text(t)) => Bytes::from(t.clone()),
        Some(HttpBody::Json(j)) => {
            if !has_type {
                request = request.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            Bytes::from(serde_json::to_vec(j).unwrap_or_default())
        }
    };
    let request = request.body(Full::new(body))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|source| SendError::Exchange {
            method: spec.method.clone(),
            url: spec.url.to_string(),
            source,
        })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(response.into_body(), BODY_CAP)
        .collect()
        .await
        .map_err(|source| SendError::Body {
            method: spec.method.clone(),
            url: spec.url.to_string(),
            source,
        })?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Why `answer` does not pass `spec`'s checks, if it does not: the reason
/// (`status`, `regex` for the body, `json`) and the message.
pub fn judge(spec: &HttpSpec, answer: &Answer) -> Option<(Reason, String)> {
    let ok = if spec.expected_status.is_empty() {
        (200..300).contains(&answer.status)
    } else {
        spec.expected_status.contains(&answer.status)
    };
    if !ok {
        let wanted = match spec.expected_status.as_slice() {
            [] => "2xx".to_owned(),
            [one] => one.to_string(),
            many => many
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        };
        return Some((
            Reason::Status,
            format!("status {}, expected {wanted}", answer.status),
        ));
    }
    let text = String::from_utf8_lossy(&answer.body);
    if let Some(re) = &spec.expected_body_regex
        && !re.is_match(&text)
    {
        return Some((
            Reason::Regex,
            format!("body does not match /{}/", re.as_str()),
        ));
    }
    if spec.expected_json.is_empty() {
        return None;
    }
    let doc: serde_json::Value = match serde_json::from_str(text.trim()) {
        Ok(doc) => doc,
        Err(e) => return Some((Reason::Json, format!("body is not JSON ({e})"))),
    };
    json_failure(&spec.expected_json, &doc).map(|why| (Reason::Json, why))
}

/// Why `doc` does not meet `checks` (JSONPath → the value it must select first), if
/// it does not.
pub(super) fn json_failure(
    checks: &[(crate::model::JsonPathQuery, serde_json::Value)],
    doc: &serde_json::Value,
) -> Option<String> {
    for (query, want) in checks {
        match query.select(doc).first() {
            None => {
                return Some(format!(
                    "{} selected nothing, expected {want}",
                    query.as_str()
                ));
            }
            Some(got) if !same(got, want) => {
                return Some(format!("{} is {got}, expected {want}", query.as_str()));
            }
            Some(_) => {}
        }
    }
    None
}

/// The W3C trace context of one request: clnrm's client span, whose ids go out in
/// `traceparent` so that the server's spans join its trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
}

impl TraceContext {
    /// Fresh ids, unique per request (a hash of the scenario, the step, the time and a
    /// counter of this process).
    pub fn new(scenario: &str, step: &str) -> Self {
        use sha2::{Digest, Sha256};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::digest(
            format!("{scenario}\0{step}\0{nanos}\0{n}\0{}", std::process::id()).as_bytes(),
        );
        let hex = crate::digest::hex;
        Self {
            trace_id: hex(&digest[..16]),
            span_id: hex(&digest[16..24]),
        }
    }

    /// The `traceparent` header value (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// JSON equality with numbers compared by value (`2` and `2.0` are the same).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// What an `http` step needs of its scenario.
pub(super) struct HttpCtx<'a> {
    /// The scenario's id (part of the trace ids).
    pub scenario: &'a str,
    /// The scenario's deadline.
    pub deadline: Option<Instant>,
    /// When the step started.
    pub started: Instant,
    /// The run's interrupt.
    pub cancel: &'a CancellationToken,
}

/// Runs an `http` step: sends its request to the loopback port published for the
/// container port its URL names, within the step's deadline, checks the answer and
/// takes its captures. The request goes out with a `traceparent` (unless the step
/// sets one) naming a client span clnrm adds to `spans`: `clnrm.http <step name>`.
pub(super) async fn run(
    env: &mut Env,
    step: &PlannedStep,
    http: &HttpSpec,
    ctx: &HttpCtx<'_>,
    captured: &mut Captured,
    spans: &mut Vec<SpanRecord>,
    mut result: StepResult,
) -> (StepResult, bool) {
    let (started, cancel) = (ctx.started, ctx.cancel);
    result.command = captured
        .masker
        .mask(&format!("{} {}", http.method, http.url));
    let target = match http.url.resolved_target() {
        Ok(t) => t,
        Err(why) => {
            fail(
                &mut result,
                Reason::Status,
                format!("URL \"{}\": {why}", http.url),
            );
            return (result, true);
        }
    };
    let published = env.member(&target.host).and_then(|m| {
        result.container = m.container.chars().take(12).collect();
        m.address(target.port)
    });
    let Some(addr) = published else {
        result.status = Status::Error;
        result.reason = Some(Reason::Engine);
        result.message = Some(format!(
            "port {} of service \"{}\" is not published (is \"{}\" a service of this scenario?)",
            target.port, target.host, target.host
        ));
        return (result, false);
    };
    let limit = started + http.timeout;
    let deadline = ctx.deadline.map_or(limit, |d| d.min(limit));
    let trace = TraceContext::new(ctx.scenario, &step.name);
    let own = http
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("traceparent"));
    let extra = if own {
        Vec::new()
    } else {
        vec![("traceparent".to_owned(), trace.traceparent())]
    };
    let sent_at = SystemTime::now();
    let sent = send(addr, target, http, &extra);
    let Some(answer) = before_deadline(sent, (started, deadline), cancel, &mut result).await else {
        return (result, false);
    };
    result.duration = started.elapsed();
    let answer = match answer {
        Ok(a) => a,
        Err(why) => {
            fail(
                &mut result,
                Reason::Status,
                captured.masker.mask(&why.to_string()),
            );
            return (result, true);
        }
    };
    result.http_status = Some(answer.status);
    if let Some((reason, why)) = judge(http, &answer) {
        fail(&mut result, reason, why);
    } else if let Err(why) = captured.take_http(step, &answer) {
        fail(&mut result, Reason::Capture, why.to_string());
    }
    result.stdout = captured.masker.mask(&String::from_utf8_lossy(&answer.body));
    result.command = captured.masker.mask(&result.command);
    if !own {
        let path = captured.masker.mask(&target.path);
        let when = (sent_at, result.duration);
        spans.push(client_span(step, http, target, &trace, &answer, path, when));
    }
    (result, true)
}

/// clnrm's span of one `http` step that got `answer` (SPEC §7.4): the parent of
/// the server's spans; `path` is the URL's path, masked.
fn client_span(
    step: &PlannedStep,
    http: &HttpSpec,
    target: &UrlTarget,
    trace: &TraceContext,
    answer: &Answer,
    path: String,
    when: (SystemTime, std::time::Duration),
) -> SpanRecord {
    use crate::otel::AttrValue;
    let text = |v: &str| AttrValue::Str(v.to_owned());
    let attributes = [
        ("clnrm.step", text(&step.name)),
        ("http.request.method", text(&http.method)),
        ("server.address", text(&target.host)),
        ("server.port", AttrValue::Int(i64::from(target.port))),
        ("url.path", AttrValue::Str(path)),
        (
            "http.response.status_code",
            AttrValue::Int(i64::from(answer.status)),
        ),
    ];
    step_span(
        format!("clnrm.http {}", step.name),
        trace,
        attributes,
        when,
        answer.status >= 500,
    )
}

/// clnrm's client span of a step that sent a request itself (`http`, `grpc`): its
/// ids are the request's `traceparent`'s, resource `service.name = "clnrm"`, status
/// `ERROR` when `failed`, else `UNSET`.
pub(super) fn step_span<const N: usize>(
    name: String,
    trace: &TraceContext,
    attributes: [(&str, crate::otel::AttrValue); N],
    (sent_at, took): (SystemTime, std::time::Duration),
    failed: bool,
) -> SpanRecord {
    use crate::model::{SpanKind, StatusCode};
    let nanos = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    };
    SpanRecord {
        trace_id: trace.trace_id.clone(),
        span_id: trace.span_id.clone(),
        parent_span_id: None,
        name,
        kind: SpanKind::Client,
        start_time_unix_nano: nanos(sent_at),
        end_time_unix_nano: nanos(sent_at + took),
        attributes: attributes
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        events: Vec::new(),
        links: Vec::new(),
        status: if failed {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        resource: [(
            "service.name".to_owned(),
            crate::otel::AttrValue::Str("clnrm".to_owned()),
        )]
        .into(),
        scope: "clnrm".to_owned(),
    }
}

/// `answer` unless the step's `deadline` passes first (the step fails with reason
/// `timeout`, its duration up to then) or the run is interrupted; `None` then, with
/// `result` failed. What `http` and `grpc` steps wait for their answer with.
pub(super) async fn before_deadline<T>(
    answer: impl std::future::Future<Output = T>,
    (started, deadline): (Instant, Instant),
    cancel: &CancellationToken,
    result: &mut StepResult,
) -> Option<T> {
    tokio::select! {
        a = answer => Some(a),
        () = tokio::time::sleep_until(deadline.into()) => {
            result.duration = started.elapsed();
            fail(result, Reason::Timeout, format!(
                "no answer within {} ms", (deadline - started).as_millis()
            ));
            None
        }
        () = cancel.cancelled() => {
            fail(result, Reason::Interrupted, "interrupted".into());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_step_is_planned_in_the_service_its_url_names_and_the_port_published() {
        let text = "[meta]\nname = \"u\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\n\n[service.api]\nimage = \"img\"\n\n[[scenario]]\nname = \"s\"\nservice = \"app\"\n\n[[scenario.steps]]\nname = \"query\"\nhttp = { url = \"http://api:9090?id=${id}\" }\n\n[[scenario.steps]]\nname = \"id\"\nhttp = { url = \"http://api:8080/\" }\ncapture = { host = { regex = \"(.*)\", from = \"body\" } }\n\n[[scenario.steps]]\nname = \"captured\"\nhttp = { url = \"http://${host}/x\" }\n";
        let plan = crate::plan::tests_support::planned(text);
        let sc = &plan.scenarios[0];
        // A URL with a capture in its query and no path names its service and port
        // as read.
        assert_eq!(sc.steps[0].service, "api");
        let api = sc.env.services.iter().find(|s| s.id == "api");
        let mut ports = api.map(|s| s.ports.clone()).unwrap_or_default();
        ports.sort_unstable();
        assert_eq!(ports, vec![8080, 9090]);
        // One whose authority is a capture runs in the scenario's service: no
        // service is made up of the text `${host}`.
        assert_eq!(sc.steps[2].service, "app");
        assert!(sc.env.services.iter().all(|s| !s.id.contains('$')));
    }

    fn spec(status: &[u16], json: &[(&str, serde_json::Value)]) -> HttpSpec {
        HttpSpec {
            method: "GET".into(),
            url: crate::model::HttpUrl::new("http://app:8080/"),
            headers: Vec::new(),
            body: None,
            timeout: std::time::Duration::from_secs(1),
            expected_status: status.to_vec(),
            expected_body_regex: None,
            expected_json: json
                .iter()
                .map(|(q, v)| (crate::model::JsonPathQuery::parse(q).unwrap(), v.clone()))
                .collect(),
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("location".into(), "/orders/7".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn status_defaults_to_any_2xx_and_lists_are_alternatives() {
        assert_eq!(judge(&spec(&[], &[]), &answer(204, "")), None);
        let (kind, msg) = judge(&spec(&[], &[]), &answer(404, "")).unwrap();
        assert_eq!(
            (kind, msg.as_str()),
            (Reason::Status, "status 404, expected 2xx")
        );
        assert_eq!(judge(&spec(&[200, 404], &[]), &answer(404, "")), None);
        let (_, msg) = judge(&spec(&[200, 201], &[]), &answer(500, "")).unwrap();
        assert_eq!(msg, "status 500, expected 200 or 201");
    }

    #[test]
    fn json_checks_compare_the_first_selected_value() {
        let body = r#"{"id": 7, "total": 2400.0, "tags": ["a"], "name": "x"}"#;
        let ok = spec(
            &[],
            &[
                ("$.id", json!(7)),
                ("$.total", json!(2400)),
                ("$.tags", json!(["a"])),
            ],
        );
        assert_eq!(judge(&ok, &answer(200, body)), None);
        let (kind, msg) = judge(&spec(&[], &[("$.name", json!("y"))]), &answer(200, body)).unwrap();
        assert_eq!(
            (kind, msg.as_str()),
            (Reason::Json, r#"$.name is "x", expected "y""#)
        );
        let (_, msg) = judge(&spec(&[], &[("$.nope", json!(1))]), &answer(200, body)).unwrap();
        assert_eq!(msg, "$.nope selected nothing, expected 1");
        let (_, msg) = judge(&spec(&[], &[("$.id", json!(1))]), &answer(200, "<html>")).unwrap();
        assert!(msg.starts_with("body is not JSON"), "{msg}");
    }

    #[test]
    fn headers_are_found_in_any_case() {
        assert_eq!(answer(201, "").header("Location"), Some("/orders/7"));
        assert_eq!(answer(201, "").header("etag"), None);
    }
}
