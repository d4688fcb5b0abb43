//! The typed model of a test definition (schema v0.6).
//!
//! Every key and value keeps its span so that late stages (a failed expectation,
//! a bad service reference) can point back into the file. The JSON Schema in
//! `schemas/` is generated from these types, so their serde names are the TOML keys.

use super::{CommandLine, JsonPathQuery, NamePattern, Pattern, Sp, SpMap};
use crate::diag::Span;
use schemars::JsonSchema;

/// One parsed `*.clnrm.toml` file.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(title = "clnrm test definition (schema v0.6)", deny_unknown_fields)]
pub struct TestFile {
    /// Who the file is.
    pub meta: Meta,
    /// Template variables; ignored at run time.
    #[serde(default)]
    #[schemars(with = "SpMap<serde_json::Value>")]
    pub vars: SpMap<toml::Value>,
    /// Seeds and a frozen clock for template functions.
    pub determinism: Option<Determinism>,
    /// How the system under test exports spans.
    pub otel: Option<Otel>,
    /// Containers the scenarios run in, by id.
    #[serde(rename = "service", default)]
    pub services: SpMap<Service>,
    /// The scenarios; at least one.
    #[serde(rename = "scenario")]
    #[schemars(length(min = 1))]
    pub scenarios: Vec<Scenario>,
    /// Span expectations that apply to every scenario of the file.
    #[serde(default)]
    pub expect: Expect,
    /// CPU and memory limits for every container of the file.
    pub limits: Option<Limits>,
    /// Where to write this file's results.
    pub report: Option<ReportPaths>,
    /// How steps' output snapshots are compared.
    pub snapshot: Option<SnapshotTable>,
    /// Whether the file was written in the legacy format.
    #[serde(skip)]
    pub legacy: bool,
    /// The rendered tables its cache keys hash.
    #[serde(skip)]
    pub content: Content,
}

/// The tables of a file that decide its scenarios' outcomes, each as JSON (sorted
/// keys), taken while the file is read so that nothing parses it again. They go into
/// cache keys (see `cache`), so formatting and comments do not count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// `service`, `limits`, `otel` and `expect`, in that order; empty when absent.
    pub shared: [String; 4],
    /// Each `[[scenario]]` table in order; a legacy file's whole document as its one
    /// scenario.
    pub scenarios: Vec<String>,
}

/// `[meta]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Meta {
    /// The test's name.
    pub name: Sp<String>,
    /// The test's version.
    pub version: Sp<String>,
    /// What the test checks.
    pub description: Option<Sp<String>>,
}

/// `[determinism]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Determinism {
    /// Seeds every random template function.
    pub seed: Option<Sp<u64>>,
    /// RFC 3339 time that time functions return.
    pub freeze_clock: Option<Sp<String>>,
}

/// `[otel]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Otel {
    /// How spans leave the system under test.
    pub exporter: Option<Sp<Exporter>>,
    /// Collector URL.
    pub endpoint: Option<Sp<String>>,
    /// OTLP wire protocol.
    pub protocol: Option<Sp<Protocol>>,
    /// Fraction of traces sampled, 0.0 to 1.0.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_ratio: Option<Sp<f64>>,
    /// Resource attributes.
    #[serde(default)]
    pub resources: SpMap<Sp<Scalar>>,
    /// Headers sent with OTLP exports.
    #[serde(default)]
    pub headers: SpMap<Sp<String>>,
    /// Context propagators.
    pub propagators: Option<Propagators>,
    /// Spans one scenario may collect (default 100000); past it, it fails with `span_limit`.
    #[schemars(range(min = 1))]
    pub max_spans: Option<Sp<u64>>,
    /// After the last step, spans are in once none arrived for this many
    /// milliseconds (default 300)...
    #[schemars(range(min = 1))]
    pub settle_ms: Option<Sp<u64>>,
    /// ...or this many have passed (default 5000).
    #[schemars(range(min = 1))]
    pub max_wait_ms: Option<Sp<u64>>,
}

/// `[otel.propagators]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Propagators {
    /// Propagator names such as `tracecontext` and `baggage`.
    #[serde(rename = "use", default)]
    pub use_: Vec<Sp<String>>,
}

/// `[otel].exporter` (its words and schema: `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// Spans as JSON lines on stdout.
    Stdout,
    /// OTLP, protocol from `protocol`.
    Otlp,
    /// OTLP over HTTP.
    OtlpHttp,
    /// OTLP over gRPC.
    OtlpGrpc,
    /// No spans.
    None,
}

/// `[otel].protocol` (its words and schema: `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
    /// OTLP/gRPC.
    Grpc,
}

