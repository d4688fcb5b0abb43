//! OTLP protobuf (`ExportTraceServiceRequest`) to the span model.

use super::span::{AttrValue, SpanEvent, SpanRecord};
use crate::model::{SpanKind, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use std::collections::BTreeMap;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(v: &AnyValue) -> Option<AttrValue> {
    Some(match v.value.as_ref()? {
        Value::StringValue(s) => AttrValue::Str(s.clone()),
        Value::BoolValue(b) => AttrValue::Bool(*b),
        Value::IntValue(i) => AttrValue::Int(*i),
        Value::DoubleValue(d) => AttrValue::Double(*d),
        Value::ArrayValue(a) => AttrValue::Array(a.values.iter().filter_map(value).collect()),
        Value::KvlistValue(kv) => {
            let parts: Vec<String> = attributes(&kv.values)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            AttrValue::Str(format!("{{{}}}", parts.join(", ")))
        }
        Value::BytesValue(b) => AttrValue::Str(hex(b)),
        #[allow(unreachable_patterns, reason = "newer OTLP versions add value kinds")]
        _ => return None,
    })
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .filter_map(|kv| Some((kv.key.clone(), value(kv.value.as_ref()?)?)))
        .collect()
}

fn kind(k: i32) -> SpanKind {
    match k {
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// Every span of a request, with its resource and scope.
pub fn from_proto(req: &ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for s in &ss.spans {
                let status = s.status.as_ref();
                out.push(SpanRecord {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: (!s.parent_span_id.is_empty()
                        && s.parent_span_id.iter().any(|b| *b != 0))
                    .then(|| hex(&s.parent_span_id)),
                    name: s.name.clone(),
                    kind: kind(s.kind),
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    attributes: attributes(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| SpanEvent {
                            name: e.name.clone(),
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    status: match status.map_or(0, |st| st.code) {
                        1 => StatusCode::Ok,
                        2 => StatusCode::Error,
                        _ => StatusCode::Unset,
                    },
                    status_message: status.map(|st| st.message.clone()).unwrap_or_default(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}
