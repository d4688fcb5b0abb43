//! The digest of one host input: a file's content, or a directory's whole tree (every
//! entry's path, type and permission bits, each file's content, each symlink's target;
//! symlinks inside are not followed, as the container sees them as links). A missing
//! path has a digest too (the engine makes an empty directory of it), so creating it
//! changes the key. A tree over [`MAX_ENTRIES`] entries has none: a scenario reading
//! it always runs.

use super::index::StatIndex;
use crate::digest::hex;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Entries of one input tree hashed at most.
pub const MAX_ENTRIES: usize = 100_000;

/// What a host input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory, read recursively.
    Dir,
    /// Nothing is there (yet).
    Missing,
    /// A socket, device or pipe: only its type counts.
    Special,
}

/// The digest of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputDigest {
    /// Its content is summarised by `hash`.
    Known {
        /// What it is.
        kind: Kind,
        /// SHA-256 (hex) over its content.
        hash: String,
        /// Its files, by path relative to it, with their content hashes (a directory's;
        /// empty for a file), for saying which changed.
        files: BTreeMap<String, String>,
    },
    /// It cannot be summarised (too big, unreadable): whoever reads it always runs.
    Unknowable(String),
}

impl InputDigest {
    /// The value that goes into a key: the hash, or why there is none.
    pub fn value(&self) -> String {
        match self {
            InputDigest::Known { hash, .. } => hash.clone(),
            InputDigest::Unknowable(why) => format!("unknowable: {why}"),
        }
    }
}

/// The digest of `path` (absolute), leaving out what lies under `exclude` (clnrm's own
/// outputs, such as the project's `.clnrm/`).
pub fn digest(path: &Path, index: &mut StatIndex, exclude: &[PathBuf]) -> InputDigest {
    digest_with(path, index, exclude, &|_, _| Walk::Take)
}

/// What a walk of a tree does with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// It counts (a directory with what is under it, as the walk says of each).
    Take,
    /// A directory that does not count itself, but what is under it may.
    Through,
    /// It does not count, nor anything under it (a directory's entries are not read).
    Skip,
}

/// [`digest`], each entry of a directory's tree counted as `walk` says (given its
/// path relative to the directory, `/`-separated, and whether it is a directory).
pub fn digest_with(
    path: &Path,
    index: &mut StatIndex,
    exclude: &[PathBuf],
    walk: &dyn Fn(&str, bool) -> Walk,
) -> InputDigest {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return known(Kind::Missing, hash_text("missing"), BTreeMap::new());
        }
        Err(e) => return InputDigest::Unknowable(format!("cannot read it ({e})")),
    };
    if meta.is_file() {
        return match index.file_hash(path, &meta) {
            Ok(h) => known(
                Kind::File,
                hash_text(&format!("file {:o} {h}", mode(&meta))),
                BTreeMap::new(),
            ),
            Err(e) => InputDigest::Unknowable(format!("cannot read it ({e})")),
        };
    }
    if !meta.is_dir() {
        return known(
            Kind::Special,
            hash_text(&format!("special {:o}", meta.mode())),
            BTreeMap::new(),
        );
    }
    let mut lines = sha2::Sha256::new();
    let mut files = BTreeMap::new();
    let walked = walk_tree(path, exclude, walk, &mut |e| {
        if let Some(line) = line_of(&e, index, &mut files)? {
            lines.update((line.len() as u64).to_le_bytes());
            lines.update(line.as_bytes());
        }
        Ok(())
    });
    match walked {
        Ok(()) => known(Kind::Dir, hex(&lines.finalize()), files),
        Err(why) => InputDigest::Unknowable(why.to_string()),
    }
}

fn known(kind: Kind, hash: String, files: BTreeMap<String, String>) -> InputDigest {
    InputDigest::Known { kind, hash, files }
}

fn hash_text(text: &str) -> String {
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

fn mode(m: &std::fs::Metadata) -> u32 {
    m.permissions().mode() & 0o7777
}

/// Why a directory's tree has no digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// A directory in it cannot be listed.
    #[error("cannot list {} ({source})", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// What listing it said.
        #[source]
        source: std::io::Error,
    },
    /// An entry in it cannot be read.
    #[error("cannot read {} ({source})", path.display())]
    Read {
        /// The entry.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// It has more entries than are hashed.
    #[error("over {} entries; mount a narrower directory", MAX_ENTRIES)]
    TooMany,
}

impl DigestError {
    fn list(path: &Path, source: std::io::Error) -> Self {
        Self::List {
            path: path.to_path_buf(),
            source,
        }
    }

