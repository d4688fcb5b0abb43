//! `[otel]`: how the system under test exports spans, and [`Scalar`], the value of an
//! attribute (in `resources` here, and in span expectations).

use crate::model::{Sp, SpMap};
use schemars::JsonSchema;

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
