//! What a scenario reads from the host besides its test file: the paths its services
//! bind-mount, files and directories alike (read recursively; `.gitignore` and
//! `.dockerignore` do not apply). Each is summarised by a digest of its content
//! ([`digest`]) that goes into the scenario's cache key, so that a change of what it
//! reads runs it again. Unchanged files cost a stat, not a read ([`StatIndex`]).
//! A directory's list of file hashes is kept per digest (`.clnrm/cache/manifests/`),
//! so that `clnrm cache stats --explain` can say which of its files changed.
//!
//! This module knows paths and files only; which scenario reads which path is the
//! plan's, and keys are the cache's.

mod digest;
pub mod index;

pub use digest::{
    DigestError, Entry, InputDigest, Kind, MAX_ENTRIES, Walk, digest, digest_with, walk_tree,
};
pub use index::StatIndex;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The digests of a run's inputs, by absolute path.
#[derive(Clone, Debug, Default)]
pub struct Digests {
    /// Path → digest.
    pub by_path: BTreeMap<PathBuf, InputDigest>,
}

impl Digests {
    /// The digest of `path`, if it was taken.
    pub fn get(&self, path: &Path) -> Option<&InputDigest> {
        self.by_path.get(path)
    }
}

/// The digests of `paths`, through `index`, with what lies under `exclude` left out;
/// the list of files of each directory is kept under `manifests` (when given) for
/// later explanations.
pub fn digest_all(
    paths: &BTreeSet<PathBuf>,
    index: &mut StatIndex,
    exclude: &[PathBuf],
    manifests: Option<&Path>,
) -> Digests {
    let mut out = Digests::default();
    for p in paths {
        let d = digest(p, index, exclude);
        if let (
            Some(dir),
            InputDigest::Known {
                kind: Kind::Dir,
                hash,
                files,
            },
        ) = (manifests, &d)
        {
            // Best effort: an explanation without it names the directory only.
            let _ = manifest::save(dir, hash, files);
        }
        out.by_path.insert(p.clone(), d);
    }
    out
}

/// What runs have written to themselves in their inputs (writable mounts their
/// containers change), kept in `.clnrm/cache/written.json`: per input, the paths
/// inside it written (`""`: the input itself, a file). Those files are the service's
/// data: they do not make another environment or fixture snapshot, and a watch does
/// not start a cycle for them. They still go into cache keys, so the scenarios
/// reading them run every time.
pub mod written {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Input → paths inside it that runs wrote.
    pub type Written = BTreeMap<PathBuf, BTreeSet<String>>;

    /// Paths kept at most, per input and in all.
    const MAX: usize = 10_000;

    /// The file under `cache_dir`.
    pub fn path(cache_dir: &Path) -> PathBuf {
        cache_dir.join("written.json")
    }

    /// What is recorded under `cache_dir`; nothing when the file is missing or unusable.
    pub fn load(cache_dir: &Path) -> Written {
        std::fs::read(path(cache_dir))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    }

    /// Adds `more` to what is recorded under `cache_dir`, under the cache's lock (two
    /// runs that end together both add theirs).
    pub fn add(cache_dir: &Path, more: &Written) -> std::io::Result<()> {
        let lock = crate::files::lock_dir(cache_dir)?;
        let mut all = load(cache_dir);
        let before = all.clone();
        for (input, paths) in more {
            let known = all.entry(input.clone()).or_default();
            for p in paths {
                if known.len() < MAX {
                    known.insert(p.clone());
                }
            }
        }
        if all == before || all.len() > MAX {
            return lock.unlock();
        }
        let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        crate::files::write_atomic(&path(cache_dir), &text)?;
        lock.unlock()
    }

    /// The absolute paths `written` names.
    pub fn files(written: &Written) -> BTreeSet<PathBuf> {
        written
            .iter()
            .flat_map(|(input, rels)| {
                rels.iter().map(move |r| {
                    if r.is_empty() {
                        input.clone()
                    } else {
                        input.join(r)
                    }
                })
            })
            .collect()
    }
}

impl InputDigest {
    /// The digest of this input without the files in `skip` (paths inside it that runs
    /// write themselves): what the environment it is mounted in is made from. `None`
    /// when the whole input is skipped.
    pub fn without(&self, skip: &BTreeSet<String>) -> Option<String> {
        if skip.is_empty() {
            return Some(self.value());
        }
        match self {
            InputDigest::Known {
                kind: Kind::Dir,
                files,
                ..
            } => {
                let kept: Vec<String> = files
                    .iter()
                    .filter(|(rel, _)| !skip.contains(*rel))
                    .map(|(rel, hash)| format!("{rel}\0{hash}"))
                    .collect();
                Some(crate::digest::key(kept.iter().map(String::as_str)))
            }
            _ if skip.contains("") => None,
            other => Some(other.value()),
        }
    }

    /// The paths inside this input that differ from `before` (`""`: the input itself).
    pub fn changed_since(&self, before: &InputDigest) -> BTreeSet<String> {
        match (before, self) {
            (
                InputDigest::Known {
                    kind: Kind::Dir,
                    files: old,
                    ..
                },
                InputDigest::Known {
                    kind: Kind::Dir,
                    files: new,
                    ..
                },
            ) => {
                let (added, removed, changed) = manifest::changes(old, new);
                added.into_iter().chain(removed).chain(changed).collect()
            }
            (a, b) if a.value() != b.value() => [String::new()].into(),
            _ => BTreeSet::new(),
        }
    }
}

/// The lists of files of directory inputs, one small file per digest.
pub mod manifest {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// A digest's list is named by the digest as a cache entry keeps it.
    fn path(dir: &Path, hash: &str) -> PathBuf {
        dir.join(format!("{}.json", crate::digest::short(hash)))
    }

    /// Keeps the file list of the directory whose digest is `hash` (once per digest).
    pub fn save(dir: &Path, hash: &str, files: &BTreeMap<String, String>) -> std::io::Result<()> {
        let p = path(dir, hash);
        if p.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_vec(files).map_err(std::io::Error::other)?;
        crate::files::write_atomic(&p, &text)
    }

    /// The file list kept for digest `hash`, if it is.
    pub fn load(dir: &Path, hash: &str) -> Option<BTreeMap<String, String>> {
        let text = std::fs::read(path(dir, hash)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Removes the lists of digests not in `keep` (as cache entries keep them).
    pub fn prune(dir: &Path, keep: &BTreeSet<String>) {
        let kept: BTreeSet<String> = keep.iter().map(|h| crate::digest::short(h)).collect();
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if !kept.contains(stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// What changed between two file lists: (added, removed, changed) paths.
    pub fn changes(
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        let added = new
            .keys()
            .filter(|k| !old.contains_key(*k))
            .cloned()
            .collect();
        let removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        let changed = new
            .iter()
            .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
            .map(|(k, _)| k.clone())
            .collect();
        (added, removed, changed)
    }
}
