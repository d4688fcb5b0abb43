//! Reading spans from JSON: OTLP-JSON (`resourceSpans`, the official JSON mapping:
//! camelCase, hex ids, 64-bit integers as strings; snake_case is accepted too) and
//! flat span objects (`name`, `trace_id`/`traceId`, `span_id`, `parent_span_id`,
//! `start_time_unix_nano`, ...). Also the `exporter = "stdout"` intake: a line of
//! stdout that is one of these JSON objects is spans; any other line is output.

use super::span::{AttrValue, SpanEvent, SpanLink, SpanRecord};
use crate::model::{SpanKind, StatusCode};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The spans in a scenario's stdout, one JSON object a line.
pub fn spans_in_output(text: &str) -> Vec<SpanRecord> {
    text.lines().filter_map(parse_line).flatten().collect()
}

/// The spans of one line, when it is a span document.
pub fn parse_line(line: &str) -> Option<Vec<SpanRecord>> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    let obj = value.as_object()?;
    if get(obj, &["resourceSpans", "resource_spans"]).is_some() {
        return from_otlp_json(&value).ok();
    }
    flat_span(obj).map(|s| vec![s])
}

fn get<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k))
}

fn get_str(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    match get(obj, keys)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get_u64(obj: &Map<String, Value>, keys: &[&str]) -> Option<u64> {
    match get(obj, keys)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Why a JSON document holds no spans.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The text is not JSON, or not of the request's shape (the streaming reader's).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The document is not an object.
    #[error("expected a JSON object")]
    NotObject,
    /// It has no list of `resourceSpans`.
    #[error("expected `resourceSpans` to be a list")]
    NoResourceSpans,
    /// A `resourceSpans` item is not an object.
    #[error("a `resourceSpans` item is not an object")]
    ResourceSpansItem,
    /// A `scopeSpans` item is not an object.
    #[error("a `scopeSpans` item is not an object")]
    ScopeSpansItem,
    /// A span is not an object.
    #[error("a span is not an object")]
    SpanNotObject,
    /// A span lacks its name or id.
    #[error("a span has no name or span id")]
    SpanIncomplete,
}

/// Spans of an OTLP-JSON `ExportTraceServiceRequest` (or a `TracesData`).
pub fn from_otlp_json(value: &Value) -> Result<Vec<SpanRecord>, IntakeError> {
    let obj = value.as_object().ok_or(IntakeError::NotObject)?;
    let resource_spans = get(obj, &["resourceSpans", "resource_spans"])
        .and_then(Value::as_array)
        .ok_or(IntakeError::NoResourceSpans)?;
    let mut out = Vec::new();
    for rs in resource_spans {
        let rs = rs.as_object().ok_or(IntakeError::ResourceSpansItem)?;
        let resource = rs
            .get("resource")
            .map(resource_attributes)
            .unwrap_or_default();
        let scopes = get(
            rs,
            &["scopeSpans", "scope_spans", "instrumentationLibrarySpans"],
        )
        .and_then(Value::as_array);
        for ss in scopes.into_iter().flatten() {
            let ss = ss.as_object().ok_or(IntakeError::ScopeSpansItem)?;
            let scope = get(ss, &["scope", "instrumentationLibrary"])
                .and_then(Value::as_object)
                .and_then(|s| get_str(s, &["name"]))
                .unwrap_or_default();
            for span in ss
                .get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let span = span.as_object().ok_or(IntakeError::SpanNotObject)?;
                let mut rec = flat_span(span).ok_or(IntakeError::SpanIncomplete)?;
                rec.resource.clone_from(&resource);
                rec.scope.clone_from(&scope);
                out.push(rec);
            }
        }
    }
    Ok(out)
}

/// The attributes of an OTLP `resource` object.
pub(crate) fn resource_attributes(resource: &Value) -> BTreeMap<String, AttrValue> {
    resource
        .as_object()
        .and_then(|r| r.get("attributes"))
        .map(attributes)
        .unwrap_or_default()
}

/// A span object; keys in camelCase or snake_case. `None` when it has no name or id.
pub fn flat_span(obj: &Map<String, Value>) -> Option<SpanRecord> {
    let name = get_str(obj, &["name"])?;
    let span_id = get_str(obj, &["spanId", "span_id"])?;
    let parent = get_str(
        obj,
        &["parentSpanId", "parent_span_id", "parent_id", "parentId"],
    )
    .filter(|p| !p.is_empty() && p.chars().any(|c| c != '0'));
    let (status, status_message) = status(get(obj, &["status"]));
    Some(SpanRecord {
        trace_id: get_str(obj, &["traceId", "trace_id"])
            .unwrap_or_default()
            .to_ascii_lowercase(),
        span_id: span_id.to_ascii_lowercase(),
        parent_span_id: parent.map(|p| p.to_ascii_lowercase()),
        name,
        kind: kind(get(obj, &["kind"])),
        start_time_unix_nano: get_u64(
            obj,
            &["startTimeUnixNano", "start_time_unix_nano", "start_time"],
        )
        .unwrap_or(0),
        end_time_unix_nano: get_u64(obj, &["endTimeUnixNano", "end_time_unix_nano", "end_time"])
            .unwrap_or(0),
        attributes: get(obj, &["attributes"])
            .map(attributes)
            .unwrap_or_default(),
        events: get(obj, &["events"])
            .and_then(Value::as_array)
            .map(|evs| evs.iter().filter_map(event).collect())
            .unwrap_or_default(),
        links: get(obj, &["links"])
            .and_then(Value::as_array)
            .map(|ls| ls.iter().filter_map(link).collect())
            .unwrap_or_default(),
        status,
        status_message,
        resource: get(obj, &["resource"]).map(attributes).unwrap_or_default(),
        scope: get_str(obj, &["scope", "scope_name"]).unwrap_or_default(),
    })
}

