//! The word sets of enum-valued keys.

use super::reader::Keyword;
use super::{Condition, DevelopAction, Exporter, Protocol, SpanKind, StatusCode};

impl Keyword for Exporter {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("stdout", Exporter::Stdout),
        ("otlp", Exporter::Otlp),
        ("otlp-http", Exporter::OtlpHttp),
        ("otlp-grpc", Exporter::OtlpGrpc),
        ("none", Exporter::None),
    ];
    const DESCRIPTION: &'static str = "`[otel].exporter`.";
    const DOCS: &'static [&'static str] = &[
        "Spans as JSON lines on stdout.",
        "OTLP, protocol from `protocol`.",
        "OTLP over HTTP.",
        "OTLP over gRPC.",
        "No spans.",
    ];
}

impl Keyword for Protocol {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("http/protobuf", Protocol::HttpProtobuf),
        ("http/json", Protocol::HttpJson),
        ("grpc", Protocol::Grpc),
    ];
    const DESCRIPTION: &'static str = "`[otel].protocol`.";
    const DOCS: &'static [&'static str] = &[
        "OTLP/HTTP with protobuf bodies.",
        "OTLP/HTTP with JSON bodies.",
        "OTLP/gRPC.",
    ];
}

impl Keyword for Condition {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("started", Condition::Started),
        ("healthy", Condition::Healthy),
        ("completed", Condition::Completed),
    ];
    const DESCRIPTION: &'static str =
        "How far a dependency must have come before its dependent starts.";
    const DOCS: &'static [&'static str] = &[
        "Its container started.",
        "Its health check passed and its ready span, if any, arrived.",
        "A one-shot: its main process exited 0.",
    ];
}

impl Keyword for DevelopAction {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("sync", DevelopAction::Sync),
        ("sync+restart", DevelopAction::SyncRestart),
        ("rebuild", DevelopAction::Rebuild),
    ];
    const DESCRIPTION: &'static str =
        "What `clnrm watch` does with a change under the rule's `path`.";
    const DOCS: &'static [&'static str] = &[
        "Put the changed files at `target` in the image the next environments start from, without a build.",
        "As `sync`; every environment starts the service's main process with them.",
        "Build the image again.",
    ];
}

/// The schema of a word-valued key, made from the words `validate` reads
/// (`Keyword::WORDS`), each with what it means: one source for both.
fn words_schema<K: Keyword>() -> schemars::Schema {
    schemars::json_schema!({
        "description": K::DESCRIPTION,
        "type": "string",
        "oneOf": word_alternatives::<K>()
    })
}

/// Each word as `{const, description}`.
fn word_alternatives<K: Keyword>() -> Vec<serde_json::Value> {
    K::WORDS
        .iter()
        .enumerate()
        .map(|(i, (w, _))| {
            serde_json::json!({
                "const": w,
                "description": K::DOCS.get(i).copied().unwrap_or_default(),
            })
        })
        .collect()
}

/// `JsonSchema` for keyword types from their words.
macro_rules! words_json_schema {
    ($($ty:ident),*) => {$(
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                words_schema::<Self>()
            }
        }
    )*};
}

words_json_schema!(Exporter, Protocol, Condition, SpanKind, DevelopAction);

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
    const DESCRIPTION: &'static str = "OpenTelemetry span kind.";
    const DOCS: &'static [&'static str] = &[
        "Internal operation.",
        "Server side of a request.",
        "Client side of a request.",
        "Message producer.",
        "Message consumer.",
    ];
}

impl Keyword for StatusCode {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("OK", StatusCode::Ok),
        ("ERROR", StatusCode::Error),
        ("UNSET", StatusCode::Unset),
    ];
    const ANY_CASE: bool = true;
    const DESCRIPTION: &'static str = "Span status code, in any case (`OK`, `ok`, `Error`, …).";
    const DOCS: &'static [&'static str] = &[
        "The operation succeeded.",
        "The operation failed.",
        "No status was set.",
    ];
}

/// The schema of a word-valued key whose words match in any case (as `validate`
/// reads them): the words for editors to offer, and a pattern that accepts every
/// case of them (JSON Schema's regular expressions have no case-insensitive flag).
fn any_case_schema<K: Keyword>(description: &str) -> schemars::Schema {
    let words: Vec<&str> = K::WORDS.iter().map(|(w, _)| *w).collect();
    let exact = word_alternatives::<K>();
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
            { "oneOf": exact },
            { "pattern": format!("^({})$", alternatives.join("|")) }
        ]
    })
}

impl schemars::JsonSchema for StatusCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        any_case_schema::<Self>(Self::DESCRIPTION)
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
