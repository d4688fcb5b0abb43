//! Recorded scenario durations (`.clnrm/timings.json`, SPEC §8) and the shard
//! assignments made from them: `--partition duration:K/N` puts scenarios longest first
//! on the shard with the least time so far, the same on every machine;
//! `--partition hash:K/N` by a hash of the id, stable when scenarios are added.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The format name written in the file.
pub const FORMAT: &str = "clnrm.timings.v1";

/// The most a timings file may hold, in bytes (it is read whole).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Scenario id → its last duration in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    format: String,
    /// By scenario id.
    pub scenarios: BTreeMap<String, u64>,
}

impl Timings {
    /// The timings at `path`: none when there is no file; the error says why an
    /// existing one cannot be used.
    pub fn load(path: &Path) -> Result<Self, crate::jsonfile::ReadError> {
        let read = crate::jsonfile::read(path, MAX_BYTES, "timings file", FORMAT, |t: &Self| {
            &t.format
        })?;
        Ok(read.unwrap_or_default())
    }

    /// Records `durations` (id, ms) over what is there.
    pub fn update(&mut self, durations: impl IntoIterator<Item = (String, u64)>) {
        self.format = FORMAT.to_owned();
        self.scenarios.extend(durations);
    }

    /// Writes the file atomically, as stable pretty JSON (commit it).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::jsonfile::write(
            path,
            &Self {
                format: FORMAT.to_owned(),
                scenarios: self.scenarios.clone(),
            },
        )
    }
}

/// Records `durations` (scenario id, ms) in the timings file at `path`, over what it
/// holds.
pub fn record(
    path: &Path,
    durations: impl IntoIterator<Item = (String, u64)>,
) -> Result<(), RecordError> {
    let mut t = Timings::load(path)?;
    t.update(durations);
    t.save(path).map_err(|source| RecordError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Why durations could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file there cannot be used.
    #[error(transparent)]
    Read(#[from] crate::jsonfile::ReadError),
    /// It cannot be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What writing it said.
        source: std::io::Error,
    },
}

/// The shard (0-based, of `n`) of each of `ids`, longest first by `known` durations
/// (an unknown one takes the median of the known ones, 1 ms when none is known) onto
/// the shard with the least time so far (the lowest index on a tie); ties between
/// scenarios are broken by id, so every machine computes the same assignment.
pub fn by_duration(ids: &[&str], known: &BTreeMap<String, u64>, n: u64) -> Vec<u64> {
    let mut values: Vec<u64> = ids
        .iter()
        .filter_map(|id| known.get(*id).copied())
        .collect();
    values.sort_unstable();
    let median = values.get(values.len() / 2).copied().unwrap_or(1);
    let mut order: Vec<(u64, &str, usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (known.get(*id).copied().unwrap_or(median), *id, i))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut load = vec![0u64; n.max(1) as usize];
    let mut shard = vec![0u64; ids.len()];
    for (ms, _, i) in order {
        let (best, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(k, l)| (**l, *k))
            .unwrap_or((0, &0));
        load[best] = load[best].saturating_add(ms.max(1));
        shard[i] = best as u64;
    }
    shard
}

/// The shard (0-based, of `n`) of scenario `id` by a hash of its id alone.
pub fn by_hash(id: &str, n: u64) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&d[..8]);
    u64::from_be_bytes(eight) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_onto_the_least_loaded_shard() {
        let known: BTreeMap<String, u64> = [("a", 9000), ("b", 5000), ("c", 4000), ("d", 1000)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        // a → 0; b → 1; c → 1 (5000 < 9000); d → 0 (9000 = 9000: the lower index)
        let shards = by_duration(&["a", "b", "c", "d"], &known, 2);
        assert_eq!(shards, vec![0, 1, 1, 0]);
        // The input order does not matter.
        let again = by_duration(&["d", "c", "b", "a"], &known, 2);
        assert_eq!(again, vec![0, 1, 1, 0]);
        // An unknown one takes the median of the known (here 9000: the upper one).
        let with_new = by_duration(&["a", "b", "new"], &known, 2);
        assert_eq!(with_new, vec![0, 0, 1]);
    }

    #[test]
    fn hash_shards_do_not_move_when_scenarios_are_added() {
        let before: Vec<u64> = ["x::1", "x::2", "y::1"]
            .iter()
            .map(|id| by_hash(id, 4))
            .collect();
        let after: Vec<u64> = ["x::1", "x::2", "y::1", "z::9"]
            .iter()
            .map(|id| by_hash(id, 4))
            .collect();
        assert_eq!(before, after[..3]);
        assert!(after.iter().all(|s| *s < 4));
    }

    #[test]
    fn a_file_round_trips_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".clnrm/timings.json");
        assert_eq!(Timings::load(&path).unwrap(), Timings::default());
        let mut t = Timings::default();
        t.update([("a::b".to_owned(), 120)]);
        t.save(&path).unwrap();
        assert_eq!(Timings::load(&path).unwrap().scenarios["a::b"], 120);
        std::fs::write(&path, "{\"format\": \"other\", \"scenarios\": {}}").unwrap();
        assert!(
            Timings::load(&path)
                .unwrap_err()
                .to_string()
                .contains("expected \"clnrm.timings.v1\"")
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(
            Timings::load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a timings file")
        );
    }
}
