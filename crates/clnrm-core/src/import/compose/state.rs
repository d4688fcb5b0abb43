//! One import's state (the variables it reads, what it left behind, the variables it
//! found unset) and what every reader of a section shares: variable lookup, errors and
//! skips named by their path in the file, interpolation of every string, commands as
//! words.

use super::ComposeInput;
use super::interpolate::interpolate;
use super::values::{brief, scalar};
use crate::import::ImportError;
use crate::model::shell::split_words;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;

/// The state of one import.
pub(super) struct Import<'a> {
    pub(super) input: &'a ComposeInput<'a>,
    pub(super) dotenv: Vec<(String, String)>,
    pub(super) skipped: Vec<String>,
    pub(super) unset: BTreeSet<String>,
}

impl Import<'_> {
    pub(super) fn lookup(&self, name: &str) -> Option<String> {
        (self.input.var)(name).or_else(|| {
            self.dotenv
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    pub(super) fn err(&self, path: &str, message: impl Into<String>) -> ImportError {
        ImportError::Value {
            file: self.input.file.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn skip(&mut self, path: &str, v: &Value, why: &str) {
        self.skipped.push(format!("{path}: {} ({why})", brief(v)));
    }

    pub(super) fn interpolate_all(&mut self, v: &mut Value, path: &str) -> Result<(), ImportError> {
        match v {
            Value::String(s) => {
                let mut unset = std::mem::take(&mut self.unset);
                let out = interpolate(s, &|n| self.lookup(n), &mut unset);
                self.unset = unset;
                *s = out.map_err(|m| self.err(path, m.to_string()))?;
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate_all(item, &format!("{path}[{i}]"))?;
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m.iter_mut() {
                    let k = scalar(k).unwrap_or_default();
                    let p = if path.is_empty() {
                        k
                    } else {
                        format!("{path}.{k}")
                    };
                    self.interpolate_all(item, &p)?;
                }
            }
            Value::Tagged(tagged) => self.interpolate_all(&mut tagged.value, path)?,
            _ => {}
        }
        Ok(())
    }

    /// A command: a list, or a string split like a shell's words.
    pub(super) fn words(&self, v: &Value, path: &str) -> Result<Vec<String>, ImportError> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::String(s) => split_words(s)
                .map_err(|e| self.err(path, format!("{:?}: {} at byte {}", s, e.reason, e.offset))),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a string"))
                })
                .collect(),
            _ => Err(self.err(path, "must be a string or a list of strings")),
        }
    }
}
