//! Change detection per scenario: `.clnrm/cache/hashes.json` maps each scenario id to
//! the key of its last run (a SHA-256 over everything that decides its outcome), whether
//! that run passed, and how long it took. A scenario whose key equals that of its last
//! *passing* run is not run again. The file is written atomically (temporary file and
//! rename) under a lock, merged with what concurrent runs wrote; a corrupt or
//! foreign-version file is replaced with a warning; `cache.max_entries` evicts the
//! least recently used entries.
//!
//! A key ([`Key`]) is made of named parts, each a hash or an id, and is the SHA-256
//! over them, length-prefixed ([`key`]):
//! - `definition`: the clnrm version; the file's `service`, `limits`, `otel` and
//!   `expect` tables as rendered, each as JSON (sorted keys); the outside variables as
//!   JSON (sorted keys); the scenario's own table as JSON; its planned steps and
//!   environment as JSON (fields in declaration order, durations in milliseconds,
//!   regexes as their pattern);
//! - `image <name>`: the id of each of its images;
//! - `baseline`: its baseline entry as JSON with the `[diff]` settings it is compared
//!   with (`none` without an entry);
//! - `input <path>`: the digest of each host path its services bind-mount (see
//!   `inputs`);
//! - `snapshot <path>`: each output snapshot it compares with (and its redactions).
//!
//! No part is a `Debug` rendering, so a key changes only when something that decides
//! the outcome does. An entry keeps its parts (shortened) so that `clnrm cache stats
//! --explain` can say which one changed since the last run.

pub mod explain;

pub use crate::digest::{PART_LEN, key, short};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The value of `format` in the cache file.
pub const FORMAT: &str = "clnrm.cache.v1";

/// The clnrm version, part of every key.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One scenario's last run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its key.
    pub key: String,
    /// Whether it passed.
    pub passed: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// When it was last used (run or hit), milliseconds since the epoch.
    pub last_used_ms: u64,
    /// The key's parts, name → value shortened to [`PART_LEN`] characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, String>,
}

/// A scenario's cache key: named parts, in order, and whether it may be skipped at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Key {
    /// `(name, value)`: `definition`, `image <name>`, `baseline`, `input <path>`,
    /// `snapshot <path>`.
    pub parts: Vec<(String, String)>,
    /// Why a run of it may never be skipped (an input that cannot be summarised).
    pub uncacheable: Option<String>,
}

impl Key {
    /// Adds a part.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.parts.push((name.into(), value.into()));
    }

    /// The key itself: SHA-256 over the parts.
    pub fn digest(&self) -> String {
        key(self
            .parts
            .iter()
            .flat_map(|(n, v)| [n.as_str(), v.as_str()]))
    }

    /// The parts as an entry keeps them.
    pub fn short_parts(&self) -> BTreeMap<String, String> {
        self.parts
            .iter()
            .map(|(n, v)| (n.clone(), short(v)))
            .collect()
    }
}

/// Hits and misses of the last run that wrote the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Scenarios not run because unchanged.
    pub hits: u64,
    /// Scenarios run.
    pub misses: u64,
}

/// The file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheFile {
    /// [`FORMAT`].
    pub format: String,
    /// The clnrm version that wrote it.
    pub clnrm_version: String,
    /// Scenario id → entry.
    pub entries: BTreeMap<String, Entry>,
    /// The last run's stats.
    #[serde(default)]
    pub last_run: Stats,
}

impl Default for CacheFile {
    fn default() -> Self {
        Self {
            format: FORMAT.into(),
            clnrm_version: VERSION.into(),
            entries: BTreeMap::new(),
            last_run: Stats::default(),
        }
    }
}

/// A lookup's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Unchanged since its last passing run.
    Hit,
    /// Must run.
    Miss,
}

/// The cache of one project, as loaded at the start of a run, plus this run's updates.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    file: CacheFile,
    updates: BTreeMap<String, Entry>,
    /// Ids whose update is only a hit's recency: applied only to the entry it hit.
    refreshed: BTreeSet<String>,
    stats: Stats,
    /// Why the file on disk was not usable, if it was not.
    pub warning: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why the cache file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is not a cache file.
    #[error("corrupt ({0})")]
    Corrupt(#[source] serde_json::Error),
    /// Another version of clnrm wrote it.
    #[error("written by another clnrm ({format} {version})")]
    OtherVersion {
        /// Its format.
        format: String,
        /// The clnrm version that wrote it.
        version: String,
    },
}

