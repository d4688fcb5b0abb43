//! One span model for every intake: OTLP protobuf, OTLP-JSON and flat span objects
//! all become [`SpanRecord`]s. Saved as JSON under `.clnrm/artifacts/` (the format
//! the diff stage reads).

use crate::model::{Scalar, SpanKind, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A typed attribute value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A string (bytes values are kept as hex strings).
    Str(String),
    /// A list.
    Array(Vec<AttrValue>),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(x) => write!(f, "{x}"),
            AttrValue::Str(s) => write!(f, "{s:?}"),
            AttrValue::Array(v) => {
                let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

impl AttrValue {
    /// Whether this value matches an expected scalar, sensibly across types: `"200"`
    /// matches 200, `200` matches `200.0`, `"true"` matches `true`.
    pub fn matches(&self, want: &Scalar) -> bool {
        match (self, want) {
            (AttrValue::Str(a), Scalar::String(b)) => a == b,
            (AttrValue::Int(a), Scalar::Int(b)) => a == b,
            (AttrValue::Bool(a), Scalar::Bool(b)) => a == b,
            (AttrValue::Double(a), Scalar::Float(b)) => a == b,
            (AttrValue::Int(a), Scalar::Float(b)) => (*a as f64) == *b,
            (AttrValue::Double(a), Scalar::Int(b)) => *a == (*b as f64),
            (AttrValue::Str(a), Scalar::Int(b)) => a.trim().parse::<i64>().is_ok_and(|v| v == *b),
            (AttrValue::Str(a), Scalar::Float(b)) => a.trim().parse::<f64>().is_ok_and(|v| v == *b),
            (AttrValue::Str(a), Scalar::Bool(b)) => a.trim().parse::<bool>().is_ok_and(|v| v == *b),
            (AttrValue::Int(a), Scalar::String(b)) => {
                b.trim().parse::<i64>().is_ok_and(|v| v == *a)
            }
            (AttrValue::Double(a), Scalar::String(b)) => {
                b.trim().parse::<f64>().is_ok_and(|v| v == *a)
            }
            (AttrValue::Bool(a), Scalar::String(b)) => {
                b.trim().parse::<bool>().is_ok_and(|v| v == *a)
            }
            (AttrValue::Array(items), w) => items.iter().any(|i| i.matches(w)),
            _ => false,
        }
    }
}

/// A span event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Event name.
    pub name: String,
    /// Time in nanoseconds since the epoch.
    pub time_unix_nano: u64,
    /// Attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
}

/// A link from a span to another (a consumer's to its producer's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    /// The linked span's trace, 32 hex digits.
    pub trace_id: String,
    /// The linked span, 16 hex digits.
    pub span_id: String,
    /// Attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
}

/// A span, whatever its intake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The parent's span id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Span name.
    pub name: String,
    /// Kind (unspecified counts as internal).
    pub kind: SpanKind,
    /// Start, nanoseconds since the epoch.
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the epoch.
    pub end_time_unix_nano: u64,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrValue>,
    /// Events.
    #[serde(default)]
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SpanLink>,
    /// Status code.
    pub status: StatusCode,
    /// Status message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Resource attributes.
    #[serde(default)]
    pub resource: BTreeMap<String, AttrValue>,
    /// Instrumentation scope name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

impl AttrValue {
    fn map_strings(&mut self, f: &impl Fn(&str) -> Option<String>) {
        match self {
            AttrValue::Str(s) => {
                if let Some(new) = f(s) {
                    *s = new;
                }
            }
            AttrValue::Array(items) => items.iter_mut().for_each(|i| i.map_strings(f)),
            AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Double(_) => {}
        }
    }
}

fn map_attributes(attrs: &mut BTreeMap<String, AttrValue>, f: &impl Fn(&str) -> Option<String>) {
    let old = std::mem::take(attrs);
    for (k, mut v) in old {
        v.map_strings(f);
        attrs.insert(f(&k).unwrap_or(k), v);
    }
}

impl AttrValue {
    /// Bytes this value holds on the heap, roughly.
    fn heap_bytes(&self) -> usize {
        match self {
            AttrValue::Str(s) => s.len(),
            AttrValue::Array(items) => items
                .iter()
                .map(|i| std::mem::size_of::<Self>() + i.heap_bytes())
                .sum(),
            AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Double(_) => 0,
        }
    }
}

/// Bytes a map of attributes holds in memory, at most about: its B-tree's nodes
/// (each has room for eleven entries and is at least about half full) and the heap
/// text of its entries.
fn attributes_bytes(attrs: &BTreeMap<String, AttrValue>) -> usize {
    const NODE: usize =
        11 * (std::mem::size_of::<String>() + std::mem::size_of::<AttrValue>()) + 16;
    if attrs.is_empty() {
        return 0;
    }
    let nodes = attrs.len().div_ceil(6);
    nodes * NODE
        + attrs
            .iter()
            .map(|(k, v)| k.len() + v.heap_bytes())
            .sum::<usize>()
}

impl SpanRecord {
    /// Bytes this span holds in memory, roughly: what the span limits count.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.trace_id.len()
            + self.span_id.len()
            + self.parent_span_id.as_ref().map_or(0, String::len)
            + self.name.len()
            + self.status_message.len()
            + self.scope.len()
            + attributes_bytes(&self.attributes)
            + attributes_bytes(&self.resource)
            + self
                .events
                .iter()
                .map(|e| {
                    std::mem::size_of::<SpanEvent>()
                        + e.name.len()
                        + attributes_bytes(&e.attributes)
                })
                .sum::<usize>()
            + self
                .links
                .iter()
                .map(|l| {
                    std::mem::size_of::<SpanLink>()
                        + l.trace_id.len()
                        + l.span_id.len()
                        + attributes_bytes(&l.attributes)
                })
                .sum::<usize>()
    }

    /// Replaces every text of the span (names, keys, string values, status message,
    /// scope, resource) for which `f` gives a replacement: for secret masking.
    pub fn map_strings(&mut self, f: &impl Fn(&str) -> Option<String>) {
        let one = |s: &mut String| {
            if let Some(new) = f(s) {
                *s = new;
            }
        };
        one(&mut self.name);
        one(&mut self.status_message);
        one(&mut self.scope);
        map_attributes(&mut self.attributes, f);
        map_attributes(&mut self.resource, f);
        for e in &mut self.events {
            one(&mut e.name);
            map_attributes(&mut e.attributes, f);
        }
        for l in &mut self.links {
            map_attributes(&mut l.attributes, f);
        }
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano) as f64
            / 1e6
    }

    /// A short description: name, kind, status, attributes.
    pub fn describe(&self) -> String {
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "span \"{}\" (kind {}, status {}, {:.1} ms, attrs {{{}}})",
            self.name,
            self.kind.as_str(),
            self.status.as_str(),
            self.duration_ms(),
            attrs.join(", ")
        )
    }
}
