//! The `[expect]` tables, in a file or a scenario: span expectations (names, graph,
//! counts, windows, order, status, hermeticity) and log expectations.

use super::select::{Predicates, Selector, StatusCode};
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
    /// `[[expect.per_span]]`.
    #[serde(rename = "per_span", default)]
    pub per_span: Vec<PerSpanExpect>,
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
            && self.per_span.is_empty()
            && self.order.is_none()
            && self.status.is_none()
            && self.hermeticity.is_none())
    }

    /// Whether any expectation is set.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && !self.expects_spans()
    }
}

/// `[[expect.span]]`: a selector (its keys at this level), and what is asserted of
/// the spans it selects: at least one (by default), `count` of them, none
/// (`absent`), and predicates `each` of them meets.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SpanExpect {
    /// Which spans.
    #[serde(flatten)]
    pub select: Selector,
    /// How many spans the selector matches.
    pub count: Option<Count>,
    /// `true`: no span matches.
    pub absent: Option<Sp<bool>>,
    /// Predicates every matching span meets (a selector's keys).
    #[serde(default)]
    #[schemars(schema_with = "super::select::selector_schema")]
    pub each: Option<Selector>,
    /// Where the expectation's table is.
    #[serde(skip)]
    pub span: Span,
}

/// `[[expect.per_span]]`: for each span `of` selects, how many of its descendants
/// `descendants` selects (the N+1 query check).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PerSpanExpect {
    /// The spans each checked (a name glob or a selector).
    #[schemars(schema_with = "super::select::selector_schema")]
    pub of: Selector,
    /// The descendants counted under each (a name glob or a selector).
    #[schemars(schema_with = "super::select::selector_schema")]
    pub descendants: Selector,
    /// How many, under each.
    pub count: Count,
    /// Where the expectation's table is.
    #[serde(skip)]
    pub span: Span,
}

/// Two selectors, as `[a, b]` (each a name glob or a selector table).
#[derive(Clone, Debug)]
pub struct Pair(pub [Selector; 2]);

impl JsonSchema for Pair {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Pair".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = super::select::selector_schema(generator);
        schemars::json_schema!({ "type": "array", "items": one, "minItems": 2, "maxItems": 2 })
    }
}

impl Pair {
    /// The first.
    pub fn a(&self) -> &Selector {
        &self.0[0]
    }
    /// The second.
    pub fn b(&self) -> &Selector {
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
    /// Where the table is.
    #[serde(skip)]
    pub span: Span,
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
    /// Number of spans by name glob; the other keys of a selector beside the count
    /// narrow which spans of the name count (`kind`, `service`, `attrs`, …).
    #[serde(default)]
    pub by_name: SpMap<NameCount, NamePattern>,
}

/// A `counts.by_name` value: how many spans the selector matches whose name is the
/// key and whose other keys are the rest of the table.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NameCount {
    /// How many.
    #[serde(flatten)]
    pub count: Count,
    /// Which spans: the key's name, narrowed by the selector keys given here.
    #[serde(flatten)]
    pub select: Selector,
}

/// `[[expect.window]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WindowExpect {
    /// The enclosing span (a name glob or a selector).
    #[schemars(schema_with = "super::select::selector_schema")]
    pub outer: Selector,
    /// Spans that start and end inside `outer` (each a name glob or a selector).
    #[schemars(schema_with = "selector_list_schema")]
    pub contains: Vec<Selector>,
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
    /// Attribute keys and their predicates.
    #[serde(default)]
    pub must_match: SpMap<Predicates>,
}

/// `span_attrs`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SpanAttrs {
    /// Forbidden attribute keys; globs.
    #[serde(default)]
    pub forbid_keys: Vec<Sp<NamePattern>>,
}

fn selector_list_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let one = super::select::selector_schema(generator);
    schemars::json_schema!({ "type": "array", "items": one })
}

fn status_all_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<StatusCode>();
    schemars::json_schema!({
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }]
    })
}
