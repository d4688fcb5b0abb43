//! The JSON Schema of the test-definition format, generated from the model types.
//! `schemas/clnrm.schema.json` is the checked-in copy that editors use; a test fails
//! when it is stale (regenerate with `CLNRM_BLESS=1 cargo nextest run`).

use crate::model::TestFile;
use serde_json::Value;

/// The schema as pretty JSON with a trailing newline.
pub fn test_file_schema() -> String {
    let mut schema = serde_json::Value::from(schemars::schema_for!(TestFile));
    drop_null_alternatives(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The key reference (`docs/keys.md`): every table of the format with its keys, their
/// types and descriptions, generated from the schema so that it cannot drift.
pub fn key_reference() -> String {
    let schema: Value = serde_json::from_str(&test_file_schema()).unwrap_or_default();
    let mut out = String::from(
        "# Keys of a test definition\n\nGenerated from `schemas/clnrm.schema.json` (itself generated from the model); \
         a test fails when this page is stale. `<id>` is a name you choose. Types: \
         `string`, `integer`, `number`, `boolean`, a word from a list, `[T]` an array, \
         `{ <key> = T }` a table of your keys.\n",
    );
    let mut tables = Vec::new();
    collect_tables(&schema, &schema, "", false, &mut Vec::new(), &mut tables);
    // The order a file is usually written in, not the alphabet.
    const ORDER: [&str; 9] = [
        "meta",
        "service",
        "scenario",
        "otel",
        "expect",
        "limits",
        "report",
        "determinism",
        "vars",
    ];
    tables.sort_by_key(|(header, _)| {
        let first = header
            .trim_start_matches('[')
            .split(['.', ']'])
            .next()
            .unwrap_or_default();
        ORDER
            .iter()
            .position(|o| *o == first)
            .unwrap_or(ORDER.len())
    });
    for (header, rows) in tables {
        out.push_str(&format!(
            "\n## `{header}`\n\n| key | type | |\n|---|---|---|\n"
        ));
        for (key, ty, required, doc) in rows {
            let req = if required { " (required)" } else { "" };
            out.push_str(&format!(
                "| `{key}`{req} | {ty} | {} |\n",
                doc.replace('\n', " ").replace('|', "\\|")
            ));
        }
    }
    out
}

type Row = (String, String, bool, String);

/// Every table header of the format (`[meta]`, `[service.<id>]`, `[[scenario.steps]]`,
/// …) with the description of its table.
pub fn table_headers(schema: &Value) -> Vec<String> {
    let mut tables = Vec::new();
    collect_tables(schema, schema, "", false, &mut Vec::new(), &mut tables);
    tables
        .into_iter()
        .map(|(h, _)| h)
        .filter(|h| h.starts_with('['))
        .collect()
}

/// `v`, or the definition its `$ref` names.
pub fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(v),
        None => v,
    }
}