/// Reads the cache file; `Err` says why it is unusable (corrupt, another version).
fn read(path: &Path) -> Result<CacheFile, ReadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
        Err(e) => return Err(e.into()),
    };
    let file: CacheFile = serde_json::from_str(&text).map_err(ReadError::Corrupt)?;
    if file.format != FORMAT || file.clnrm_version != VERSION {
        return Err(ReadError::OtherVersion {
            format: file.format,
            version: file.clnrm_version,
        });
    }
    Ok(file)
}

/// The name of an input's part starts so: `input <path>`.
pub const INPUT_PART: &str = "input ";
/// The name of the part of a cache key that is the key of a built service's sources
/// (followed by the service's id).
pub const BUILD_PART: &str = "build ";

/// Where the file lists of directory inputs are kept under `dir` (`.clnrm/cache`).
pub fn manifests_dir(dir: &Path) -> PathBuf {
    dir.join("manifests")
}

/// The cache file under `dir` (`.clnrm/cache`).
pub fn file_path(dir: &Path) -> PathBuf {
    dir.join("hashes.json")
}

/// The images the entries of the cache in `dir` were keyed with (their `image <name>`
/// parts); none when it has no usable file.
pub fn images_named(dir: &Path) -> BTreeSet<String> {
    let Ok(file) = read(&file_path(dir)) else {
        return BTreeSet::new();
    };
    file.entries
        .values()
        .flat_map(|e| e.parts.keys())
        .filter_map(|k| k.strip_prefix("image "))
        .map(str::to_owned)
        .collect()
}

impl Cache {
    /// Loads the cache of `dir`; an unusable file is set aside with a warning.
    pub fn open(dir: &Path) -> Self {
        let (file, warning) = match read(&file_path(dir)) {
            Ok(f) => (f, None),
            Err(why) => (
                CacheFile::default(),
                Some(format!(
                    "{}: {why}; starting an empty cache",
                    file_path(dir).display()
                )),
            ),
        };
        Self {
            dir: dir.to_path_buf(),
            file,
            updates: BTreeMap::new(),
            refreshed: BTreeSet::new(),
            stats: Stats::default(),
            warning,
        }
    }

    /// Whether `id` with `key` would be skipped, without counting anything.
    pub fn peek(&self, id: &str, key: &Key) -> Lookup {
        self.peek_digest(
            id,
            key.uncacheable.is_none().then(|| key.digest()).as_deref(),
        )
    }

    /// [`Cache::peek`] with the key's digest taken (`None`: the key is uncacheable).
    pub fn peek_digest(&self, id: &str, digest: Option<&str>) -> Lookup {
        match (self.file.entries.get(id), digest) {
            (Some(e), Some(digest)) if e.passed && e.key == digest => Lookup::Hit,
            _ => Lookup::Miss,
        }
    }

