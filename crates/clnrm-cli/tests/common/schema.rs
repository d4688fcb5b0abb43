//! The project's JSON Schema, loaded into a maintained validator (the `jsonschema`
//! crate), and its complaints about a TOML text.
#![allow(dead_code, reason = "each test binary uses a part")]

use serde_json::Value;
use std::path::Path;

/// A validator of `schemas/clnrm.schema.json`.
pub fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/clnrm.schema.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("the schema: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema itself: {e}"))
}

/// The schema's complaints about a rendered file's text.
pub fn schema_errors(v: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let doc: toml::Table = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_value(&doc).unwrap_or_else(|e| panic!("{e}"));
    v.iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
