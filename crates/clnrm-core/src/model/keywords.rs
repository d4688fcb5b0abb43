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

/// The schema of a word-valued key whose words match in any case (as `validate`
/// reads them): the words for editors to offer, and a pattern that accepts every
/// case of them (JSON Schema's regular expressions have no case-insensitive flag).
fn any_case_schema<K: Keyword>(description: &str) -> schemars::Schema {
    let words: Vec<&str> = K::WORDS.iter().map(|(w, _)| *w).collect();
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        regex::escape(&c.to_string())
                    }
                })
                .collect()
        })
        .collect();
    schemars::json_schema!({
        "description": description,
        "type": "string",
        "anyOf": [
            { "enum": words },
            { "pattern": format!("^({})$", alternatives.join("|")) }
        ]
    })
}

impl schemars::JsonSchema for StatusCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        any_case_schema::<Self>("Span status code, in any case (`OK`, `ok`, `Error`, …).")
    }
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
