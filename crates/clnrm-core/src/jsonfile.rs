//! The small JSON files clnrm keeps beside a project (`.clnrm/timings.json`,
//! `.clnrm/bench/NAME.json`): read whole but bounded, checked for their `format`
//! name, written atomically as stable pretty JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads `path` as a `what` (e.g. "timings file") of at most `max` bytes whose
/// `format` is `expected`: none when there is no file; the error says why an existing
/// one cannot be used.
pub fn read<T: DeserializeOwned>(
    path: &Path,
    max: u64,
    what: &str,
    expected: &str,
    format_of: impl Fn(&T) -> &str,
) -> Result<Option<T>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(&e)),
    };
    if meta.len() > max {
        return Err(format!(
            "{}: {} bytes, more than the {} MiB a {what} may hold",
            path.display(),
            meta.len(),
            max >> 20
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(&e))?;
    let value: T = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a {what} ({e})", path.display()))?;
    let found = format_of(&value);
    if found != expected {
        return Err(format!(
            "{}: format \"{found}\", expected \"{expected}\"",
            path.display()
        ));
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
    crate::otel::artifacts::write_atomic(path, text.as_bytes())
}
