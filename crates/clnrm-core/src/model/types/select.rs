//! Span selectors and predicates (SPEC §15): which spans an expectation is about, and
//! what is asserted of a value. A plain name glob stays a selector everywhere one is
//! taken; an inline table says more (kind, service, status, attributes, duration,
//! events, links, parent, ancestor).

use super::otel::Scalar;
use crate::diag::Span;
use crate::model::{NamePattern, Pattern, Sp, SpMap};
use schemars::JsonSchema;
use std::fmt;

/// OpenTelemetry span kind (its words and schema: `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// Internal operation.
    Internal,
    /// Server side of a request.
    Server,
    /// Client side of a request.
    Client,
    /// Message producer.
    Producer,
    /// Message consumer.
    Consumer,
}

/// Span status code (its schema, any case, is made from its words in `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatusCode {
    /// OK.
    Ok,
    /// ERROR.
    Error,
    /// UNSET.
    Unset,
}

/// One predicate on a value.
#[derive(Clone, Debug)]
pub enum Predicate {
    /// Equal (a plain value, or `eq`), across types as ever: `"200"` equals 200.
    Eq(Scalar),
    /// Not equal.
    Ne(Scalar),
    /// Set (`true`) or not set (`false`).
    Exists(bool),
    /// A number above.
    Gt(f64),
    /// A number at least.
    Gte(f64),
    /// A number below.
    Lt(f64),
    /// A number at most.
    Lte(f64),
    /// A string the expression matches.
    Regex(Pattern),
    /// Equal to one of these.
    In(Vec<Scalar>),
    /// A string holding this text, or a list holding this value.
    Contains(Scalar),
}

/// The predicate words of an inline table, for did-you-mean and the schema.
pub const PREDICATE_WORDS: &[&str] = &[
    "eq", "ne", "exists", "gt", "gte", "lt", "lte", "regex", "in", "contains",
];

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Eq(v) => write!(f, "= {v}"),
            Predicate::Ne(v) => write!(f, "!= {v}"),
            Predicate::Exists(true) => f.write_str("set"),
            Predicate::Exists(false) => f.write_str("not set"),
            Predicate::Gt(n) => write!(f, "> {n}"),
            Predicate::Gte(n) => write!(f, ">= {n}"),
            Predicate::Lt(n) => write!(f, "< {n}"),
            Predicate::Lte(n) => write!(f, "<= {n}"),
            Predicate::Regex(p) => write!(f, "matching /{}/", p.as_str()),
            Predicate::In(vs) => {
                let parts: Vec<String> = vs.iter().map(ToString::to_string).collect();
                write!(f, "one of [{}]", parts.join(", "))
            }
            Predicate::Contains(v) => write!(f, "containing {v}"),
        }
    }
}

/// Every predicate on one value (a plain value is one, equality; an inline table is
/// each of its keys), each where it is written.
#[derive(Clone, Debug, Default)]
pub struct Predicates {
    /// The predicates; all must hold.
    pub all: Vec<Sp<Predicate>>,
    /// The key each was written with (`min` for a duration's `gte`), in the order of
    /// `all`; `eq` for a plain value.
    pub keys: Vec<&'static str>,
    /// Where the value or table is.
    pub span: Span,
}

impl fmt::Display for Predicates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.all.iter().map(|p| p.value.to_string()).collect();
        f.write_str(&parts.join(" and "))
    }
}

impl JsonSchema for Predicates {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Predicates".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let scalar = generator.subschema_for::<Scalar>();
        let number = schemars::json_schema!({ "type": "number" });
        schemars::json_schema!({
            "description": "A value (equality), or a table of predicates that must all hold.",
            "anyOf": [
                scalar,
                {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "properties": {
                        "eq": { "description": "Equal to.", "anyOf": [scalar] },
                        "ne": { "description": "Not equal to.", "anyOf": [scalar] },
                        "exists": { "description": "Set (true) or not set (false).", "type": "boolean" },
                        "gt": { "description": "A number above.", "anyOf": [number] },
                        "gte": { "description": "A number at least.", "anyOf": [number] },
                        "lt": { "description": "A number below.", "anyOf": [number] },
                        "lte": { "description": "A number at most.", "anyOf": [number] },
                        "regex": { "description": "A string the regular expression matches.", "type": "string" },
                        "in": { "description": "Equal to one of these.", "type": "array", "items": scalar, "minItems": 1 },
                        "contains": { "description": "A string holding this text, or a list holding this value.", "anyOf": [scalar] }
                    }
                }
            ]
        })
    }
}

