//! A service's `volumes`: bind mounts kept (relative ones relative to the test
//! definition), named and anonymous volumes left behind.

use super::paths::{absolute, relative_to};
use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::Value;

impl Import<'_> {
    /// `volumes`: bind mounts, made absolute; named and anonymous volumes are noted.
    pub(super) fn volumes(
        &mut self,
        v: &Value,
        path: &str,
        tmpfs: &mut Vec<String>,
    ) -> Result<Vec<(String, String, bool)>, ImportError> {
        let Value::Sequence(items) = v else {
            return Err(self.err(path, "must be a list"));
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (kind, source, target, read_only) = match item {
                Value::Mapping(m) => {
                    let kind = m.get("type").and_then(scalar).unwrap_or("volume".into());
                    let ro = m.get("read_only").and_then(Value::as_bool).unwrap_or(false);
                    (
                        kind,
                        m.get("source").and_then(scalar),
                        m.get("target").and_then(scalar).unwrap_or_default(),
                        ro,
                    )
                }
                other => {
                    let s = scalar(other).ok_or_else(|| self.err(&at, "must be a string"))?;
                    let parts: Vec<&str> = s.split(':').collect();
                    let (source, target, mode) = match parts.as_slice() {
                        [t] => (None, (*t).to_owned(), ""),
                        [s, t] => (Some((*s).to_owned()), (*t).to_owned(), ""),
                        [s, t, m] => (Some((*s).to_owned()), (*t).to_owned(), *m),
                        _ => {
                            return Err(self.err(&at, format!("{s:?} is not SOURCE:TARGET[:MODE]")));
                        }
                    };
                    let is_path = source
                        .as_deref()
                        .is_some_and(|s| s.starts_with(['/', '.', '~']));
                    let kind = if is_path { "bind" } else { "volume" };
                    let ro = mode.split(',').any(|m| m == "ro");
                    (kind.to_owned(), source, target, ro)
                }
            };
            if !target.starts_with('/') {
                return Err(self.err(
                    &at,
                    format!("the container path {target:?} must be absolute"),
                ));
            }
            match (kind.as_str(), source) {
                ("bind", Some(src)) => {
                    let host = absolute(self.input.dir, &src, self.lookup("HOME"));
                    let host = if src.starts_with('.') {
                        relative_to(&host, self.input.out_dir)
                    } else {
                        host.to_string_lossy().into_owned()
                    };
                    out.push((host, target, read_only));
                }
                ("tmpfs", _) => {
                    // The long form's size and mode, as mount options; `read_only`.
                    let mut options: Vec<String> = Vec::new();
                    if let Some(Value::Mapping(m)) = item.get("tmpfs") {
                        if let Some(size) = m.get("size").and_then(scalar) {
                            options.push(format!("size={size}"));
                        }
                        if let Some(mode) = m.get("mode").and_then(tmpfs_mode) {
                            options.push(format!("mode={mode}"));
                        }
                    }
                    if read_only {
                        options.push("ro".into());
                    }
                    let options = options.join(",");
                    tmpfs.push(if options.is_empty() {
                        target
                    } else {
                        format!("{target}:{options}")
                    });
                }
                ("volume", Some(_)) => self.skip(
                    &at,
                    item,
                    "a named volume: each scenario starts with fresh data",
                ),
                _ => self.skip(&at, item, "each scenario's containers start afresh anyway"),
            }
        }
        Ok(out)
    }
}

/// A tmpfs `mode` as octal digits. Compose takes the YAML number as the mode itself
/// (`0o1777` is 1023, the sticky world-writable mode), so it is written in octal
/// (`1777`); a decimal `1777` is the mode 0o3361 there and here alike.
fn tmpfs_mode(v: &Value) -> Option<String> {
    v.as_u64().map(|n| format!("{n:o}"))
}