/// A TOML scalar used as an attribute value.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::String(s) => write!(f, "{s:?}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `[service.<id>]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Service {
    /// Plugin that manages the service; `generic_container` by default.
    #[serde(default = "default_plugin")]
    pub plugin: Sp<String>,
    /// Container image.
    pub image: Sp<String>,
    /// Replaces the image's `ENTRYPOINT` (`[]` clears it); `args` follow it.
    pub entrypoint: Option<Vec<Sp<String>>>,
    /// Container command.
    #[serde(default)]
    pub args: Vec<Sp<String>>,
    /// Environment variables.
    #[serde(default)]
    pub env: SpMap<Sp<String>>,
    /// Container ports.
    #[serde(default)]
    pub ports: Vec<Sp<u16>>,
    /// Bind mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Readiness probe.
    pub health_check: Option<HealthCheck>,
    /// Span whose arrival means the service is ready.
    pub wait_for_span: Option<Sp<String>>,
    /// How long to wait for `wait_for_span`, in seconds (default 30).
    pub wait_for_span_timeout_secs: Option<Sp<u64>>,
    /// Services that must be started, healthy or completed before this one starts:
    /// a list of ids, or a map of id to condition.
    #[serde(default)]
    #[schemars(schema_with = "depends_on_schema")]
    pub depends_on: Vec<Dependency>,
    /// `[[service.<id>.setup]]`: steps run once in the service, alone, after it is
    /// ready; the result is kept as a snapshot image every scenario starts from.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// Where the service table is in the file (its key).
    #[serde(skip)]
    pub span: Span,
}

fn depends_on_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let condition = generator.subschema_for::<Condition>();
    schemars::json_schema!({
        "anyOf": [
            { "type": "array", "items": { "type": "string" }, "uniqueItems": true },
            { "type": "object", "additionalProperties": condition }
        ]
    })
}

/// One entry of `depends_on`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    /// The service depended on.
    pub service: Sp<String>,
    /// What it must have reached; `None` in the list form (then `healthy` when it has
    /// a health check or a ready span, else `started`).
    pub condition: Option<Sp<Condition>>,
}

/// How far a dependency must have come before its dependent starts (its words and
/// schema: `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Its container started.
    Started,
    /// Its health check passed and its ready span, if any, arrived.
    Healthy,
    /// A one-shot: its main process exited 0.
    Completed,
}

impl Volume {
    /// The absolute host path of this mount in a file that lives in `base`: `.` and
    /// `..` resolved by their text (symlinks are the engine's to follow).
    pub fn host_path_in(&self, base: &std::path::Path) -> std::path::PathBuf {
        host_path_in(&self.host_path.value, base)
    }
}

/// `path` made absolute against `base` (itself made absolute against the current
/// directory), `.` and `..` resolved by their text.
pub fn host_path_in(path: &str, base: &std::path::Path) -> std::path::PathBuf {
    use std::path::{Component, PathBuf};
    let joined = std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path));
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn default_plugin() -> Sp<String> {
    Sp::new(super::defaults::PLUGIN.to_owned(), Span::default())
}

/// One bind mount.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Volume {
    /// Path on the host: absolute, or relative to the directory of the test file (of
    /// the template, for a rendered one), as Compose resolves paths relative to its file.
    pub host_path: Sp<String>,
    /// Absolute path in the container.
    pub container_path: Sp<String>,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: Option<Sp<bool>>,
}

/// `health_check`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthCheck {
    /// Command run in the container; exit 0 means healthy.
    pub cmd: Vec<Sp<String>>,
    /// Time between probes in milliseconds.
    pub interval_ms: Option<Sp<u64>>,
    /// Time one probe may take in milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Probes before giving up.
    pub retries: Option<Sp<u64>>,
    /// Where `cmd` is.
    #[serde(skip)]
    pub cmd_span: Span,
}

/// A step's `http`: a request clnrm sends to a service of the scenario.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS` (default `GET`).
    pub method: Option<Sp<String>>,
    /// `http://<service id>:<container port>/path?query`.
    pub url: Sp<super::HttpUrl>,
    /// Request headers.
    #[serde(default)]
    pub headers: SpMap<Sp<String>>,
    /// The request body as text.
    pub body: Option<Sp<String>>,
    /// The request body as JSON (sets `Content-Type: application/json`).
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Sp<toml::Value>>,
    /// Time the request may take in milliseconds (default 30000).
    pub timeout_ms: Option<Sp<u64>>,
    /// Where the `http` table is.
    #[serde(skip)]
    pub span: Span,
}

fn status_codes_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<u16>();
    schemars::json_schema!({
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }]
    })
}

/// One `capture` of a step: a JSONPath query or a regex over one of its outputs.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Capture {
    /// JSONPath (RFC 9535) into the output parsed as JSON; the first value selected.
    pub json: Option<Sp<JsonPathQuery>>,
    /// Regex over the output; its first group (or the whole match, without groups).
    pub regex: Option<Sp<Pattern>>,
    /// Which output: `stdout` (default for commands), `stderr`, `body` (default for
    /// `http`) or `header:<name>`.
    pub from: Option<Sp<String>>,
    /// `json` or `regex` is written (even if it did not compile).
    #[serde(skip)]
    pub says: bool,
    /// Where the capture's table is.
    #[serde(skip)]
    pub span: Span,
}

