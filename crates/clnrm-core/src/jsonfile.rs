//! The small JSON files clnrm keeps beside a project (`.clnrm/timings.json`,
//! `.clnrm/bench/NAME.json`): read whole but bounded, checked for their `format`
//! name, written atomically as stable pretty JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Why an existing file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What reading it said.
        source: std::io::Error,
    },
    /// It is larger than such a file may be.
    #[error("{path}: {len} bytes, more than the {} MiB a {what} may hold", max >> 20)]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        len: u64,
        /// The most it may hold.
        max: u64,
        /// What it should be.
        what: &'static str,
    },
    /// It is not JSON of the expected shape.
    #[error("{path}: not a {what} ({source})")]
    NotIt {
        /// The file.
        path: String,
        /// What it should be.
        what: &'static str,
        /// What parsing it said.
        source: serde_json::Error,
    },
    /// It is of another format (or version).
    #[error("{path}: format \"{found}\", expected \"{expected}\"")]
    Format {
        /// The file.
        path: String,
        /// Its `format`.
        found: String,
        /// The one read here.
        expected: &'static str,
    },
    /// There is none (where one must be).
    #[error("{path}: no such {what}")]
    Missing {
        /// The file.
        path: String,
        /// What it should be.
        what: &'static str,
    },
}

/// Reads `path` as a `what` (e.g. "timings file") of at most `max` bytes whose
/// `format` is `expected`: none when there is no file; the error says why an existing
/// one cannot be used.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    max: u64,
    what: &'static str,
    expected: &'static str,
    format_of: impl Fn(&T) -> &str,
) -> Result<Option<T>, ReadError> {
    let shown = || path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ReadError::Io {
                path: shown(),
                source,
            });
        }
    };
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            path: shown(),
            len: meta.len(),
            max,
            what,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: shown(),
        source,
    })?;
    let value: T = serde_json::from_str(&text).map_err(|source| ReadError::NotIt {
        path: shown(),
        what,
        source,
    })?;
    let found = format_of(&value);
    if found != expected {
        return Err(ReadError::Format {
            path: shown(),
            found: found.to_owned(),
            expected,
        });
    }
    Ok(Some(value))
}

/// Writes `value` to `path` atomically as pretty JSON ending in a line break (its
/// directory made when missing).
pub fn write<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::files::write_atomic(path, text.as_bytes())
}
