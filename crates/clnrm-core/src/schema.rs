//! The JSON Schema of the test-definition format, generated from the model types.
//! `schemas/clnrm.schema.json` is the checked-in copy that editors use; a test fails
//! when it is stale (regenerate with `CLNRM_BLESS=1 cargo nextest run`).

use crate::model::TestFile;

/// The schema as pretty JSON with a trailing newline.
pub fn test_file_schema() -> String {
    let mut schema = serde_json::Value::from(schemars::schema_for!(TestFile));
    drop_null_alternatives(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
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

    #[test]
    fn checked_in_schema_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/clnrm.schema.json");
        let fresh = test_file_schema();
        if std::env::var_os("CLNRM_BLESS").is_some() {
            std::fs::write(&path, &fresh)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            stored == fresh,
            "schemas/clnrm.schema.json is stale; run `CLNRM_BLESS=1 cargo nextest run -p clnrm-core schema`"
        );
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
