//! Each scenario's last outcome (`.clnrm/outcomes.json`), which `--failed` reads:
//! every run records what its scenarios did over what earlier runs recorded, so a
//! scenario keeps its outcome until it runs again.

use crate::exec::{Reason, Status};
use crate::report::RunReport;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The format name written in the file.
pub const FORMAT: &str = "clnrm.outcomes.v1";

/// The most the file may hold, in bytes (it is read whole).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What a scenario's last run came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It passed, or was unchanged since it did.
    Passed,
    /// It passed only on a retry (as the cache does, counted with the failures:
    /// `--flaky-fails` makes it one).
    Flaky,
    /// An expectation or a step failed.
    Failed,
    /// The environment failed it (an image, the engine, a service that never became
    /// healthy).
    Error,
}

/// The file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    format: String,
    scenarios: BTreeMap<String, Outcome>,
}

/// The recorded outcomes: none when there is no file; the error says why an existing
/// one cannot be used.
pub fn load(path: &Path) -> Result<BTreeMap<String, Outcome>, crate::jsonfile::ReadError> {
    let read = crate::jsonfile::read(path, MAX_BYTES, "file of outcomes", FORMAT, |f: &File| {
        &f.format
    })?;
    Ok(read.map(|f| f.scenarios).unwrap_or_default())
}

/// The ids whose last outcome was failed, error or flaky.
pub fn failed(outcomes: &BTreeMap<String, Outcome>) -> BTreeSet<String> {
    outcomes
        .iter()
        .filter(|(_, o)| **o != Outcome::Passed)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The ids whose last outcome recorded at `path` was failed, error or flaky, and what
/// to warn of when the file there is unusable (then none counts as failed).
pub fn failed_at(path: &Path) -> (BTreeSet<String>, Option<String>) {
    match load(path) {
        Ok(recorded) => (failed(&recorded), None),
        Err(e) => (
            BTreeSet::new(),
            Some(format!(
                "the outcomes of earlier runs are unusable ({e}): no scenario counts as failed"
            )),
        ),
    }
}

/// A result's outcome; none for a scenario that did not come to one (not selected,
/// skipped, or interrupted).
fn outcome(status: Status, reason: Option<Reason>) -> Option<Outcome> {
    match status {
        Status::Passed | Status::Cached => Some(Outcome::Passed),
        Status::Flaky => Some(Outcome::Flaky),
        _ if reason == Some(Reason::Interrupted) => None,
        Status::Failed => Some(Outcome::Failed),
        Status::Error => Some(Outcome::Error),
        Status::Skipped => None,
    }
}

/// Records the outcomes of `report` over those at `path` (an unusable file is
/// replaced; an unchanged one is not written).
pub fn record(path: &Path, report: &RunReport) -> std::io::Result<()> {
    let came: Vec<(String, Outcome)> = report
        .results
        .iter()
        // A cached scenario's last run passed: nothing new (a fully cached run reads
        // and writes nothing here).
        .filter(|r| !r.is_unselected() && r.status != Status::Cached)
        .filter_map(|r| Some((r.id.0.clone(), outcome(r.status, r.reason)?)))
        .collect();
    if came.is_empty() {
        return Ok(());
    }
    let before = load(path).ok();
    let mut scenarios = before.clone().unwrap_or_default();
    scenarios.extend(came);
    if before.as_ref() == Some(&scenarios) {
        // Nothing new (a fully cached run): the file stays as it is.
        return Ok(());
    }
    crate::jsonfile::write(
        path,
        &File {
            format: FORMAT.to_owned(),
            scenarios,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_error_count_interrupted_and_skipped_keep_the_last() {
        assert_eq!(outcome(Status::Flaky, None), Some(Outcome::Flaky));
        let mut all = BTreeMap::new();
        all.insert("a".to_owned(), Outcome::Passed);
        all.insert("b".to_owned(), Outcome::Flaky);
        all.insert("c".to_owned(), Outcome::Error);
        assert_eq!(failed(&all), ["b".to_owned(), "c".to_owned()].into());
        assert_eq!(
            outcome(Status::Cached, Some(Reason::Cached)),
            Some(Outcome::Passed)
        );
        assert_eq!(outcome(Status::Failed, None), Some(Outcome::Failed));
        assert_eq!(outcome(Status::Error, None), Some(Outcome::Error));
        assert_eq!(outcome(Status::Error, Some(Reason::Interrupted)), None);
        assert_eq!(outcome(Status::Skipped, None), None);
    }

    #[test]
    fn an_unusable_file_is_an_error_and_none_is_empty() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("outcomes.json");
        assert_eq!(load(&path).ok(), Some(BTreeMap::new()));
        std::fs::write(&path, "{").unwrap_or_else(|e| panic!("{e}"));
        assert!(load(&path).is_err_and(|e| e.to_string().contains(": not a file of outcomes (")));
    }
}
