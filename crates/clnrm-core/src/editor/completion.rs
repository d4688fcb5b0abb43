//! Completions at a position: the keys of the table it is in (less those written),
//! table headers (with the file's service ids), and values: the words the schema
//! allows, and service ids where a value names a service.

use super::context::{context_at, floor_boundary, header_of, is_key_char, line_start};
use super::schema_walk::{SCHEMA, description, node, table_of, value_words};
use super::services::{names_service, service_ids};
use crate::diag::Span;
use crate::schema::{table_headers, type_of};
use serde_json::Value;
use std::sync::LazyLock;

/// Every table header of the format, found once.
static HEADERS: LazyLock<Vec<String>> = LazyLock::new(|| table_headers(&SCHEMA));

/// What a completion adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    /// A key of the table at the position.
    Key,
    /// A table header.
    Table,
    /// A value from a fixed set (a word, a boolean).
    Value,
    /// A service id of this file.
    Service,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What the list shows.
    pub label: String,
    /// The text that replaces `replace`.
    pub insert: String,
    /// The bytes the completion replaces (what has been typed of it).
    pub replace: Span,
    /// The type, in the key reference's words.
    pub detail: String,
    /// The description from the schema.
    pub doc: String,
    /// What it is.
    pub kind: CompletionKind,
}

/// The keys already written in the table a position is in (its header's lines).
fn written_keys(text: &str, offset: usize) -> Vec<String> {
    let start = line_start(text, offset);
    let mut keys = Vec::new();
    let lines_before = text[..start].lines().rev();
    let lines_after = text[start..].lines().skip(1);
    for line in lines_before.take_while(|l| header_of(l).is_none()) {
        keys.extend(line_key(line));
    }
    for line in lines_after.take_while(|l| header_of(l).is_none()) {
        keys.extend(line_key(line));
    }
    keys
}

fn line_key(line: &str) -> Option<String> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && k.chars().all(|c| is_key_char(c) || c == '.'))
        .then(|| k.split('.').next().unwrap_or(k).to_owned())
}

/// The completions at `offset`.
pub fn completions(text: &str, offset: usize) -> Vec<Completion> {
    completions_with(text, offset, &[])
}