/// A link object; its ids in any case (OTLP-JSON writes them as hex).
fn link(v: &Value) -> Option<SpanLink> {
    let obj = v.as_object()?;
    Some(SpanLink {
        trace_id: get_str(obj, &["traceId", "trace_id"])?.to_ascii_lowercase(),
        span_id: get_str(obj, &["spanId", "span_id"])?.to_ascii_lowercase(),
        attributes: get(obj, &["attributes"])
            .map(attributes)
            .unwrap_or_default(),
    })
}

fn event(v: &Value) -> Option<SpanEvent> {
    let obj = v.as_object()?;
    Some(SpanEvent {
        name: get_str(obj, &["name"])?,
        time_unix_nano: get_u64(obj, &["timeUnixNano", "time_unix_nano", "time"]).unwrap_or(0),
        attributes: get(obj, &["attributes"])
            .map(attributes)
            .unwrap_or_default(),
    })
}

/// An OTLP `KeyValue` list, or a plain JSON object of values.
fn attributes(v: &Value) -> BTreeMap<String, AttrValue> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|kv| {
                let kv = kv.as_object()?;
                let key = get_str(kv, &["key"])?;
                let value = kv.get("value").and_then(any_value)?;
                Some((key, value))
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), plain_value(v)?)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn plain_value(v: &Value) -> Option<AttrValue> {
    Some(match v {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => AttrValue::Double(n.as_f64()?),
        },
        Value::String(s) => AttrValue::Str(s.clone()),
        Value::Array(items) => AttrValue::Array(items.iter().filter_map(plain_value).collect()),
        Value::Object(_) => any_value(v)?,
        Value::Null => return None,
    })
}

/// An OTLP `AnyValue` (`{"stringValue": ..}`, `{"intValue": "12"}`, ...).
fn any_value(v: &Value) -> Option<AttrValue> {
    let obj = v.as_object()?;
    if let Some(s) = get(obj, &["stringValue", "string_value"]) {
        return Some(AttrValue::Str(s.as_str()?.to_owned()));
    }
    if let Some(i) = get(obj, &["intValue", "int_value"]) {
        return match i {
            Value::String(s) => s.parse().ok().map(AttrValue::Int),
            Value::Number(n) => n.as_i64().map(AttrValue::Int),
            _ => None,
        };
    }
    if let Some(d) = get(obj, &["doubleValue", "double_value"]) {
        return match d {
            Value::String(s) => s.parse().ok().map(AttrValue::Double),
            Value::Number(n) => n.as_f64().map(AttrValue::Double),
            _ => None,
        };
    }
    if let Some(b) = get(obj, &["boolValue", "bool_value"]) {
        return b.as_bool().map(AttrValue::Bool);
    }
    if let Some(a) = get(obj, &["arrayValue", "array_value"]) {
        let values = a.get("values").and_then(Value::as_array)?;
        return Some(AttrValue::Array(
            values.iter().filter_map(any_value).collect(),
        ));
    }
    if let Some(b) = get(obj, &["bytesValue", "bytes_value"]) {
        return Some(AttrValue::Str(b.as_str()?.to_owned()));
    }
    if let Some(kv) = get(obj, &["kvlistValue", "kvlist_value"]) {
        let values = kv.get("values").map(attributes).unwrap_or_default();
        let text: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Some(AttrValue::Str(format!("{{{}}}", text.join(", "))));
    }
    // Empty, or a kind of value this version does not know: no value.
    None
}

/// `kind` as an OTLP enum number or name, or a plain word.
pub fn kind(v: Option<&Value>) -> SpanKind {
    let word = match v {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(2) => "server",
            Some(3) => "client",
            Some(4) => "producer",
            Some(5) => "consumer",
            _ => "internal",
        },
        Some(Value::String(s)) => {
            let lower = s.to_ascii_lowercase();
            return kind_word(lower.trim_start_matches("span_kind_"));
        }
        _ => "internal",
    };
    kind_word(word)
}

