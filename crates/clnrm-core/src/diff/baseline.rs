//! Baselines: `.clnrm/trace.json` (or `diff.baseline_path`), one normalised span tree
//! per scenario id, in stable pretty JSON (sorted keys, canonical child order) so that
//! version-control diffs stay clean, written atomically.

use super::tree::SpanTree;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The value of `format` in a baseline file.
pub const FORMAT: &str = "clnrm.baseline.v1";

/// A baseline file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`FORMAT`].
    pub format: String,
    /// Scenario id → its tree.
    pub scenarios: BTreeMap<String, SpanTree>,
}

/// Why a baseline could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Not a baseline.
    #[error(
        "{path}: not a clnrm baseline ({reason}); fix it or record a new one with --update-baseline"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Baseline {
    /// Reads `path`; a missing file is an empty baseline.
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    format: FORMAT.into(),
                    scenarios: BTreeMap::new(),
                });
            }
            Err(source) => {
                return Err(BaselineError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| BaselineError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let mut b: Baseline = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if b.format != FORMAT {
            return Err(corrupt(format!(
                "format is \"{}\", expected \"{FORMAT}\"",
                b.format
            )));
        }
        for tree in b.scenarios.values_mut() {
            tree.canonicalize();
        }
        Ok(b)
    }

    /// Writes `path` through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let io = |source| BaselineError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        text.push('\n');
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}