/// The completions at `offset`, offering `services` (ids a template's includes
/// define, say) besides the ids of the `[service.<id>]` tables in `text`.
pub fn completions_with(text: &str, offset: usize, services: &[String]) -> Vec<Completion> {
    let root = &*SCHEMA;
    let offset = floor_boundary(text, offset.min(text.len()));
    let ctx = context_at(text, offset);
    if let Some(typed) = ctx.header {
        let line_end = text[offset..].find('\n').map_or(text.len(), |n| offset + n);
        let replace = Span::new(typed.start, line_end);
        let mut headers = HEADERS.clone();
        // `[service.<id>…]` for each service already defined, too.
        for id in service_ids(text) {
            let extra: Vec<String> = headers
                .iter()
                .filter(|h| h.contains("service.<id>"))
                .map(|h| h.replace("<id>", &crate::import::toml_text::key(&id)))
                .collect();
            headers.extend(extra);
        }
        return headers
            .into_iter()
            .map(|h| Completion {
                label: h.clone(),
                insert: h.replace("<id>", "id"),
                replace,
                detail: "table".into(),
                doc: String::new(),
                kind: CompletionKind::Table,
            })
            .collect();
    }
    if ctx.string.is_some() && ctx.value_of.is_none() {
        return Vec::new();
    }
    if let Some((dotted, replace)) = &ctx.key {
        let mut path = ctx.path.clone();
        path.extend(dotted.iter().cloned());
        let Some(table) = node(&path).and_then(|v| table_of(root, v)) else {
            return Vec::new();
        };
        let Some(props) = table.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        let written = if dotted.is_empty() && !ctx.path.is_empty() {
            written_keys(text, offset)
        } else {
            Vec::new()
        };
        return props
            .iter()
            .filter(|(k, _)| !written.contains(k))
            .map(|(k, p)| Completion {
                label: k.clone(),
                insert: k.clone(),
                replace: *replace,
                detail: type_of(root, p),
                doc: description(root, p),
                kind: CompletionKind::Key,
            })
            .collect();
    }
    let Some(key) = &ctx.value_of else {
        return Vec::new();
    };
    let replace = match ctx.string {
        // The whole string, quotes included: the completion brings its own.
        Some(s) => Span::new(s.start, s.end.max(offset)),
        None => {
            let typed = text[..offset]
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            Span::new(offset - typed, offset)
        }
    };
    let mut out = Vec::new();
    if names_service(&ctx.path, key) {
        let mut ids = service_ids(text);
        for id in services {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        for id in ids {
            out.push(Completion {
                label: id.clone(),
                insert: format!("\"{id}\""),
                replace,
                detail: "service".into(),
                doc: String::new(),
                kind: CompletionKind::Service,
            });
        }
    }
    let mut path = ctx.path.clone();
    path.extend(key.iter().cloned());
    if let Some(v) = node(&path) {
        for w in value_words(root, v) {
            out.push(Completion {
                label: w.trim_matches('"').to_owned(),
                insert: w,
                replace,
                detail: type_of(root, v),
                doc: description(root, v),
                kind: CompletionKind::Value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::tests::{HEAD, at};

    fn labels(marked: &str) -> Vec<String> {
        let (text, i) = at(marked);
        completions(&text, i).into_iter().map(|c| c.label).collect()
    }

    #[test]
    fn keys_complete_by_table_without_those_written() {
        let got = labels(&format!("{HEAD}[[scenario]]\nname = \"s\"\nse|"));
        for k in ["service", "services", "steps", "timeout_ms", "tags"] {
            assert!(got.contains(&k.to_owned()), "{k}: {got:?}");
        }
        assert!(!got.contains(&"name".to_owned()), "written: {got:?}");
        assert!(!got.contains(&"image".to_owned()));
        let got = labels(&format!("{HEAD}[service.web]\n|"));
        assert!(
            got.contains(&"depends_on".to_owned()) && got.contains(&"image".to_owned()),
            "{got:?}"
        );
        // In an inline table, and in a dotted key.
        let got = labels(&format!(
            "{HEAD}[service.web]\nhealth_check = {{ cmd = [\"true\"], |"
        ));
        assert!(got.contains(&"interval_ms".to_owned()), "{got:?}");
        assert!(!got.contains(&"image".to_owned()), "{got:?}");
        let got = labels(&format!(
            "{HEAD}[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nhttp.|"
        ));
        assert!(
            got.contains(&"method".to_owned()) && got.contains(&"url".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario.expect.span]]\nattrs = {{ a|"));
        assert!(
            got.contains(&"all".to_owned()) && got.contains(&"any".to_owned()),
            "{got:?}"
        );
    }

    #[test]
    fn selector_keys_and_predicates_complete() {
        // The selector's keys beside count/absent/each; per_span's own.
        let got = labels(&format!("{HEAD}[[expect.span]]\nname = \"a\"\n|"));
        for k in [
            "service", "ancestor", "links", "count", "absent", "each", "status",
        ] {
            assert!(got.contains(&k.to_owned()), "{k}: {got:?}");
        }
        let got = labels(&format!("{HEAD}[[expect.per_span]]\n|"));
        for k in ["of", "descendants", "count"] {
            assert!(got.contains(&k.to_owned()), "{k}: {got:?}");
        }
        // A selector written as a table, nested.
        let got = labels(&format!("{HEAD}[[expect.span]]\nparent = {{ an| }}\n"));
        assert!(got.contains(&"ancestor".to_owned()), "{got:?}");
    }

    #[test]
    fn values_complete_from_enums_and_service_ids() {
        let got = labels(&format!("{HEAD}[otel]\nexporter = |"));
        assert!(
            got.contains(&"otlp".to_owned()) && got.contains(&"stdout".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario.expect.span]]\nkind = \"se|\""));
        assert!(got.contains(&"server".to_owned()), "{got:?}");
        let (text, i) = at(&format!(
            "{HEAD}[[scenario]]\nname = \"s\"\nservice = \"a|\"\n"
        ));
        let got = completions(&text, i);
        let names: Vec<&str> = got.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(names, ["db", "app"]);
        assert_eq!(&text[got[0].replace.start..got[0].replace.end], "\"a\"");
        // An unclosed string at the line's end: the whole of it is replaced.
        let (text, i) = at(&format!(
            "{HEAD}[[scenario]]\nservice = \"d|\nname = \"s\"\n"
        ));
        let got = completions(&text, i);
        assert_eq!(&text[got[0].replace.start..got[0].replace.end], "\"d");
        let got = labels(&format!("{HEAD}[[scenario]]\nservices = [\"db\", |]"));
        assert_eq!(got, ["db", "app"]);
        let got = labels(&format!("{HEAD}[service.web]\ndepends_on = {{ db = |"));
        assert!(
            got.contains(&"healthy".to_owned()) && got.contains(&"completed".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario]]\nconcurrent = |"));
        assert_eq!(got, ["true", "false"]);
    }

    #[test]
    fn headers_complete_with_the_services_ids() {
        let (text, i) = at(&format!("{HEAD}[[scen|"));
        let got = completions(&text, i);
        let steps = got
            .iter()
            .find(|c| c.label == "[[scenario.steps]]")
            .unwrap_or_else(|| panic!("{got:?}"));
        assert_eq!(&text[steps.replace.start..steps.replace.end], "[[scen");
        assert!(
            got.iter().any(|c| c.label == "[[service.db.setup]]"),
            "{got:?}"
        );
    }
}