    /// The entry of `id` as loaded (its last run before this one).
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.file.entries.get(id)
    }

    /// Whether `id` with `key` may be skipped. Counts a hit or a miss.
    pub fn lookup(&mut self, id: &str, key: &Key) -> Lookup {
        self.lookup_digest(
            id,
            key.uncacheable.is_none().then(|| key.digest()).as_deref(),
        )
    }

    /// [`Cache::lookup`] with the key's digest taken (`None`: the key is uncacheable).
    pub fn lookup_digest(&mut self, id: &str, digest: Option<&str>) -> Lookup {
        match (self.file.entries.get(id), digest) {
            (Some(e), Some(digest)) if e.passed && e.key == digest => {
                self.stats.hits += 1;
                let mut e = e.clone();
                e.last_used_ms = now_ms();
                self.updates.insert(id.to_owned(), e);
                self.refreshed.insert(id.to_owned());
                Lookup::Hit
            }
            _ => {
                self.stats.misses += 1;
                Lookup::Miss
            }
        }
    }

    /// Counts a scenario run without a lookup (`--force`).
    pub fn forced(&mut self) {
        self.stats.misses += 1;
    }

    /// How long `id` took last time.
    pub fn last_duration(&self, id: &str) -> Option<Duration> {
        self.file
            .entries
            .get(id)
            .map(|e| Duration::from_millis(e.duration_ms))
    }

    /// Records a run of `id`; only a passing run can make a later lookup hit.
    pub fn record(&mut self, id: &str, key: &Key, passed: bool, duration: Duration) {
        self.refreshed.remove(id);
        self.updates.insert(
            id.to_owned(),
            Entry {
                key: key.digest(),
                passed,
                duration_ms: duration.as_millis() as u64,
                last_used_ms: now_ms(),
                parts: key.short_parts(),
            },
        );
    }

    /// This run's hits and misses.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Writes this run's updates: under the lock, re-reads the file (another run may
    /// have written it), applies the updates, evicts the least recently used entries
    /// beyond `max_entries`, writes a temporary file and renames it over.
    pub fn save(&self, max_entries: usize) -> std::io::Result<()> {
        if self.unchanged() {
            return Ok(());
        }
        let lock = crate::files::lock_dir(&self.dir)?;
        let path = file_path(&self.dir);
        let mut file = read(&path).unwrap_or_default();
        for (id, update) in &self.updates {
            if self.refreshed.contains(id) {
                // A hit refreshes the entry it hit, if it is still there as it was
                // (another run may have recorded or forgotten it since).
                if let Some(e) = file.entries.get_mut(id)
                    && e.key == update.key
                {
                    e.last_used_ms = e.last_used_ms.max(update.last_used_ms);
                }
                continue;
            }
            file.entries.insert(id.clone(), update.clone());
        }
        evict(&mut file.entries, max_entries);
        file.last_run = self.stats.clone();
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        crate::files::write_atomic(&path, text.as_bytes())?;
        // The file lists of directory inputs no entry names any more.
        let named: BTreeSet<String> = file
            .entries
            .values()
            .flat_map(|e| &e.parts)
            .filter(|(n, _)| n.starts_with(INPUT_PART))
            .map(|(_, v)| v.clone())
            .collect();
        crate::inputs::manifest::prune(&manifests_dir(&self.dir), &named);
        lock.unlock()
    }
}

/// Removes the entries of `ids` from the cache under `dir`, if it has a file: a run
/// made with the cache off saved their spans, so an entry no longer describes their
/// last run (`run --update-baseline` records a cached scenario from the spans its
/// last run saved).
pub fn forget(dir: &Path, ids: &[&str]) -> std::io::Result<()> {
    let path = file_path(dir);
    if ids.is_empty() || !path.exists() {
        return Ok(());
    }
    let lock = crate::files::lock_dir(dir)?;
    let Ok(mut file) = read(&path) else {
        return lock.unlock();
    };
    let before = file.entries.len();
    for id in ids {
        file.entries.remove(*id);
    }
    if file.entries.len() != before {
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        crate::files::write_atomic(&path, text.as_bytes())?;
    }
    lock.unlock()
}

/// Recency kept in the file is this coarse: a hit refreshes an entry's `last_used_ms`
/// on disk only when the stored one is older (so repeated cached runs write nothing).
const RECENCY: u64 = 60 * 60 * 1000;

impl Cache {
    /// Whether saving would only refresh recent `last_used_ms` values and repeat the
    /// stats already on disk.
    fn unchanged(&self) -> bool {
        self.file.last_run == self.stats
            && self.updates.iter().all(|(id, new)| {
                self.file.entries.get(id).is_some_and(|old| {
                    old.key == new.key
                        && old.parts == new.parts
                        && old.passed == new.passed
                        && old.duration_ms == new.duration_ms
                        && new.last_used_ms.saturating_sub(old.last_used_ms) < RECENCY
                })
            })
    }
}

fn evict(entries: &mut BTreeMap<String, Entry>, max: usize) {
    if entries.len() <= max {
        return;
    }
    let mut by_age: Vec<(u64, String)> = entries
        .iter()
        .map(|(k, e)| (e.last_used_ms, k.clone()))
        .collect();
    by_age.sort();
    for (_, k) in by_age.into_iter().take(entries.len() - max) {
        entries.remove(&k);
    }
}

/// What `clnrm cache stats` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Entries.
    pub entries: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// The last run's hits and misses.
    pub last_run: Stats,
    /// Why the file is unusable, if it is.
    pub problem: Option<String>,
}

