//! Reading a step (`[[scenario.steps]]`, `[[service.<id>.setup]]`, legacy `[[steps]]`):
//! its command, HTTP request or gRPC call, the checks on its result, its captures and
//! its retry.

use crate::diag::{Code, Span};
use crate::model::reader::{self, FromToml, Reader, Table};
use crate::model::{Capture, GrpcRequest, HttpRequest, Retry, Sp, Step};
use toml::Spanned;
use toml::de::DeValue;

pub(super) fn read_step(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Step> {
    // Every key is read (and unknown ones reported) before a missing or broken required
    // one makes the step unusable: the validator reports every problem.
    let name = t.req(r, "name", "\"step\"");
    // A step runs a `command` or sends an `http` request; one of them is required.
    // (`entry` marks `http` known, so that a typo of it gets a "did you mean".)
    let http = t.entry("http").is_some().then(|| read_http(r, &mut t));
    let grpc = t.entry("grpc").is_some().then(|| read_grpc(r, &mut t));
    let command: Option<Option<Sp<Vec<Sp<String>>>>> =
        match (t.has("command"), http.is_some() || grpc.is_some()) {
            (true, _) => Some(t.get(r, "command")),
            (false, true) => None,
            (false, false) => Some(t.req(r, "command", "[\"echo\", \"hi\"]")),
        };
    let expected_grpc_status = t
        .entry("expected_grpc_status")
        .and_then(|(_, v)| read_grpc_status(r, v, &format!("{}.expected_grpc_status", t.path())));
    let expected_status = match t.entry("expected_status") {
        Some((_, v)) => read_status_codes(r, v, &format!("{}.expected_status", t.path())),
        None => None,
    };
    let expected_body_regex = t.get(r, "expected_body_regex");
    let expected_json = t.map(r, "expected_json", |_, v, _| {
        Some(reader::to_toml_value(v.get_ref()))
    });
    let service = t.get(r, "service");
    let expected_exit_code = t.get(r, "expected_exit_code");
    let expected_output_regex = t.get(r, "expected_output_regex");
    let workdir = t.get(r, "workdir");
    let env = t.map(r, "env", FromToml::from_toml);
    let continue_on_failure = t.get(r, "continue_on_failure");
    let timeout_ms = t.get(r, "timeout_ms");
    let capture = t.map(r, "capture", read_capture);
    let snapshot = t.get(r, "snapshot");
    let retry = t.table(r, "retry").and_then(|mut rt| {
        let attempts = rt.req(r, "attempts", "3");
        let interval_ms = rt.get(r, "interval_ms");
        rt.finish(r);
        Some(Retry {
            attempts: attempts?,
            interval_ms,
        })
    });
    let span = t.anchor();
    t.finish(r);
    Some(Step {
        name: name?,
        command: match command {
            Some(c) => Some(c?),
            None => None,
        },
        http: match http {
            Some(h) => Some(h?),
            None => None,
        },
        grpc: match grpc {
            Some(g) => Some(g?),
            None => None,
        },
        expected_grpc_status,
        expected_status,
        expected_body_regex,
        expected_json,
        service,
        expected_exit_code,
        expected_output_regex,
        workdir,
        env,
        continue_on_failure,
        timeout_ms,
        capture,
        snapshot,
        retry,
        span,
    })
}

/// A step's `http` table.
fn read_http(r: &mut Reader<'_>, step: &mut Table<'_, '_>) -> Option<HttpRequest> {
    let mut h = step.table(r, "http")?;
    let json = h
        .entry("json")
        .map(|(_, v)| Sp::new(reader::to_toml_value(v.get_ref()), v.span().into()));
    let url = h.req(r, "url", "\"http://app:8080/\"");
    let out = HttpRequest {
        method: h.get(r, "method"),
        url: url?,
        headers: h.map(r, "headers", FromToml::from_toml),
        body: h.get(r, "body"),
        json,
        timeout_ms: h.get(r, "timeout_ms"),
        span: h.anchor(),
    };
    h.finish(r);
    Some(out)
}

/// A step's `grpc` table.
fn read_grpc(r: &mut Reader<'_>, step: &mut Table<'_, '_>) -> Option<GrpcRequest> {
    let mut g = step.table(r, "grpc")?;
    let json = g
        .entry("json")
        .map(|(_, v)| Sp::new(reader::to_toml_value(v.get_ref()), v.span().into()));
    let target = g.req(r, "target", "\"app:50051\"");
    let method = g.req(r, "method", "\"pkg.Service/Method\"");
    let out = GrpcRequest {
        target: target?,
        method: method?,
        json,
        metadata: g.map(r, "metadata", FromToml::from_toml),
        proto: g.get(r, "proto"),
        timeout_ms: g.get(r, "timeout_ms"),
        span: g.anchor(),
    };
    g.finish(r);
    Some(out)
}

/// `expected_grpc_status`: a status name (`"NOT_FOUND"`) or number (5), kept as text.
fn read_grpc_status(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<String>> {
    let span: Span = v.span().into();
    match v.get_ref() {
        DeValue::String(s) => Some(Sp::new(s.to_string(), span)),
        DeValue::Integer(i) => Some(Sp::new(i.to_string(), span)),
        _ => {
            r.error(
                Code::WrongType,
                span,
                format!("`{path}` must be a status name or number"),
                "expected e.g. \"NOT_FOUND\" or 5",
            );
            None
        }
    }
}

/// `expected_status`: a status code or a non-empty list of them.
fn read_status_codes(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<Vec<Sp<u16>>>> {
    let span: Span = v.span().into();
    let one = |r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str| {
        u16::from_toml(r, v, path).map(|c| Sp::new(c, v.span().into()))
    };
    match v.get_ref() {
        DeValue::Array(items) if !items.is_empty() => {
            let codes: Vec<Option<Sp<u16>>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| one(r, item, &format!("{path}[{i}]")))
                .collect();
            codes
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|c| Sp::new(c, span))
        }
        DeValue::Array(_) => {
            r.error(
                Code::BadValue,
                span,
                format!("`{path}` lists no status code"),
                "expected a code such as 201, or a list such as [200, 204]",
            );
            None
        }
        _ => one(r, v, path).map(|c| Sp::new(vec![c], span)),
    }
}

/// One entry of a step's `capture`: `{ json = "$.id" }` or `{ regex = "...", from = "stderr" }`.
fn read_capture(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Capture> {
    let span: Span = v.span().into();
    let DeValue::Table(inner) = v.get_ref() else {
        r.error(
            Code::WrongType,
            span,
            format!("`{path}` must be a table"),
            "expected { json = \"$.id\" } or { regex = \"id=(\\\\d+)\" }",
        );
        return None;
    };
    let mut t = Table::new(inner, span, path);
    let says = t.entry("json").is_some() || t.entry("regex").is_some();
    let out = Capture {
        json: t.get(r, "json"),
        regex: t.get(r, "regex"),
        from: t.get(r, "from"),
        says,
        span,
    };
    t.finish(r);
    Some(out)
}
