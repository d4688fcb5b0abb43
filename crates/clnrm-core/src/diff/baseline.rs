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

/// A corrupt baseline file that [`Baseline::load_for_update`] set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// Where the old file was kept.
    pub backup: std::path::PathBuf,
    /// What was wrong with it.
    pub reason: String,
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

    /// Reads `path` to record into it: a file that is not a baseline is copied to
    /// `<path>.bak` and an empty baseline takes its place (the caller says so).
    pub fn load_for_update(path: &Path) -> Result<(Self, Option<Replaced>), BaselineError> {
        match Self::load(path) {
            Err(BaselineError::Corrupt { reason, .. }) => {
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(".bak");
                let backup = path.with_file_name(name);
                std::fs::copy(path, &backup).map_err(|source| BaselineError::Io {
                    path: backup.display().to_string(),
                    source,
                })?;
                let empty = Self {
                    format: FORMAT.into(),
                    scenarios: BTreeMap::new(),
                };
                Ok((empty, Some(Replaced { backup, reason })))
            }
            other => other.map(|b| (b, None)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_kept_as_bak_and_replaced_by_an_empty_baseline() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("trace.json");
        std::fs::write(&path, "{ not json").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Baseline::load(&path),
            Err(BaselineError::Corrupt { .. })
        ));
        let (b, replaced) = Baseline::load_for_update(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(b.scenarios.is_empty());
        let replaced = replaced.unwrap_or_else(|| panic!("not replaced"));
        assert_eq!(replaced.backup, dir.path().join("trace.json.bak"));
        assert_eq!(
            std::fs::read_to_string(&replaced.backup).ok().as_deref(),
            Some("{ not json")
        );
        // A good file is read as it is.
        b.save(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Baseline::load_for_update(&path).ok().map(|(_, r)| r),
            Some(None)
        );
    }
}
