//! The stat index: for each host file clnrm has hashed, its size, mtime, ctime, inode,
//! device and mode when it was hashed, and the hash. A file whose stat is the same is
//! not read again (as git's index does); one whose times are too close to when it was
//! hashed is ("racily clean": a change within the same clock tick would keep its stat)
//! and is read again until it has settled. Kept in `.clnrm/cache/inputs.json`, written
//! atomically under the cache's lock and merged with what concurrent runs wrote.

use crate::digest::hex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of `format` in the index file.
pub const FORMAT: &str = "clnrm.inputs.v1";

/// Entries kept at most; past it the least recently used go.
pub const MAX_ENTRIES: usize = 500_000;

/// A file changed this close (in ns) before it was hashed may change again within the
/// same timestamp tick without its stat showing it: it is hashed again next time. Wide
/// enough for the kernel's coarse clock on file systems with nanosecond times.
const RACY_NS: i128 = 100_000_000;

/// The same for file systems with whole-second times (both times end in 0 ns).
const RACY_COARSE_NS: i128 = 2_000_000_000;

/// What identifies a file's version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Bytes.
    pub size: u64,
    /// Modified, ns since the epoch.
    pub mtime: i128,
    /// Status changed, ns since the epoch.
    pub ctime: i128,
    /// Inode.
    pub ino: u64,
    /// Device.
    pub dev: u64,
    /// Permission and type bits.
    pub mode: u32,
}

impl Stat {
    /// The stat of `m`.
    pub fn of(m: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            size: m.size(),
            mtime: ns(m.mtime(), m.mtime_nsec()),
            ctime: ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            mode: m.mode(),
        }
    }

    /// Whether a hash taken at `hashed_at` (ns since the epoch, read before the stat)
    /// still stands for a file with this stat.
    fn settled_before(&self, hashed_at: i128) -> bool {
        let coarse = self.mtime % 1_000_000_000 == 0 && self.ctime % 1_000_000_000 == 0;
        let window = if coarse { RACY_COARSE_NS } else { RACY_NS };
        self.mtime.max(self.ctime) + window < hashed_at
    }
}

/// One hashed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    /// SHA-256 of the content, hex.
    hash: String,
    /// When it was hashed (read before its stat), ns since the epoch.
    hashed_at: i128,
    /// When it was last used, ms since the epoch (for eviction).
    used: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    format: String,
    entries: HashMap<PathBuf, Entry>,
}

/// The index of one project, as loaded, plus what this run hashed.
#[derive(Debug, Default)]
pub struct StatIndex {
    path: Option<PathBuf>,
    entries: HashMap<PathBuf, Entry>,
    changed: HashMap<PathBuf, Entry>,
    /// Files read (hashed) since the index was opened.
    pub hashed: usize,
    /// Why the file on disk was not usable, if it was not.
    pub warning: Option<String>,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Why the index file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// It cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is not an index file.
    #[error("corrupt ({0})")]
    Corrupt(#[source] serde_json::Error),
    /// It is of another format.
    #[error("format is \"{0}\", expected \"{expected}\"", expected = FORMAT)]
    Format(String),
}

fn read(path: &Path) -> Result<HashMap<PathBuf, Entry>, IndexError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let file: IndexFile = serde_json::from_slice(&text).map_err(IndexError::Corrupt)?;
    if file.format != FORMAT {
        return Err(IndexError::Format(file.format));
    }
    Ok(file.entries)
}

impl StatIndex {
    /// The file of the index under `dir` (`.clnrm/cache`).
    pub fn file_path(dir: &Path) -> PathBuf {
        dir.join("inputs.json")
    }

    /// Loads the index under `dir`; an unusable file is set aside with a warning (every
    /// file is then hashed once more, nothing else is lost).
    pub fn open(dir: &Path) -> Self {
        let path = Self::file_path(dir);
        let (entries, warning) = match read(&path) {
            Ok(e) => (e, None),
            Err(why) => (
                HashMap::new(),
                Some(format!(
                    "{}: {why}; hashing the inputs afresh",
                    path.display()
                )),
            ),
        };
        Self {
            path: Some(path),
            entries,
            warning,
            ..Self::default()
        }
    }

