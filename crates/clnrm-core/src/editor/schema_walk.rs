//! The JSON Schema of the format, looked up by a TOML path: the schema of the value
//! at a path, the table it is, a key's description and the words a value may be.

use crate::schema::{resolve, test_file_schema};
use serde_json::Value;
use std::sync::LazyLock;

pub(super) static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(&test_file_schema()).unwrap_or_default());

/// The schema of the value at `path`, from the root; an array stands for its items
/// when a further segment (or the end) needs a table.
pub(super) fn node<'a>(path: &[String]) -> Option<&'a Value> {
    let root = &*SCHEMA;
    let mut v = resolve(root, root);
    for seg in path {
        v = child(root, v, seg)?;
    }
    Some(v)
}

fn child<'a>(root: &'a Value, v: &'a Value, seg: &str) -> Option<&'a Value> {
    let v = table_of(root, v)?;
    if let Some(p) = v.get("properties").and_then(|p| p.get(seg)) {
        return Some(p);
    }
    v.get("additionalProperties").filter(|a| a.is_object())
}

/// `v` as a table: itself, its items, or the alternative that is one.
pub(super) fn table_of<'a>(root: &'a Value, v: &'a Value) -> Option<&'a Value> {
    let v = resolve(root, v);
    if v.get("properties").is_some() || v.get("additionalProperties").is_some_and(Value::is_object)
    {
        return Some(v);
    }
    if let Some(items) = v.get("items") {
        return table_of(root, items);
    }
    v.get("anyOf")
        .or_else(|| v.get("oneOf"))
        .and_then(Value::as_array)?
        .iter()
        .find_map(|alt| table_of(root, alt))
}

pub(super) fn description(root: &Value, p: &Value) -> String {
    p.get("description")
        .or_else(|| resolve(root, p).get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The words a value may be (enums, booleans), quoted as TOML.
pub(super) fn value_words(root: &Value, v: &Value) -> Vec<String> {
    let v = resolve(root, v);
    if let Some(words) = v.get("enum").and_then(Value::as_array) {
        return words
            .iter()
            .filter_map(Value::as_str)
            .map(|w| format!("\"{w}\""))
            .collect();
    }
    if let Some(alts) = v
        .get("oneOf")
        .or_else(|| v.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut out: Vec<String> = Vec::new();
        for alt in alts {
            if let Some(w) = alt.get("const").and_then(Value::as_str) {
                out.push(format!("\"{w}\""));
            } else {
                for w in value_words(root, alt) {
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
            }
        }
        return out;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("boolean") => vec!["true".into(), "false".into()],
        Some("array") => v
            .get("items")
            .map(|i| value_words(root, i))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::context::segments;
    use crate::schema::table_headers;

    /// The validator's keys of every table are the schema's: for each table header the
    /// schema has, a file with an unknown key there gets "known keys here: …", which
    /// must list exactly the table's properties.
    #[test]
    fn every_table_has_the_same_keys_in_the_validator_and_the_schema() {
        let root = &*SCHEMA;
        let mut checked = 0;
        for header in table_headers(root) {
            let many = header.starts_with("[[");
            let path_text = header.trim_matches(['[', ']']).replace("<id>", "x");
            let segs = segments(&path_text);
            let Some(table) = node(&segs).and_then(|v| table_of(root, v)) else {
                panic!("{header}: not in the schema");
            };
            let mut want: Vec<String> = table
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            want.sort();
            // The required keys, so that each table is read to its end.
            // (`except`: the table under test, written as a header of its own.)
            let required = |table: &Value, except: &str| {
                let mut body = String::new();
                for key in table
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|k| *k != except)
                {
                    let p = &table["properties"][key];
                    let value = match resolve(root, p).get("type").and_then(Value::as_str) {
                        Some("integer" | "number") => "1",
                        Some("boolean") => "true",
                        Some("array") => "[\"true\"]",
                        Some("object") => "{}",
                        _ => "\"x\"",
                    };
                    body.push_str(&format!("{key} = {value}\n"));
                }
                body
            };
            // Arrays of tables on the way get an element first (`[[expect.span]]`
            // before `[expect.span.attrs]`).
            let mut parents = String::new();
            for i in 1..segs.len() {
                let prefix = &segs[..i];
                let is_array = node(prefix)
                    .map(|v| resolve(root, v))
                    .is_some_and(|v| v.get("items").is_some());
                if is_array && prefix != ["scenario"] {
                    let item = node(prefix).and_then(|v| table_of(root, v));
                    parents.push_str(&format!(
                        "[[{}]]\n{}",
                        prefix.join("."),
                        item.map(|t| required(t, &segs[i])).unwrap_or_default()
                    ));
                }
            }
            let body = required(table, "");
            let open = if many { "[[" } else { "[" };
            let close = if many { "]]" } else { "]" };
            // The rest of a valid file, less the table under test.
            let base: String = [
                ("meta", "[meta]\nname = \"t\"\nversion = \"1\"\n"),
                ("service.x", "[service.x]\nimage = \"i\"\n"),
                ("scenario", "[[scenario]]\nname = \"x\"\nrun = \"true\"\n"),
            ]
            .iter()
            .filter(|(table, _)| *table != path_text)
            .map(|(_, text)| *text)
            .collect();
            let text =
                format!("{base}\n{parents}{open}{path_text}{close}\n{body}zzzzzzzzzzzz = 1\n");
            let src = crate::diag::Source::file("t.clnrm.toml", text.clone());
            let (_, diags) = crate::model::parse_test_file(&src);
            let Some(help) = diags
                .into_sorted()
                .into_iter()
                .find(|d| d.message.contains("zzzzzzzzzzzz"))
                .and_then(|d| d.help)
            else {
                // A table of free keys ([vars], env, attrs.all, …) takes any key; so
                // does one that may also be written as such a table (`attrs`, whose
                // keys may be attributes directly).
                let free_form = node(&segs)
                    .and_then(|v| v.get("anyOf"))
                    .and_then(Value::as_array)
                    .is_some_and(|alts| {
                        alts.iter().any(|a| {
                            a.get("properties").is_none()
                                && a.get("additionalProperties").is_some_and(Value::is_object)
                        })
                    });
                assert!(
                    want.is_empty() || free_form,
                    "{header}: no unknown-key warning\n{text}"
                );
                continue;
            };
            let mut got: Vec<String> = help
                .strip_prefix("known keys here: ")
                .unwrap_or_else(|| panic!("{header}: {help}"))
                .split(", ")
                .map(str::to_owned)
                .collect();
            got.sort();
            assert_eq!(
                got, want,
                "{header}: the validator's keys, then the schema's"
            );
            checked += 1;
        }
        assert!(checked >= 25, "{checked} tables");
    }
}