    fn read(path: &Path, source: std::io::Error) -> Self {
        Self::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One entry of a tree, as [`walk_tree`] gives it.
pub struct Entry<'a> {
    /// Its path.
    pub path: &'a Path,
    /// Its path relative to the tree, `/`-separated.
    pub rel: &'a str,
    /// Its metadata (a symlink's own).
    pub meta: &'a std::fs::Metadata,
}

/// Walks the tree under directory `root` depth-first in name order, giving `visit`
/// each entry `walk` takes (a directory before what is under it), leaving out the
/// paths in `exclude` and the entries that vanish while it walks; at most
/// [`MAX_ENTRIES`] entries. Symlinks are not followed.
pub fn walk_tree(
    root: &Path,
    exclude: &[PathBuf],
    walk: &dyn Fn(&str, bool) -> Walk,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), DigestError>,
) -> Result<(), DigestError> {
    let mut entries = 0;
    walk_dir(root, "", exclude, walk, visit, &mut entries)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    exclude: &[PathBuf],
    walk: &dyn Fn(&str, bool) -> Walk,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), DigestError>,
    entries: &mut usize,
) -> Result<(), DigestError> {
    let read = std::fs::read_dir(dir).map_err(|e| DigestError::list(dir, e))?;
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| DigestError::list(dir, e))?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(DigestError::TooMany);
        }
        let path = dir.join(&name);
        if exclude.contains(&path) {
            continue;
        }
        let shown = name.to_string_lossy();
        let rel = if rel.is_empty() {
            shown.into_owned()
        } else {
            format!("{rel}/{shown}")
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Gone while listing: as if it had not been there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DigestError::read(&path, e)),
        };
        let is_dir = meta.file_type().is_dir();
        match walk(&rel, is_dir) {
            Walk::Take => visit(Entry {
                path: &path,
                rel: &rel,
                meta: &meta,
            })?,
            Walk::Through if is_dir => {}
            Walk::Through | Walk::Skip => continue,
        }
        if is_dir {
            walk_dir(&path, &rel, exclude, walk, visit, entries)?;
        }
    }
    Ok(())
}

/// The line of one entry in a tree's digest (`None`: it vanished while read), its
/// file's content read through `index` and noted in `files`.
fn line_of(
    e: &Entry<'_>,
    index: &mut StatIndex,
    files: &mut BTreeMap<String, String>,
) -> Result<Option<String>, DigestError> {
    let (path, rel, meta) = (e.path, e.rel, e.meta);
    let kind = meta.file_type();
    let line = if kind.is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| DigestError::read(path, e))?;
        format!("link {rel}\0{}", target.display())
    } else if kind.is_dir() {
        format!("dir {rel}\0{:o}", mode(meta))
    } else if kind.is_file() {
        let hash = match index.file_hash(path, meta) {
            Ok(h) => h,
            // Unreadable to clnrm (not always to the container): its stat stands in.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let s = super::index::Stat::of(meta);
                format!("unreadable {} {} {} {}", s.size, s.mtime, s.ctime, s.ino)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DigestError::read(path, e)),
        };
        files.insert(rel.to_owned(), hash.clone());
        format!("file {rel}\0{:o}\0{hash}", mode(meta))
    } else {
        format!("special {rel}\0{:o}", meta.mode())
    };
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(p: &Path) -> String {
        digest(p, &mut StatIndex::in_memory(), &[]).value()
    }

    #[test]
    fn a_tree_changes_its_digest_with_any_file_name_mode_or_link_in_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("conf");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a.txt"), "a").expect("write");
        std::fs::write(root.join("sub/b.txt"), "b").expect("write");
        let start = hash_of(&root);
        assert_eq!(hash_of(&root), start, "stable");
        std::fs::write(root.join("sub/b.txt"), "B").expect("write");
        let edited = hash_of(&root);
        assert_ne!(edited, start);
        std::fs::rename(root.join("a.txt"), root.join("c.txt")).expect("rename");
        let renamed = hash_of(&root);
        assert_ne!(renamed, edited);
        std::fs::set_permissions(root.join("c.txt"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let chmodded = hash_of(&root);
        assert_ne!(chmodded, renamed);
        std::os::unix::fs::symlink("c.txt", root.join("l")).expect("symlink");
        let linked = hash_of(&root);
        assert_ne!(linked, chmodded);
        std::fs::create_dir(root.join("empty")).expect("mkdir");
        assert_ne!(hash_of(&root), linked, "an empty directory counts");
    }

    #[test]
    fn a_missing_path_has_a_digest_and_excluded_paths_do_not_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let before = hash_of(&missing);
        std::fs::create_dir(&missing).expect("mkdir");
        assert_ne!(hash_of(&missing), before, "creating it changes it");
        let own = missing.join(".clnrm");
        std::fs::create_dir(&own).expect("mkdir");
        let mut idx = StatIndex::in_memory();
        let with_own = digest(&missing, &mut idx, std::slice::from_ref(&own)).value();
        std::fs::write(own.join("hashes.json"), "{}").expect("write");
        assert_eq!(
            digest(&missing, &mut idx, std::slice::from_ref(&own)).value(),
            with_own
        );
    }

    #[test]
    fn a_file_digest_is_its_content_and_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("conf.txt");
        std::fs::write(&f, "hello").expect("write");
        let a = hash_of(&f);
        std::fs::write(&f, "bye").expect("write");
        assert_ne!(hash_of(&f), a);
        std::fs::write(&f, "hello").expect("write");
        assert_eq!(hash_of(&f), a, "content, not times");
    }
    #[test]
    fn why_a_tree_has_no_digest_names_the_path() {
        let e = DigestError::list(Path::new("/x/y"), std::io::ErrorKind::Other.into());
        assert_eq!(e.to_string(), "cannot list /x/y (other error)");
        let e = DigestError::read(Path::new("/x/z"), std::io::ErrorKind::Other.into());
        assert_eq!(e.to_string(), "cannot read /x/z (other error)");
        assert_eq!(
            DigestError::TooMany.to_string(),
            "over 100000 entries; mount a narrower directory"
        );
    }
}
