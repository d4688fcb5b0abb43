//! The `[expect]` tables, in a file or a scenario: span expectations (names, graph,
//! counts, windows, order, status, hermeticity) and log expectations.

use super::otel::Scalar;
use crate::diag::Span;
use crate::model::{NamePattern, Pattern, Sp, SpMap};
use schemars::JsonSchema;

/// The `[expect]` tables.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Expect {
    /// `[[expect.span]]`.
    #[serde(rename = "span", default)]
    pub spans: Vec<SpanExpect>,
    /// `[expect.graph]`.
    pub graph: Option<GraphExpect>,
    /// `[expect.counts]`.
    pub counts: Option<CountsExpect>,
    /// `[[expect.window]]`.
    #[serde(rename = "window", default)]
    pub windows: Vec<WindowExpect>,
    /// `[expect.order]`.
    pub order: Option<OrderExpect>,
    /// `[expect.status]`.
    pub status: Option<StatusExpect>,
    /// `[expect.hermeticity]`.
    pub hermeticity: Option<HermeticityExpect>,
    /// `[[expect.log]]`: what a service's log holds, or must not.
    #[serde(rename = "log", default)]
    pub logs: Vec<LogExpect>,
}

/// `[[expect.log]]`: checked against a service's log after the steps.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LogExpect {
    /// The service whose log is read.
    pub service: Sp<String>,
    /// Text the log holds (or, with `absent`, must not).
    pub contains: Option<Sp<String>>,
    /// A regular expression a line of the log matches (or, with `absent`, none does).
    pub regex: Option<Sp<Pattern>>,
    /// `true`: the text must not appear.
    pub absent: Option<Sp<bool>>,
    /// Where the expectation's table is.
    #[serde(skip)]
    pub span: Span,
}

impl Expect {
    /// Whether any span expectation is set (log expectations need no spans).
    pub fn expects_spans(&self) -> bool {
        !(self.spans.is_empty()
            && self.graph.is_none()
            && self.counts.is_none()
            && self.windows.is_empty()
            && self.order.is_none()
            && self.status.is_none()
            && self.hermeticity.is_none())
    }

    /// Whether any expectation is set.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && !self.expects_spans()
    }
}

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

/// `[[expect.span]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SpanExpect {
    /// Span name; a glob.
    pub name: Sp<NamePattern>,
    /// Name of the parent span; a glob.
    pub parent: Option<Sp<NamePattern>>,
    /// Span kind.
    pub kind: Option<Sp<SpanKind>>,
    /// Attribute expectations.
    pub attrs: Option<AttrsExpect>,
    /// Event expectations.
    pub events: Option<EventsExpect>,
    /// Duration bounds in milliseconds.
    pub duration_ms: Option<Bounds>,
    /// Where the expectation's table is.
    #[serde(skip)]
    pub span: Span,
}

/// `attrs`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AttrsExpect {
    /// Every pair must match.
    #[serde(default)]
    pub all: SpMap<Sp<Scalar>>,
    /// One pair must match; a list of `"k=v"` strings is also accepted.
    #[serde(default)]
    #[schemars(schema_with = "attrs_any_schema")]
    pub any: SpMap<Sp<Scalar>>,
}

fn attrs_any_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let map = generator.subschema_for::<SpMap<Scalar>>();
    schemars::json_schema!({
        "anyOf": [map, { "type": "array", "items": { "type": "string", "pattern": "^[^=]+=.*$" } }]
    })
}

/// `events`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EventsExpect {
    /// Every event must occur.
    #[serde(default)]
    pub all: Vec<Sp<String>>,
    /// One of the events must occur.
    #[serde(default)]
    pub any: Vec<Sp<String>>,
}

/// `{min, max}`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Bounds {
    /// Lower bound.
    pub min: Option<Sp<f64>>,
    /// Upper bound.
    pub max: Option<Sp<f64>>,
}

/// Two span names, as `[a, b]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(transparent)]
pub struct Pair(pub [Sp<NamePattern>; 2]);

impl Pair {
    /// The first name.
    pub fn a(&self) -> &Sp<NamePattern> {
        &self.0[0]
    }
    /// The second name.
    pub fn b(&self) -> &Sp<NamePattern> {
        &self.0[1]
    }
}

/// `[expect.graph]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GraphExpect {
    /// Edges `[parent, child]` that must exist.
    #[serde(default)]
    pub must_include: Vec<Sp<Pair>>,
    /// Edges `[a, b]` that must not exist.
    #[serde(default)]
    pub must_not_cross: Vec<Sp<Pair>>,
    /// The span graph has no cycle.
    pub acyclic: Option<Sp<bool>>,
}

/// `{eq, gte, lte}`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Count {
    /// Exactly.
    pub eq: Option<Sp<u64>>,
    /// At least.
    pub gte: Option<Sp<u64>>,
    /// At most.
    pub lte: Option<Sp<u64>>,
}

/// `[expect.counts]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CountsExpect {
    /// Number of spans.
    pub spans_total: Option<Count>,
    /// Number of events.
    pub events_total: Option<Count>,
    /// Number of spans with status ERROR.
    pub errors_total: Option<Count>,
    /// Number of spans by name.
    #[serde(default)]
    pub by_name: SpMap<Count, NamePattern>,
}

/// `[[expect.window]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WindowExpect {
    /// The enclosing span.
    pub outer: Sp<NamePattern>,
    /// Spans that start and end inside `outer`.
    pub contains: Vec<Sp<NamePattern>>,
    /// Where the window's table is.
    #[serde(skip)]
    pub span: Span,
}

/// `[expect.order]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OrderExpect {
    /// `[a, b]`: a ends before b starts.
    #[serde(default)]
    pub must_precede: Vec<Sp<Pair>>,
    /// `[a, b]`: a starts after b ends.
    #[serde(default)]
    pub must_follow: Vec<Sp<Pair>>,
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

/// `[expect.status]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StatusExpect {
    /// Status every span must have: one, or a list of those allowed.
    #[serde(default)]
    #[schemars(schema_with = "status_all_schema")]
    pub all: Option<Sp<Vec<Sp<StatusCode>>>>,
    /// Status by span-name glob.
    #[serde(default)]
    pub by_name: SpMap<Sp<StatusCode>, NamePattern>,
}

/// `[expect.hermeticity]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HermeticityExpect {
    /// No span names a network peer outside the scenario (its own services,
    /// loopback and `allow_hosts` are inside).
    pub no_external_services: Option<Sp<bool>>,
    /// Resource attributes that must have these values.
    pub resource_attrs: Option<ResourceAttrs>,
    /// Attribute keys no span may carry.
    pub span_attrs: Option<SpanAttrs>,
    /// Hosts that count as internal for `no_external_services`, besides the
    /// scenario's own services and loopback.
    #[serde(default)]
    pub allow_hosts: Vec<Sp<String>>,
}

/// `resource_attrs`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ResourceAttrs {
    /// Key and value pairs.
    #[serde(default)]
    pub must_match: SpMap<Sp<Scalar>>,
}

/// `span_attrs`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SpanAttrs {
    /// Forbidden attribute keys; globs.
    #[serde(default)]
    pub forbid_keys: Vec<Sp<NamePattern>>,
}

fn status_all_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<StatusCode>();
    schemars::json_schema!({
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }]
    })
}