fn kind_word(w: &str) -> SpanKind {
    match w {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// `status` as `{code, message}` (OTLP number or name) or a plain word.
fn status(v: Option<&Value>) -> (StatusCode, String) {
    let code_word = |c: &Value| match c {
        Value::Number(n) => match n.as_u64() {
            Some(1) => StatusCode::Ok,
            Some(2) => StatusCode::Error,
            _ => StatusCode::Unset,
        },
        Value::String(s) => match s.to_ascii_uppercase().trim_start_matches("STATUS_CODE_") {
            "OK" => StatusCode::Ok,
            "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        },
        _ => StatusCode::Unset,
    };
    match v {
        Some(Value::Object(o)) => (
            o.get("code").map_or(StatusCode::Unset, code_word),
            get_str(o, &["message"]).unwrap_or_default(),
        ),
        Some(other) => (code_word(other), String::new()),
        None => (StatusCode::Unset, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTLP: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}}]},"scopeSpans":[{"scope":{"name":"lib"},"spans":[{"traceId":"6E0C63257DE34C92BF9EFCD03927272E","spanId":"a1b2c3d4e5f60718","parentSpanId":"","name":"payment.authorize","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000080000000","attributes":[{"key":"amount","value":{"intValue":"1299"}},{"key":"ok","value":{"boolValue":true}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}],"events":[{"name":"fraud.check","timeUnixNano":"1700000000020000000"}],"status":{"code":1}}]}]}]}"#;

    #[test]
    fn otlp_json_maps_every_field() {
        let spans = parse_line(OTLP).expect("spans");
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, "6e0c63257de34c92bf9efcd03927272e");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.status, StatusCode::Ok);
        assert_eq!(s.attributes["amount"], AttrValue::Int(1299));
        assert_eq!(s.attributes["ok"], AttrValue::Bool(true));
        assert_eq!(s.events[0].name, "fraud.check");
        assert_eq!(
            s.resource["service.name"],
            AttrValue::Str("payments".into())
        );
        assert_eq!(s.scope, "lib");
        assert!((s.duration_ms() - 80.0).abs() < 1e-9);
    }

    #[test]
    fn flat_spans_in_snake_and_camel_case() {
        let snake = r#"{"name":"db.query","trace_id":"t1","span_id":"s2","parent_span_id":"s1","kind":"SPAN_KIND_CLIENT","start_time_unix_nano":10,"end_time_unix_nano":20,"attributes":{"db.system":"postgresql","rows":3},"status":"ERROR"}"#;
        let camel = r#"{"name":"db.query","traceId":"t1","spanId":"s2","parentSpanId":"s1","kind":"client","startTimeUnixNano":"10","endTimeUnixNano":"20","attributes":[{"key":"db.system","value":{"stringValue":"postgresql"}},{"key":"rows","value":{"intValue":"3"}}],"status":{"code":"STATUS_CODE_ERROR"}}"#;
        let a = parse_line(snake).expect("snake");
        let b = parse_line(camel).expect("camel");
        assert_eq!(a, b);
        assert_eq!(a[0].kind, SpanKind::Client);
        assert_eq!(a[0].status, StatusCode::Error);
        assert_eq!(a[0].parent_span_id.as_deref(), Some("s1"));
    }

    #[test]
    fn an_unknown_kind_of_value_is_left_out_not_a_crash() {
        // Found by the otlp_json fuzz target: an object value with an unknown key
        // recursed without end.
        let line = r#"{"name":"a","span_id":"s","attributes":[{"key":"k","value":{"futureValue":true}},{"key":"ok","value":{"boolValue":true}},{"key":"nested","value":{"arrayValue":{"values":[{"newValue":1}]}}}]}"#;
        let spans = parse_line(line).expect("a span");
        assert_eq!(spans[0].attributes.len(), 2, "{:?}", spans[0].attributes);
        assert_eq!(spans[0].attributes["ok"], AttrValue::Bool(true));
        let plain = r#"{"name":"a","span_id":"s","attributes":{"o":{"x":1},"e":{}}}"#;
        assert!(parse_line(plain).expect("a span")[0].attributes.is_empty());
    }

    #[test]
    fn ordinary_output_is_not_spans() {
        let text = "hello\n{\"not\":\"a span\"}\n{broken json\n";
        assert!(spans_in_output(text).is_empty());
    }

    #[test]
    fn attribute_values_compare_sensibly() {
        use crate::model::Scalar;
        assert!(AttrValue::Int(200).matches(&Scalar::String("200".into())));
        assert!(AttrValue::Str("200".into()).matches(&Scalar::Int(200)));
        assert!(AttrValue::Int(2).matches(&Scalar::Float(2.0)));
        assert!(AttrValue::Str("true".into()).matches(&Scalar::Bool(true)));
        assert!(!AttrValue::Str("abc".into()).matches(&Scalar::Int(1)));
        assert!(!AttrValue::Int(201).matches(&Scalar::Int(200)));
    }
    #[test]
    fn what_holds_no_spans_says_why() {
        let why = |v: Value| from_otlp_json(&v).unwrap_err().to_string();
        assert_eq!(why(serde_json::json!([])), "expected a JSON object");
        assert_eq!(
            why(serde_json::json!({"resourceSpans": 1})),
            "expected `resourceSpans` to be a list"
        );
        assert_eq!(
            why(serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{}]}]}]})),
            "a span has no name or span id"
        );
    }
}