/// Reads the summary of the cache under `dir`.
pub fn summary(dir: &Path) -> Summary {
    let path = file_path(dir);
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    match read(&path) {
        Ok(f) => Summary {
            entries: f.entries.len(),
            bytes,
            last_run: f.last_run,
            problem: None,
        },
        Err(why) => Summary {
            entries: 0,
            bytes,
            last_run: Stats::default(),
            problem: Some(why.to_string()),
        },
    }
}

/// Empties the cache under `dir`: the entries, the stat index of host inputs, the
/// file lists of directory inputs and what runs were seen to write into their mounts.
pub fn clear(dir: &Path) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(std::fs::remove_file(file_path(dir)))?;
    gone(std::fs::remove_file(crate::inputs::StatIndex::file_path(
        dir,
    )))?;
    gone(std::fs::remove_file(crate::inputs::written::path(dir)))?;
    gone(std::fs::remove_dir_all(manifests_dir(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(value: &str) -> Key {
        let mut k = Key::default();
        k.push("definition", value);
        k
    }

    #[test]
    fn only_a_passing_run_with_the_same_key_hits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cache::open(dir.path());
        assert_eq!(c.lookup("a", &k("k1")), Lookup::Miss);
        c.record("a", &k("k1"), true, Duration::from_millis(40));
        c.record("b", &k("k2"), false, Duration::from_millis(50));
        c.save(100).expect("save");
        let mut c = Cache::open(dir.path());
        assert_eq!(c.lookup("a", &k("k1")), Lookup::Hit);
        assert_eq!(c.lookup("a", &k("other")), Lookup::Miss);
        assert_eq!(
            c.lookup("b", &k("k2")),
            Lookup::Miss,
            "failures are never cached"
        );
        assert_eq!(c.last_duration("b"), Some(Duration::from_millis(50)));
        assert_eq!(c.stats(), &Stats { hits: 1, misses: 2 });
    }

    #[test]
    fn forgotten_entries_miss_and_no_file_is_made_where_none_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        forget(dir.path(), &["a"]).expect("nothing to forget");
        assert!(!file_path(dir.path()).exists());
        let mut c = Cache::open(dir.path());
        c.record("a", &k("k1"), true, Duration::ZERO);
        c.record("b", &k("k2"), true, Duration::ZERO);
        c.save(100).expect("save");
        // A run that hit `a` before it was forgotten does not bring it back.
        let mut hit = Cache::open(dir.path());
        assert_eq!(hit.lookup("a", &k("k1")), Lookup::Hit);
        forget(dir.path(), &["a"]).expect("forget");
        hit.save(100).expect("save");
        let mut c = Cache::open(dir.path());
        assert_eq!(c.lookup("a", &k("k1")), Lookup::Miss);
        assert_eq!(c.lookup("b", &k("k2")), Lookup::Hit);
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_replaced_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(file_path(dir.path()), "{ not json").expect("write");
        let mut c = Cache::open(dir.path());
        assert!(
            c.warning.as_deref().is_some_and(|w| w.contains("corrupt")),
            "{:?}",
            c.warning
        );
        c.record("a", &k("k"), true, Duration::ZERO);
        c.save(10).expect("save");
        assert!(Cache::open(dir.path()).warning.is_none());
        let foreign =
            serde_json::json!({"format": FORMAT, "clnrm_version": "0.0.0-other", "entries": {}});
        std::fs::write(file_path(dir.path()), foreign.to_string()).expect("write");
        assert!(
            Cache::open(dir.path())
                .warning
                .is_some_and(|w| w.contains("another clnrm"))
        );
    }

    #[test]
    fn the_least_recently_used_entries_are_evicted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cache::open(dir.path());
        for i in 0..5 {
            c.record(&format!("s{i}"), &k("k"), true, Duration::ZERO);
            std::thread::sleep(Duration::from_millis(2));
        }
        c.save(3).expect("save");
        let kept: Vec<String> = read(&file_path(dir.path()))
            .expect("read")
            .entries
            .into_keys()
            .collect();
        assert_eq!(kept, vec!["s2", "s3", "s4"]);
    }

    #[test]
    fn concurrent_savers_merge_instead_of_overwriting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut c = Cache::open(&d);
                    c.record(&format!("s{i}"), &k("k"), true, Duration::ZERO);
                    c.save(100).expect("save");
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(read(&file_path(dir.path())).expect("read").entries.len(), 8);
    }
}
