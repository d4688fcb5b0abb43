//! The variable context of a template, layered by precedence.
//!
//! Highest first: `--var k=v`, `CLNRM_VAR_<k>`, the file's own plain `[vars]`,
//! `[vars]` of `.clnrm/config.toml`, then the built-in defaults. Every variable is
//! reachable as `{{ name }}` and as `{{ vars.name }}`.

use std::collections::BTreeMap;
use tera::Value;

/// The project's test image, built by `scripts/setup.sh`.
pub const DEFAULT_IMAGE: &str = "clnrm/busybox:latest";

/// Built-in defaults, lowest precedence.
pub fn builtin_defaults() -> BTreeMap<String, Value> {
    [
        ("svc", "clnrm"),
        ("env", "ci"),
        ("endpoint", "http://localhost:4318"),
        ("exporter", "stdout"),
        ("image", DEFAULT_IMAGE),
        ("freeze_clock", "2025-01-01T00:00:00Z"),
        ("token", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
    .collect()
}

/// A `--var` that is not `NAME=VALUE` with a variable name; holds the text as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --var \"{0}\"")]
pub struct BadAssignment(pub String);

/// The layers of variables that do not depend on the file.
#[derive(Clone, Debug, Default)]
pub struct VarLayers {
    /// `--var k=v`.
    pub cli: BTreeMap<String, Value>,
    /// `CLNRM_VAR_<k>`.
    pub env: BTreeMap<String, Value>,
    /// `[vars]` of the project config.
    pub config: BTreeMap<String, Value>,
}

impl VarLayers {
    /// A stable text of every layer (sorted JSON), for cache keys: the same variables
    /// give the same text on every machine and clnrm version.
    pub fn canonical(&self) -> String {
        serde_json::json!({"cli": self.cli, "env": self.env, "config": self.config}).to_string()
    }

    /// Reads `CLNRM_VAR_*` from the process environment (none for untrusted projects).
    pub fn from_env() -> BTreeMap<String, Value> {
        if super::untrusted() {
            return BTreeMap::new();
        }
        std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("CLNRM_VAR_")
                    .map(|name| (name.to_owned(), Value::String(v)))
            })
            .filter(|(k, _)| !k.is_empty())
            .collect()
    }

    /// Parses `k=v` assignments; the error holds the offending text.
    pub fn parse_cli(assignments: &[String]) -> Result<BTreeMap<String, Value>, BadAssignment> {
        let mut out = BTreeMap::new();
        for a in assignments {
            match a.split_once('=') {
                Some((k, v)) if is_identifier(k) => {
                    out.insert(k.to_owned(), Value::String(v.to_owned()));
                }
                _ => return Err(BadAssignment(a.clone())),
            }
        }
        Ok(out)
    }

    /// The merged variables for a file whose own plain `[vars]` are `file_vars`.
    pub fn merged(&self, file_vars: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        let mut vars = builtin_defaults();
        for layer in [&self.config, file_vars, &self.env, &self.cli] {
            vars.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        vars
    }

    /// A stable digest of the layers, for change detection.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::json!({ "cli": self.cli, "env": self.env, "config": self.config })
            .to_string();
        super::functions::sha256_hex(text.as_bytes())
    }
}

/// A Tera context with each variable at top level and under `vars`.
pub fn tera_context(vars: &BTreeMap<String, Value>) -> tera::Context {
    let mut ctx = tera::Context::new();
    for (k, v) in vars {
        ctx.insert(k.as_str(), v);
    }
    ctx.insert("vars", vars);
    ctx
}

/// Whether `s` is a variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The plain-TOML part of table `[name]` in a template: lines with no template
/// syntax, parsed as TOML. Lines that use template syntax are left out.
pub fn plain_table(template: &str, name: &str) -> toml::Table {
    let header = format!("[{name}]");
    let mut body = String::new();
    let mut inside = false;
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == header || trimmed.starts_with(&format!("{header} "));
            continue;
        }
        if inside && !trimmed.contains("{{") && !trimmed.contains("{%") && !trimmed.contains("{#") {
            body.push_str(line);
            body.push('\n');
        }
    }
    if body.trim().is_empty() {
        return toml::Table::new();
    }
    toml::from_str(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_beats_env_beats_file_beats_config_beats_builtin() {
        let layers = VarLayers {
            cli: [("a".to_owned(), Value::from("cli"))].into(),
            env: [
                ("a".to_owned(), Value::from("env")),
                ("b".to_owned(), Value::from("env")),
            ]
            .into(),
            config: [
                ("d".to_owned(), Value::from("config")),
                ("svc".to_owned(), Value::from("config")),
            ]
            .into(),
        };
        let file = [
            ("b".to_owned(), Value::from("file")),
            ("c".to_owned(), Value::from("file")),
            ("d".to_owned(), Value::from("file")),
        ]
        .into();
        let vars = layers.merged(&file);
        assert_eq!(vars["a"], "cli");
        assert_eq!(vars["b"], "env");
        assert_eq!(vars["c"], "file");
        assert_eq!(vars["d"], "file");
        assert_eq!(vars["svc"], "config");
        assert_eq!(vars["env"], "ci");
    }

    #[test]
    fn plain_table_skips_templated_lines() {
        let t = "[vars]\nname = \"x\"\nother = \"{{ y }}\"\n[meta]\nname = \"{{ name }}\"\n";
        let table = plain_table(t, "vars");
        assert_eq!(table.get("name").and_then(|v| v.as_str()), Some("x"));
        assert!(table.get("other").is_none());
    }

    #[test]
    fn cli_assignment_must_have_a_name() {
        assert!(VarLayers::parse_cli(&["=x".to_owned()]).is_err());
        assert!(VarLayers::parse_cli(&["noequals".to_owned()]).is_err());
        assert_eq!(
            VarLayers::parse_cli(&["k=a=b".to_owned()])
                .ok()
                .and_then(|m| m.get("k").cloned()),
            Some(Value::from("a=b"))
        );
    }
}
