//! The word sets of enum-valued keys.

use super::reader::Keyword;
use super::{Condition, Exporter, Protocol, SpanKind, StatusCode};

impl Keyword for Exporter {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("stdout", Exporter::Stdout),
        ("otlp", Exporter::Otlp),
        ("otlp-http", Exporter::OtlpHttp),
        ("otlp-grpc", Exporter::OtlpGrpc),
        ("none", Exporter::None),
    ];
}

impl Keyword for Protocol {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("http/protobuf", Protocol::HttpProtobuf),
        ("http/json", Protocol::HttpJson),
        ("grpc", Protocol::Grpc),
    ];
}

impl Keyword for Condition {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("started", Condition::Started),
        ("healthy", Condition::Healthy),
        ("completed", Condition::Completed),
    ];
}

impl Condition {
    /// The word.
    pub fn as_str(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("started", |(w, _)| w)
    }
}

impl Keyword for SpanKind {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("internal", SpanKind::Internal),
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
    ];
}

impl Keyword for StatusCode {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("OK", StatusCode::Ok),
        ("ERROR", StatusCode::Error),
        ("UNSET", StatusCode::Unset),
    ];
    const ANY_CASE: bool = true;
}

impl SpanKind {
    /// The lower-case word.
    pub fn as_str(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("internal", |(w, _)| w)
    }
}

impl StatusCode {
    /// The upper-case word.
    pub fn as_str(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("UNSET", |(w, _)| w)
    }
}
