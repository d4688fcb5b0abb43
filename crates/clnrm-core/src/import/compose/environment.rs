//! A service's environment: `environment` in its map and list forms (a variable with
//! no value read from the host) and its `env_file`s, read and interpolated.

use super::interpolate::interpolate;
use super::paths::absolute;
use super::read::{parse_env_file, read_bounded};
use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::Value;

impl Import<'_> {
    /// `environment`: a map (a null value reads the variable) or a list of
    /// `KEY=VALUE` / `KEY`.
    pub(super) fn environment(
        &mut self,
        v: &Value,
        path: &str,
    ) -> Result<Vec<(String, String)>, ImportError> {
        let mut out = Vec::new();
        let from_host = |imp: &mut Self, k: &str| match imp.lookup(k) {
            Some(v) => Some(v),
            None => {
                imp.skipped.push(format!(
                    "{path}.{k}: taken from the environment, where it is not set"
                ));
                None
            }
        };
        match v {
            Value::Mapping(m) => {
                for (k, val) in m {
                    let k = scalar(k).unwrap_or_default();
                    match val {
                        Value::Null => {
                            if let Some(v) = from_host(self, &k) {
                                out.push((k, v));
                            }
                        }
                        other => {
                            let s = scalar(other).ok_or_else(|| {
                                self.err(&format!("{path}.{k}"), "must be a scalar")
                            })?;
                            out.push((k, s));
                        }
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let s = scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a string"))?;
                    match s.split_once('=') {
                        Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
                        None => {
                            if let Some(v) = from_host(self, &s) {
                                out.push((s, v));
                            }
                        }
                    }
                }
            }
            Value::Null => {}
            _ => return Err(self.err(path, "must be a mapping or a list")),
        }
        Ok(out)
    }

    /// `env_file`: one path, or a list of paths or `{path, required}`.
    pub(super) fn env_files(
        &mut self,
        v: &Value,
        path: &str,
    ) -> Result<Vec<(String, String)>, ImportError> {
        let entries: Vec<(String, bool)> = match v {
            Value::String(s) => vec![(s.clone(), true)],
            Value::Sequence(items) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Mapping(m) => Some((
                        m.get("path").and_then(scalar)?,
                        m.get("required").and_then(Value::as_bool).unwrap_or(true),
                    )),
                    other => scalar(other).map(|s| (s, true)),
                })
                .collect(),
            _ => return Err(self.err(path, "must be a path or a list of paths")),
        };
        let mut out = Vec::new();
        for (file, required) in entries {
            let full = absolute(self.input.dir, &file, self.lookup("HOME"));
            match read_bounded(&full) {
                Ok(text) => {
                    for (k, v, interp) in parse_env_file(&text) {
                        let v = if interp {
                            let mut unset = std::mem::take(&mut self.unset);
                            let r = interpolate(&v, &|n| self.lookup(n), &mut unset);
                            self.unset = unset;
                            r.map_err(|m| self.err(path, format!("{}: {m}", full.display())))?
                        } else {
                            v
                        };
                        out.push((k, v));
                    }
                }
                Err(e) if required => {
                    return Err(self.err(path, format!("cannot read {}: {e}", full.display())));
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }
}