/// A step's `retry`: for eventual consistency and readiness.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Retry {
    /// Runs in all, the first included (1 to 1000).
    pub attempts: Sp<u64>,
    /// Pause between runs in milliseconds (default 500).
    pub interval_ms: Option<Sp<u64>>,
}

/// `[[scenario]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Scenario {
    /// Unique within the file.
    pub name: Sp<String>,
    /// Labels for selecting scenarios (`--tag`, `--skip-tag`).
    #[serde(default)]
    pub tags: Vec<Sp<String>>,
    /// Service the scenario runs in.
    pub service: Option<Sp<String>>,
    /// The services this scenario starts (their dependencies come along); every
    /// service of the file when absent.
    pub services: Option<Sp<Vec<Sp<String>>>>,
    /// Command line, split like a POSIX shell word list.
    pub run: Option<Sp<CommandLine>>,
    /// `run` was written, even where it could not be read (that error is reported
    /// where it was read).
    #[serde(skip)]
    pub run_written: bool,
    /// Steps run in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Time the whole scenario may take, in milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Higher runs first; default 0.
    pub priority: Option<Sp<i64>>,
    /// May run alongside the file's other scenarios.
    pub concurrent: Option<Sp<bool>>,
    /// Runs again after a failure, each time on a fresh environment, up to this many
    /// more times (0 to 100; over `--retries` and `[executor] retries`). Passing
    /// later makes it `flaky`.
    pub retries: Option<Sp<u64>>,
    /// What to keep after the run.
    pub artifacts: Option<Artifacts>,
    /// Span expectations for this scenario only, in addition to the file's.
    #[serde(default)]
    pub expect: Expect,
    /// Where the scenario's table is.
    #[serde(skip)]
    pub span: Span,
}

/// `artifacts`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Artifacts {
    /// Items such as `"spans:default"`.
    #[serde(default)]
    pub collect: Vec<Sp<String>>,
}

/// `[[scenario.steps]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Step {
    /// The step's name.
    pub name: Sp<String>,
    /// Program and arguments, not run through a shell (or `http`).
    #[schemars(length(min = 1))]
    pub command: Option<Sp<Vec<Sp<String>>>>,
    /// An HTTP request clnrm makes itself (or `command`).
    pub http: Option<HttpRequest>,
    /// HTTP status codes that count as success (default: any 2xx).
    #[serde(default)]
    #[schemars(schema_with = "status_codes_schema")]
    pub expected_status: Option<Sp<Vec<Sp<u16>>>>,
    /// Regex the HTTP response body must match.
    pub expected_body_regex: Option<Sp<Pattern>>,
    /// JSONPath (RFC 9535) → the value it must select first in the response body.
    #[serde(default)]
    #[schemars(with = "SpMap<serde_json::Value>")]
    pub expected_json: SpMap<toml::Value>,
    /// Service to run in (defaults to the scenario's; for an `http` step, the service
    /// its URL names; in a set-up, the service itself).
    pub service: Option<Sp<String>>,
    /// Exit code that counts as success (default 0).
    pub expected_exit_code: Option<Sp<i64>>,
    /// Regex that stdout or stderr must match.
    pub expected_output_regex: Option<Sp<Pattern>>,
    /// Working directory in the container.
    pub workdir: Option<Sp<String>>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: SpMap<Sp<String>>,
    /// Carry on with the next step when this one fails.
    pub continue_on_failure: Option<Sp<bool>>,
    /// Kill the step's container and fail with `timeout` after this many milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Run a failing step again, up to `attempts` times in all.
    pub retry: Option<Retry>,
    /// Compare the step's output (an `http` step's body) with its snapshot in
    /// `.clnrm/snapshots/` (after `[snapshot] redact`).
    pub snapshot: Option<Sp<bool>>,
    /// Values taken from what the step printed, for `${name}` in later steps.
    #[serde(default)]
    pub capture: SpMap<Capture>,
    /// Where the step's table is.
    #[serde(skip)]
    pub span: Span,
}

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

/// `[limits]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Limits {
    /// CPU in thousandths of a core.
    pub cpu_millicores: Option<Sp<u64>>,
    /// Memory in MiB.
    pub memory_mb: Option<Sp<u64>>,
}

/// `[snapshot]` (in a test file or the config).
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SnapshotTable {
    /// Regex → replacement, applied in order to a step's output before it is
    /// compared with its snapshot (`$1` names a group), e.g. `"id=\\d+" = "id=[id]"`.
    #[serde(default)]
    pub redact: SpMap<Sp<String>>,
}

/// `[report]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReportPaths {
    /// JSON report path, relative to the file.
    pub json: Option<Sp<String>>,
    /// JUnit XML path, relative to the file.
    pub junit: Option<Sp<String>>,
    /// Digest path, relative to the file.
    pub digest: Option<Sp<String>>,
}

fn status_all_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let code = generator.subschema_for::<StatusCode>();
    schemars::json_schema!({
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }]
    })
}