/// `attrs`: predicates on attributes. `{ all = {..}, any = {..} }`, or the keys
/// directly (each must hold, as `all`).
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AttrsExpect {
    /// Every predicate must hold.
    #[serde(default)]
    pub all: SpMap<Predicates>,
    /// One must hold; a list of `"k=v"` strings is also accepted.
    #[serde(default)]
    #[schemars(schema_with = "attrs_any_schema")]
    pub any: SpMap<Predicates>,
}

fn attrs_any_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let map = generator.subschema_for::<SpMap<Predicates>>();
    schemars::json_schema!({
        "anyOf": [map, { "type": "array", "items": { "type": "string", "pattern": "^[^=]+=.*$" } }]
    })
}

pub(crate) fn attrs_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let structured = generator.subschema_for::<AttrsExpect>();
    let flat = generator.subschema_for::<SpMap<Predicates>>();
    schemars::json_schema!({
        "description": "Predicates on attributes: `{ all = {..}, any = {..} }`, or attribute keys directly (each must hold).",
        "anyOf": [structured, flat]
    })
}

/// One expected event: `{ name, attrs, absent }`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EventExpect {
    /// Event name; a glob.
    pub name: Sp<NamePattern>,
    /// Predicates on the event's attributes.
    #[serde(default)]
    pub attrs: SpMap<Predicates>,
    /// `true`: the span has no such event.
    pub absent: Option<Sp<bool>>,
    /// Where the entry is.
    #[serde(skip)]
    pub span: Span,
}

/// `events`: `{ all = [names], any = [names] }`, or a list of `{ name, attrs, absent }`
/// each of which must hold.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EventsExpect {
    /// Every event must occur.
    #[serde(default)]
    pub all: Vec<Sp<String>>,
    /// One of the events must occur.
    #[serde(default)]
    pub any: Vec<Sp<String>>,
    /// The list form.
    #[serde(skip)]
    pub each: Vec<EventExpect>,
}

pub(crate) fn events_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let table = generator.subschema_for::<EventsExpect>();
    let one = generator.subschema_for::<EventExpect>();
    schemars::json_schema!({
        "description": "Events: `{ all = [names], any = [names] }`, or a list of `{ name, attrs, absent }`, each of which must hold.",
        "anyOf": [table, { "type": "array", "items": one }]
    })
}

/// One expected link: `{ to = <selector>, attrs, absent }`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LinkExpect {
    /// The span linked to, among the collected ones; any link when left out.
    #[serde(default)]
    #[schemars(schema_with = "selector_schema")]
    pub to: Option<Box<Selector>>,
    /// Predicates on the link's attributes.
    #[serde(default)]
    pub attrs: SpMap<Predicates>,
    /// `true`: the span has no such link.
    pub absent: Option<Sp<bool>>,
    /// Where the entry is.
    #[serde(skip)]
    pub span: Span,
}

/// A span selector: a name glob, or a table of criteria a span must all meet.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Selector {
    /// Span name; a glob.
    pub name: Option<Sp<NamePattern>>,
    /// Span kind.
    pub kind: Option<Sp<SpanKind>>,
    /// The `service.name` of the span's resource; a glob.
    pub service: Option<Sp<NamePattern>>,
    /// Span status.
    pub status: Option<Sp<StatusCode>>,
    /// Predicates on attributes.
    #[serde(default)]
    #[schemars(schema_with = "attrs_schema")]
    pub attrs: Option<AttrsExpect>,
    /// Predicates on the duration in milliseconds (`min` and `max` are `gte` and `lte`).
    #[serde(default)]
    #[schemars(schema_with = "duration_schema")]
    pub duration_ms: Option<Predicates>,
    /// Events the span has (or, with `absent`, has not).
    #[serde(default)]
    #[schemars(schema_with = "events_schema")]
    pub events: Option<EventsExpect>,
    /// Links the span has (or, with `absent`, has not).
    #[serde(default)]
    pub links: Vec<LinkExpect>,
    /// The span's parent; a name glob or a selector.
    #[serde(default)]
    #[schemars(schema_with = "selector_schema")]
    pub parent: Option<Box<Selector>>,
    /// Some ancestor of the span; a name glob or a selector.
    #[serde(default)]
    #[schemars(schema_with = "selector_schema")]
    pub ancestor: Option<Box<Selector>>,
    /// Where the selector is written.
    #[serde(skip)]
    pub span: Span,
}

pub(crate) fn selector_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let table = generator.subschema_for::<Selector>();
    schemars::json_schema!({
        "description": "A span name (a glob), or a selector table.",
        "anyOf": [{ "type": "string" }, table]
    })
}

fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let number = schemars::json_schema!({ "type": "number", "minimum": 0 });
    schemars::json_schema!({
        "description": "Predicates on the duration in milliseconds.",
        "type": "object",
        "additionalProperties": false,
        "minProperties": 1,
        "properties": {
            "min": { "description": "At least (as `gte`).", "anyOf": [number] },
            "max": { "description": "At most (as `lte`).", "anyOf": [number] },
            "gt": { "description": "Above.", "anyOf": [number] },
            "gte": { "description": "At least.", "anyOf": [number] },
            "lt": { "description": "Below.", "anyOf": [number] },
            "lte": { "description": "At most.", "anyOf": [number] }
        }
    })
}

impl Selector {
    /// A selector of spans named `name`.
    pub fn named(name: Sp<NamePattern>) -> Self {
        Self {
            span: name.span,
            name: Some(name),
            ..Self::default()
        }
    }

    /// The name glob when that is all the selector says.
    pub fn only_name(&self) -> Option<&NamePattern> {
        let name = self.name.as_ref()?;
        let bare = Selector {
            name: None,
            span: self.span,
            ..self.clone()
        };
        bare.is_empty().then_some(&name.value)
    }

    /// Whether it says nothing (every span meets it).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.kind.is_none()
            && self.service.is_none()
            && self.status.is_none()
            && self
                .attrs
                .as_ref()
                .is_none_or(|a| a.all.is_empty() && a.any.is_empty())
            && self.duration_ms.as_ref().is_none_or(|d| d.all.is_empty())
            && self
                .events
                .as_ref()
                .is_none_or(|e| e.all.is_empty() && e.any.is_empty() && e.each.is_empty())
            && self.links.is_empty()
            && self.parent.is_none()
            && self.ancestor.is_none()
    }
}

/// Shown compactly: `"GET /orders/*"` for a bare name; its other criteria in braces
/// after it (`"charge" {kind server, amount = 5, parent "auth"}`).
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(k) = &self.kind {
            parts.push(format!("kind {}", k.value.as_str()));
        }
        if let Some(s) = &self.service {
            parts.push(format!("service \"{}\"", s.value));
        }
        if let Some(s) = &self.status {
            parts.push(format!("status {}", s.value.as_str()));
        }
        if let Some(a) = &self.attrs {
            for (k, p) in a.all.iter() {
                parts.push(format!("{} {p}", k.value));
            }
            if !a.any.is_empty() {
                let any: Vec<String> = a
                    .any
                    .iter()
                    .map(|(k, p)| format!("{} {p}", k.value))
                    .collect();
                parts.push(format!("one of ({})", any.join(", ")));
            }
        }
        if let Some(d) = &self.duration_ms {
            parts.push(format!("duration {d} ms"));
        }
        if let Some(e) = &self.events {
            for n in &e.all {
                parts.push(format!("event \"{}\"", n.value));
            }
            if !e.any.is_empty() {
                let any: Vec<&str> = e.any.iter().map(|n| n.value.as_str()).collect();
                parts.push(format!("one of the events {}", any.join(", ")));
            }
            for ev in &e.each {
                parts.push(ev.to_string());
            }
        }
        for l in &self.links {
            parts.push(l.to_string());
        }
        if let Some(p) = &self.parent {
            parts.push(format!("parent {p}"));
        }
        if let Some(a) = &self.ancestor {
            parts.push(format!("ancestor {a}"));
        }
        match (&self.name, parts.is_empty()) {
            (Some(n), true) => write!(f, "\"{}\"", n.value),
            (Some(n), false) => write!(f, "\"{}\" {{{}}}", n.value, parts.join(", ")),
            (None, false) => write!(f, "{{{}}}", parts.join(", ")),
            (None, true) => f.write_str("{} (every span)"),
        }
    }
}

impl fmt::Display for EventExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let no = if self.absent.as_ref().is_some_and(|a| a.value) {
            "no "
        } else {
            ""
        };
        write!(f, "{no}event \"{}\"", self.name.value)?;
        write_attrs(f, &self.attrs)
    }
}

impl fmt::Display for LinkExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let no = if self.absent.as_ref().is_some_and(|a| a.value) {
            "no "
        } else {
            ""
        };
        match &self.to {
            Some(to) => write!(f, "{no}link to {to}")?,
            None => write!(f, "{no}link")?,
        }
        write_attrs(f, &self.attrs)
    }
}

fn write_attrs(f: &mut fmt::Formatter<'_>, attrs: &SpMap<Predicates>) -> fmt::Result {
    if attrs.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = attrs
        .iter()
        .map(|(k, p)| format!("{} {p}", k.value))
        .collect();
    write!(f, " with {}", parts.join(", "))
}
