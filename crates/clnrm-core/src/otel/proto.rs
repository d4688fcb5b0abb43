//! OTLP protobuf (`ExportTraceServiceRequest`) to the span model.

use super::span::{AttrValue, SpanEvent, SpanLink, SpanRecord};
use crate::model::{SpanKind, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use std::collections::BTreeMap;

/// Lower-case hex of `bytes` (ids: hot, so no formatting machinery).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn value(v: AnyValue) -> Option<AttrValue> {
    Some(match v.value? {
        Value::StringValue(s) => AttrValue::Str(s),
        Value::BoolValue(b) => AttrValue::Bool(b),
        Value::IntValue(i) => AttrValue::Int(i),
        Value::DoubleValue(d) => AttrValue::Double(d),
        Value::ArrayValue(a) => AttrValue::Array(a.values.into_iter().filter_map(value).collect()),
        Value::KvlistValue(kv) => {
            let parts: Vec<String> = attributes(kv.values)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            AttrValue::Str(format!("{{{}}}", parts.join(", ")))
        }
        Value::BytesValue(b) => AttrValue::Str(hex(&b)),
        #[allow(unreachable_patterns, reason = "newer OTLP versions add value kinds")]
        _ => return None,
    })
}

fn attributes(kvs: Vec<KeyValue>) -> BTreeMap<String, AttrValue> {
    kvs.into_iter()
        .filter_map(|kv| Some((kv.key, value(kv.value?)?)))
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

/// Every span of a request, with its resource and scope (taken apart, not copied).
pub fn from_proto(req: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let total = req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let mut out = Vec::with_capacity(total);
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(SpanRecord {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: s
                        .parent_span_id
                        .iter()
                        .any(|b| *b != 0)
                        .then(|| hex(&s.parent_span_id)),
                    name: s.name,
                    kind: kind(s.kind),
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    attributes: attributes(s.attributes),
                    events: s
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes(e.attributes),
                        })
                        .collect(),
                    links: s
                        .links
                        .into_iter()
                        .map(|l| SpanLink {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes(l.attributes),
                        })
                        .collect(),
                    status: match status.code {
                        1 => StatusCode::Ok,
                        2 => StatusCode::Error,
                        _ => StatusCode::Unset,
                    },
                    status_message: status.message,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::hex(&[]), "");
    }
}
