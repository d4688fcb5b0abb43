//! Reading a [`TestFile`] out of TOML text: syntax errors, the choice between the
//! current and the legacy layout, the root of the current layout (with `[meta]`), and
//! the content its cache keys hash. The parts of the file are read in sibling modules.

use super::common::read_common;
use super::legacy::read_legacy;
use super::scenario::read_scenario;
use super::service::read_services;
use crate::diag::{Code, Diagnostic, Diagnostics, Source, Span};
use crate::model::reader::{self, Reader, Table};
use crate::model::{Content, Meta, Scenario, TestFile};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Parses TOML text into a spanned tree, reporting every syntax error.
pub fn parse_document<'i>(
    src: &Arc<Source>,
    text: &'i str,
    diags: &mut Diagnostics,
) -> Option<Spanned<DeTable<'i>>> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Some(doc);
    }
    for e in errors {
        let span: Span = e.span().map(Span::from).unwrap_or_default();
        let message = e.message().trim_end().to_owned();
        let first = message.lines().next().unwrap_or("invalid TOML").to_owned();
        diags.push(
            Diagnostic::error(Code::TomlSyntax, format!("invalid TOML: {first}"))
                .at(src, span, first),
        );
    }
    None
}

/// Parses and reads a test definition; `None` when it cannot be read at all.
pub fn parse_test_file(src: &Arc<Source>) -> (Option<TestFile>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let text = src.text();
    let Some(doc) = parse_document(src, text, &mut diags) else {
        return (None, diags);
    };
    if doc.get_ref().is_empty() {
        let d = Diagnostic::error(Code::EmptyFile, "test definition is empty")
            .at(src, Span::new(0, 0), "no tables or keys here")
            .help("a test needs a [meta] table with `name` and `version`, and at least one [[scenario]]");
        diags.push(d);
        return (None, diags);
    }
    let mut r = Reader {
        src,
        diags: &mut diags,
    };
    let root = Table::new(doc.get_ref(), Span::new(0, 0), "");
    let legacy = is_legacy(doc.get_ref());
    let file = if legacy {
        read_legacy(&mut r, root)
    } else {
        read_v06(&mut r, root)
    };
    let file = file.map(|f| TestFile {
        content: content(doc.get_ref(), legacy),
        ..f
    });
    (file, diags)
}

/// The JSON of the tables that decide outcomes (see [`Content`]).
fn content(doc: &DeTable<'_>, legacy: bool) -> Content {
    let json = |v: &toml::Value| serde_json::to_string(v).unwrap_or_else(|e| format!("!{e}"));
    let part = |key: &str| {
        doc.get(key)
            .map_or(String::new(), |v| json(&reader::to_toml_value(v.get_ref())))
    };
    let scenarios = if legacy {
        vec![json(&reader::to_toml_table(doc))]
    } else {
        match doc.get("scenario").map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items
                .iter()
                .map(|i| json(&reader::to_toml_value(i.get_ref())))
                .collect(),
            _ => Vec::new(),
        }
    };
    Content {
        shared: [
            part("service"),
            part("limits"),
            part("otel"),
            part("expect"),
        ],
        scenarios,
    }
}

fn is_legacy(doc: &DeTable<'_>) -> bool {
    !doc.contains_key("meta")
        && (doc.contains_key("test") || doc.contains_key("services") || doc.contains_key("steps"))
}

fn read_v06(r: &mut Reader<'_>, mut root: Table<'_, '_>) -> Option<TestFile> {
    let meta = match root.table(r, "meta") {
        Some(t) => read_meta(r, t),
        None => {
            if !root.has("meta") {
                r.push(
                    Diagnostic::error(Code::MissingKey, "missing required table [meta]")
                        .at(r.src, Span::new(0, 0), "expected [meta] in this file")
                        .help("add:\n[meta]\nname = \"my-test\"\nversion = \"1.0\""),
                );
            }
            None
        }
    };
    let scenario_tables = root.tables(r, "scenario");
    if scenario_tables.is_empty() && !root.has("scenario") {
        r.push(
            Diagnostic::error(Code::NoScenario, "the file defines no scenario")
                .at(r.src, Span::new(0, 0), "expected at least one [[scenario]]")
                .help("add:\n[[scenario]]\nname = \"smoke\"\nrun = \"echo ok\""),
        );
    }
    let scenarios: Vec<Scenario> = scenario_tables
        .into_iter()
        .filter_map(|t| read_scenario(r, t))
        .collect();
    let services = read_services(r, &mut root, "service", "plugin");
    let rest = read_common(r, &mut root);
    root.finish(r);
    // A broken [meta] is already reported; keep reading so every other rule still runs.
    Some(TestFile {
        meta: meta.unwrap_or(rest.meta.clone()),
        scenarios,
        services,
        legacy: false,
        ..rest
    })
}

fn read_meta(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Meta> {
    let name = t.req(r, "name", "\"my-test\"");
    let version = t.req(r, "version", "\"1.0\"");
    let description = t.get(r, "description");
    t.finish(r);
    Some(Meta {
        name: name?,
        version: version?,
        description,
    })
}
