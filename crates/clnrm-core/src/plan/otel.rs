//! A file's telemetry as planned: where its spans come from, how many it may collect
//! and how long to wait for them, and the `OTEL_*` settings the system under test
//! exports with. Receiving spans is `otel`'s job.

use crate::model::defaults;
use crate::model::{Exporter, Protocol, TestFile};
use crate::otel::SpanLimits;
use serde::Serialize;
use std::time::Duration;

/// How the system under test exports to clnrm's receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct OtlpSettings {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, `http/json` or `grpc`.
    pub protocol: String,
    /// Other `OTEL_*` variables from `[otel]` (sampler, propagators, headers).
    pub env: Vec<(String, String)>,
    /// `[otel].resources` as `key=value` pairs.
    pub resources: Vec<(String, String)>,
}

impl OtlpSettings {
    /// Whether the exporter speaks gRPC.
    pub fn grpc(&self) -> bool {
        self.protocol == "grpc"
    }
}

/// Percent-encodes what `OTEL_RESOURCE_ATTRIBUTES` (W3C baggage syntax) does not allow.
pub fn baggage_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        let ok = matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C | 0x3E..=0x5B | 0x5D..=0x7E);
        if ok {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `OTEL_RESOURCE_ATTRIBUTES` for these pairs.
pub fn resource_attributes(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", baggage_escape(k), baggage_escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// How long a scenario waits for its spans after its last step (`[otel] settle_ms`
/// and `max_wait_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanWait {
    /// Spans are in once none arrived for this long...
    pub settle: Duration,
    /// ...or this long has passed.
    pub max: Duration,
}

impl SpanWait {
    /// The wait `file` asks for.
    pub fn of(file: &TestFile) -> Self {
        let otel = file.otel.as_ref();
        let ms = |v: Option<&crate::model::Sp<u64>>, default| {
            Duration::from_millis(v.map_or(default, |v| v.value))
        };
        Self {
            settle: ms(
                otel.and_then(|o| o.settle_ms.as_ref()),
                defaults::SPAN_SETTLE_MS,
            ),
            max: ms(
                otel.and_then(|o| o.max_wait_ms.as_ref()),
                defaults::SPAN_MAX_WAIT_MS,
            ),
        }
    }
}

/// Where a scenario's spans come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intake {
    /// JSON span lines in the steps' stdout.
    Stdout,
    /// clnrm's OTLP receiver (HTTP, or gRPC).
    Otlp {
        /// The exporter speaks gRPC.
        grpc: bool,
    },
    /// No spans.
    None,
}

/// Where a file's spans come from (`[otel].exporter`).
pub fn intake(file: &TestFile) -> Intake {
    match file
        .otel
        .as_ref()
        .and_then(|o| o.exporter.as_ref())
        .map(|e| e.value)
    {
        None | Some(Exporter::Stdout) => Intake::Stdout,
        Some(Exporter::None) => Intake::None,
        Some(Exporter::Otlp | Exporter::OtlpHttp) => Intake::Otlp { grpc: false },
        Some(Exporter::OtlpGrpc) => Intake::Otlp { grpc: true },
    }
}

/// The file's span limits: `[otel] max_spans` over the default.
pub(super) fn span_limits(file: &TestFile) -> SpanLimits {
    let mut limits = SpanLimits::default();
    if let Some(m) = file.otel.as_ref().and_then(|o| o.max_spans.as_ref()) {
        limits.max_spans = usize::try_from(m.value).unwrap_or(usize::MAX);
    }
    limits
}

/// `[otel]` settings passed to the system under test as standard SDK variables.
fn otel_env(file: &TestFile) -> Vec<(String, String)> {
    let Some(otel) = &file.otel else {
        return Vec::new();
    };
    let mut env = Vec::new();
    if let Some(r) = &otel.sample_ratio {
        env.push((
            "OTEL_TRACES_SAMPLER".to_owned(),
            "parentbased_traceidratio".to_owned(),
        ));
        env.push(("OTEL_TRACES_SAMPLER_ARG".to_owned(), r.value.to_string()));
    }
    if let Some(p) = &otel.propagators {
        let words: Vec<&str> = p.use_.iter().map(|w| w.value.as_str()).collect();
        env.push(("OTEL_PROPAGATORS".to_owned(), words.join(",")));
    }
    if !otel.headers.is_empty() {
        let pairs: Vec<String> = otel
            .headers
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        env.push(("OTEL_EXPORTER_OTLP_HEADERS".to_owned(), pairs.join(",")));
    }
    env
}

fn scalar_text(s: &crate::model::Scalar) -> String {
    match s {
        crate::model::Scalar::String(v) => v.clone(),
        other => other.to_string(),
    }
}

pub(super) fn otlp_settings(file: &TestFile) -> OtlpSettings {
    let otel = file.otel.as_ref();
    let grpc = otel
        .and_then(|o| o.exporter.as_ref())
        .is_some_and(|e| e.value == Exporter::OtlpGrpc);
    let protocol = match otel.and_then(|o| o.protocol.as_ref()).map(|p| p.value) {
        Some(Protocol::Grpc) => "grpc",
        Some(Protocol::HttpJson) => "http/json",
        Some(Protocol::HttpProtobuf) => "http/protobuf",
        None if grpc => "grpc",
        None => "http/protobuf",
    };
    OtlpSettings {
        protocol: protocol.to_owned(),
        env: otel_env(file),
        resources: otel.map_or_else(Vec::new, |o| {
            o.resources
                .iter()
                .map(|(k, v)| (k.value.clone(), scalar_text(&v.value)))
                .collect()
        }),
    }
}