    /// An index kept in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The SHA-256 (hex) of the file at `path`, whose metadata is `meta`: from the
    /// index when its stat is unchanged and settled, else read now.
    pub fn file_hash(&mut self, path: &Path, meta: &Metadata) -> std::io::Result<String> {
        let stat = Stat::of(meta);
        let known = self
            .changed
            .get(path)
            .or_else(|| self.entries.get(path))
            .filter(|e| e.stat == stat && stat.settled_before(e.hashed_at));
        if let Some(e) = known {
            return Ok(e.hash.clone());
        }
        let hashed_at = now_ns();
        // The stat is taken again after the clock: a change between the two is seen
        // as a changed stat next time.
        let mut f = File::open(path)?;
        let stat = Stat::of(&f.metadata()?);
        let hash = hash_reader(&mut f)?;
        self.hashed += 1;
        self.changed.insert(
            path.to_path_buf(),
            Entry {
                stat,
                hash: hash.clone(),
                hashed_at,
                used: 0,
            },
        );
        Ok(hash)
    }

    /// Writes what this run hashed: under the cache's lock, merged with the file as it
    /// is now, the least recently used entries past [`MAX_ENTRIES`] evicted. Nothing is
    /// written when nothing was hashed.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.changed.is_empty() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let lock = crate::files::lock_dir(dir)?;
        let mut entries = read(path).unwrap_or_default();
        let used = (now_ns() / 1_000_000) as u64;
        for (p, mut e) in self.changed.drain() {
            e.used = used;
            entries.insert(p, e);
        }
        if entries.len() > MAX_ENTRIES {
            let mut by_age: Vec<(u64, PathBuf)> =
                entries.iter().map(|(p, e)| (e.used, p.clone())).collect();
            by_age.sort();
            for (_, p) in by_age.into_iter().take(entries.len() - MAX_ENTRIES) {
                entries.remove(&p);
            }
        }
        let file = IndexFile {
            format: FORMAT.into(),
            entries,
        };
        let text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        let renamed = std::fs::rename(&tmp, path);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.entries = file.entries;
        renamed?;
        lock.unlock()
    }
}

/// SHA-256 (hex) of everything `r` yields.
pub fn hash_reader(r: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle() {
        // Past the racy window, so that the hash is trusted from now on.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one").expect("write");
        settle();
        let mut idx = StatIndex::open(dir.path());
        let meta = std::fs::metadata(&f).expect("meta");
        let first = idx.file_hash(&f, &meta).expect("hash");
        settle();
        let again = idx.file_hash(&f, &meta).expect("hash");
        assert_eq!((first.as_str(), idx.hashed), (again.as_str(), 1));
        idx.save().expect("save");
        let mut idx = StatIndex::open(dir.path());
        let same = idx
            .file_hash(&f, &std::fs::metadata(&f).expect("meta"))
            .expect("hash");
        assert_eq!((same.as_str(), idx.hashed), (first.as_str(), 0));
        // Same size, same second: the stat still moves (mtime ns, ctime).
        std::fs::write(&f, "two").expect("write");
        let changed = idx
            .file_hash(&f, &std::fs::metadata(&f).expect("meta"))
            .expect("hash");
        assert_ne!(changed, first);
        assert_eq!(idx.hashed, 1);
    }

    #[test]
    fn a_file_hashed_right_after_it_changed_is_read_again_until_it_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one").expect("write");
        let mut idx = StatIndex::in_memory();
        let meta = std::fs::metadata(&f).expect("meta");
        idx.file_hash(&f, &meta).expect("hash");
        idx.file_hash(&f, &meta).expect("hash");
        assert_eq!(idx.hashed, 2, "racily clean: read again");
        settle();
        idx.file_hash(&f, &meta).expect("hash");
        idx.file_hash(&f, &meta).expect("hash");
        assert_eq!(idx.hashed, 3, "settled: trusted");
    }

    #[test]
    fn a_corrupt_index_is_replaced_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(StatIndex::file_path(dir.path()), "{ nope").expect("write");
        let idx = StatIndex::open(dir.path());
        assert!(idx.warning.is_some_and(|w| w.contains("corrupt")));
    }
    #[test]
    fn an_index_of_another_format_says_which() {
        assert_eq!(
            IndexError::Format("x".into()).to_string(),
            "format is \"x\", expected \"clnrm.inputs.v1\""
        );
    }
}