/// A table's rows, then the tables under it. `path` is the dotted path of `v`;
/// `many` says it is an array of tables. A definition met again under itself (a
/// selector's `parent` is a selector) is listed once: `within` holds the definitions
/// on the way.
fn collect_tables<'a>(
    root: &'a Value,
    v: &'a Value,
    path: &str,
    many: bool,
    within: &mut Vec<&'a str>,
    out: &mut Vec<(String, Vec<Row>)>,
) {
    let reference = v.get("$ref").and_then(Value::as_str);
    if reference.is_some_and(|r| within.contains(&r)) {
        return;
    }
    let v = resolve(root, v);
    let Some(props) = v.get("properties").and_then(Value::as_object) else {
        return;
    };
    within.extend(reference);
    let required: Vec<&str> = v
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let header = match (path.is_empty(), many) {
        (true, _) => "(top level)".to_owned(),
        (false, true) => format!("[[{path}]]"),
        (false, false) => format!("[{path}]"),
    };
    let mut rows = Vec::new();
    let mut nested = Vec::new();
    for (key, p) in props {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let doc = p
            .get("description")
            .or_else(|| resolve(root, p).get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let target = resolve(root, p);
        if target.get("properties").is_some() {
            nested.push((child, p, false));
            continue;
        }
        if let Some(items) = p
            .get("items")
            .filter(|i| resolve(root, i).get("properties").is_some())
        {
            nested.push((child, items, true));
            continue;
        }
        if let Some(values) = p
            .get("additionalProperties")
            .filter(|a| resolve(root, a).get("properties").is_some())
        {
            nested.push((format!("{child}.<id>"), values, false));
            continue;
        }
        // A value that is a table or a shorthand (`build = "./app"`): a row, and the
        // table's own section.
        if let Some(table) = p.get("anyOf").and_then(Value::as_array).and_then(|alts| {
            alts.iter()
                .find(|a| resolve(root, a).get("properties").is_some())
        }) {
            nested.push((child.clone(), table, false));
        }
        rows.push((
            key.clone(),
            type_of(root, p),
            required.contains(&key.as_str()),
            doc,
        ));
    }
    if !rows.is_empty() {
        out.push((header, rows));
    }
    for (child, p, many) in nested {
        collect_tables(root, p, &child, many, within, out);
    }
    if reference.is_some() {
        within.pop();
    }
}

/// A value's type in the reference's words.
pub fn type_of(root: &Value, v: &Value) -> String {
    let v = resolve(root, v);
    if let Some(alts) = v
        .get("oneOf")
        .or_else(|| v.get("enum"))
        .and_then(Value::as_array)
    {
        let words: Vec<String> = alts
            .iter()
            .filter_map(|a| a.get("const").or(Some(a)).and_then(Value::as_str))
            .map(|w| format!("`\"{w}\"`"))
            .collect();
        if !words.is_empty() {
            return format!("one of {}", words.join(", "));
        }
    }
    if let Some(alts) = v.get("anyOf").and_then(Value::as_array) {
        // Words and a pattern of the same words in every case (`keywords.rs`).
        if alts.len() == 2 && alts[1].get("pattern").is_some() && alts[0].get("oneOf").is_some() {
            return format!("{}, in any case", type_of(root, &alts[0]));
        }
        let kinds: Vec<String> = alts.iter().map(|a| type_of(root, a)).collect();
        return kinds.join(" or ");
    }
    match v.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "[{}]",
            v.get("items")
                .map_or("any".to_owned(), |i| type_of(root, i))
        ),
        Some("object") => match v.get("additionalProperties") {
            Some(a) if a.is_object() => format!("{{ <key> = {} }}", type_of(root, a)),
            _ => "table".to_owned(),
        },
        Some("integer") => match v.get("minimum").and_then(Value::as_f64) {
            Some(m) if m > 0.0 => format!("integer ≥ {m}"),
            _ => "integer".to_owned(),
        },
        Some(t) => t.to_owned(),
        None => "any".to_owned(),
    }
}

/// TOML has no null (an absent key is how a value is left out), so the
/// `anyOf: [T, {"type": "null"}]` that `Option<T>` produces becomes plain `T`.
fn drop_null_alternatives(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(alts)) = map.get("anyOf") {
                let non_null: Vec<_> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&"null".into()))
                    .cloned()
                    .collect();
                if non_null.len() == 1 && alts.len() == 2 {
                    map.remove("anyOf");
                    if let serde_json::Value::Object(inner) = &non_null[0] {
                        for (k, val) in inner {
                            map.entry(k.clone()).or_insert_with(|| val.clone());
                        }
                    }
                }
            }
            if let Some(serde_json::Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            map.values_mut().for_each(drop_null_alternatives);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_alternatives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts the checked-in `path` holds `fresh`; with `CLNRM_BLESS` set, writes it.
    fn assert_fresh(path: &std::path::Path, fresh: &str) {
        if std::env::var_os("CLNRM_BLESS").is_some() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, fresh).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == fresh,
            "{} is stale; run `CLNRM_BLESS=1 cargo nextest run -p clnrm-core schema`",
            path.display()
        );
    }

    #[test]
    fn checked_in_schema_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/clnrm.schema.json");
        assert_fresh(&path, &test_file_schema());
    }

    #[test]
    fn checked_in_key_reference_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/keys.md");
        let fresh = key_reference();
        assert_fresh(&path, &fresh);
        for heading in [
            "## `[meta]`",
            "## `[service.<id>]`",
            "## `[[scenario]]`",
            "## `[[expect.log]]`",
            "## `[[scenario.expect.span]]`",
        ] {
            assert!(fresh.contains(heading), "{heading} missing");
        }
        assert!(fresh.contains("| `depends_on` |"));
    }

    #[test]
    fn schema_names_the_toml_keys() {
        let schema: serde_json::Value =
            serde_json::from_str(&test_file_schema()).unwrap_or_default();
        let props = &schema["properties"];
        for key in [
            "meta",
            "service",
            "scenario",
            "expect",
            "otel",
            "limits",
            "report",
            "vars",
            "determinism",
        ] {
            assert!(props.get(key).is_some(), "missing {key}");
        }
        assert_eq!(schema["required"], serde_json::json!(["meta", "scenario"]));
    }
}
