//! A container's writable layer read straight from the engine host's file system:
//! every entry with its kind and metadata, sorted. On overlay file systems (overlay2,
//! fuse-overlayfs) the layer's upper directory holds exactly what the container
//! changed: files written or copied up, new files, whiteouts for deletions. Comparing
//! its listing with the one taken right after start tells whether a container is as
//! it was, as strictly as the engine's own diff (stricter: a change of content or
//! metadata moves a file's ctime, which no process in the container can set back),
//! and in well under a millisecond instead of a walk of the whole file system (90 to
//! 250 ms through the engine on fuse-overlayfs).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Entries read at most; a layer with more is not the one started (which has a
/// handful), so reading stops there.
pub const MAX_ENTRIES: usize = 10_000;

/// The listing of the layer at `upper`, one line per entry (`path kind mode uid gid
/// size mtime ctime rdev`), sorted; stops after `limit` entries (the result then has
/// `limit + 1` lines, the last one saying so). Blocking.
pub fn listing(upper: &Path, limit: usize) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![upper.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if out.len() >= limit {
                out.push(format!("… more than {limit} entries"));
                out.sort();
                return Ok(out);
            }
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = if meta.is_dir() {
                todo.push(path.clone());
                'd'
            } else if meta.file_type().is_symlink() {
                'l'
            } else if meta.is_file() {
                'f'
            } else {
                'o'
            };
            let rel = path.strip_prefix(upper).unwrap_or(&path);
            out.push(format!(
                "{} {kind} {:o} {} {} {} {}.{} {}.{} {}",
                rel.display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                meta.rdev()
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the writable layer at `upper` holds nothing but directories that its
/// container only touched: each one is, in the topmost of `lowers` that has it, a
/// directory with the same mode, owner, group and extended attributes (the overlay's
/// own bookkeeping aside), and none is opaque. A container's files then read exactly
/// as in its image but for directories' times, so its image with new labels stands
/// for a commit of it (a fixture whose data is in volumes: a database's set-up leaves
/// only its socket's directory touched). Anything else (a file, a whiteout, a new or
/// changed directory, more than `limit` entries, an entry it cannot read) is `false`.
/// Blocking.
pub fn only_touched_dirs(upper: &Path, lowers: &[std::path::PathBuf], limit: usize) -> bool {
    let mut todo = vec![upper.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        for entry in entries {
            let Ok(entry) = entry else { return false };
            seen += 1;
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                return false;
            };
            let Ok(rel) = path.strip_prefix(upper) else {
                return false;
            };
            let below = lookup(lowers, rel);
            let same = seen <= limit
                && meta.is_dir()
                && below.as_ref().is_some_and(|(at, m)| {
                    m.is_dir()
                        && m.mode() == meta.mode()
                        && m.uid() == meta.uid()
                        && m.gid() == meta.gid()
                        && own_xattrs(at).is_some_and(|x| Some(x) == own_xattrs(&path))
                });
            if !same {
                return false;
            }
            todo.push(path);
        }
    }
    true
}

/// Where `rel` is in the merged view of `lowers` (topmost first), with its metadata:
/// the topmost layer that has it, unless a layer above that hides it (a whiteout of
/// it or of a directory above it, or a directory above it made opaque there).
fn lookup(
    lowers: &[std::path::PathBuf],
    rel: &Path,
) -> Option<(std::path::PathBuf, std::fs::Metadata)> {
    for lower in lowers {
        let at = lower.join(rel);
        if let Ok(meta) = std::fs::symlink_metadata(&at) {
            return Some((at, meta));
        }
        // Hidden in this layer: stop looking below it.
        let mut here = lower.clone();
        for part in rel.components() {
            let name = part.as_os_str().to_string_lossy();
            if here.join(format!(".wh.{name}")).exists() {
                return None;
            }
            here.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&here) else {
                break;
            };
            if !meta.is_dir() || here.join(".wh..wh..opq").exists() || own_xattrs(&here).is_none() {
                return None;
            }
        }
    }
    None
}

/// The extended attributes of `path` that are not an overlay's own (kernel overlayfs:
/// `trusted.overlay.*`/`user.overlay.*`; fuse-overlayfs: `user.fuseoverlayfs.*`),
/// sorted with their values; `None` when it is opaque (it hides what is below it) or
/// they cannot be read.
fn own_xattrs(path: &Path) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    const OVERLAY: [&[u8]; 3] = [
        b"trusted.overlay.",
        b"user.overlay.",
        b"user.fuseoverlayfs.",
    ];
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(_) => return None,
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if let Some(prefix) = OVERLAY.iter().find(|p| name.starts_with(p)) {
            // Opaque (hides what is below), a redirect (a renamed directory) or a
            // metacopy (content elsewhere): not a plain directory of the image.
            let own = &name[prefix.len()..];
            if ["opaque", "redirect", "metacopy"]
                .iter()
                .any(|x| own.starts_with(x.as_bytes()))
            {
                return None;
            }
            continue;
        }
        let mut value = vec![0u8; 4096];
        let len = rustix::fs::lgetxattr(path, name, &mut value).ok()?;
        value.truncate(len);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_touched_with_their_metadata_kept_stand_for_the_image() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (upper, lower) = (dir.path().join("upper"), dir.path().join("lower"));
        for d in [&upper, &lower] {
            std::fs::create_dir_all(d.join("run/postgresql")).unwrap_or_else(|e| panic!("{e}"));
        }
        let lowers = [dir.path().join("init"), lower.clone()];
        assert!(only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        // A mode changed.
        let sock = upper.join("run/postgresql");
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o1777))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(
            lower.join("run/postgresql"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        // A file, or a directory the image does not have.
        std::fs::write(sock.join("pid"), "1").unwrap_or_else(|e| panic!("{e}"));
        assert!(!only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        std::fs::remove_file(sock.join("pid")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(upper.join("new")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        std::fs::remove_dir(upper.join("new")).unwrap_or_else(|e| panic!("{e}"));
        // An opaque directory hides the image's content.
        if rustix::fs::lsetxattr(
            &sock,
            "user.fuseoverlayfs.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
        {
            assert!(!only_touched_dirs(&upper, &lowers, MAX_ENTRIES));
        }
        assert!(!only_touched_dirs(&upper, &lowers, 1), "past the limit");
        // A directory the image has only below a whiteout of its parent is new.
        let (top, old) = (dir.path().join("top"), dir.path().join("old"));
        std::fs::create_dir_all(old.join("d/sub")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(&top).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(top.join(".wh.d"), "").unwrap_or_else(|e| panic!("{e}"));
        let up2 = dir.path().join("up2");
        std::fs::create_dir_all(up2.join("d/sub")).unwrap_or_else(|e| panic!("{e}"));
        let stacked = [top.clone(), old.clone()];
        assert!(
            !only_touched_dirs(&up2, &stacked, MAX_ENTRIES),
            "whiteout above"
        );
        std::fs::remove_file(top.join(".wh.d")).unwrap_or_else(|e| panic!("{e}"));
        assert!(only_touched_dirs(&up2, &stacked, MAX_ENTRIES));
        // Or below a directory made opaque above it.
        std::fs::create_dir_all(top.join("d")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(top.join("d/.wh..wh..opq"), "").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !only_touched_dirs(&up2, &stacked, MAX_ENTRIES),
            "opaque above"
        );
    }

    #[test]
    fn a_change_of_content_name_or_metadata_changes_the_listing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("etc/a"), "1").unwrap_or_else(|e| panic!("{e}"));
        let before = listing(root, MAX_ENTRIES).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(before.len(), 2);
        assert_eq!(listing(root, MAX_ENTRIES).ok(), Some(before.clone()));
        // Same size, same name, other content: ctime moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("etc/a"), "2").unwrap_or_else(|e| panic!("{e}"));
        let after = listing(root, MAX_ENTRIES).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(after, before);
        std::fs::write(root.join("b"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listing(root, MAX_ENTRIES).map(|l| l.len()).ok(), Some(3));
    }

    #[test]
    fn reading_stops_past_the_limit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for i in 0..20 {
            std::fs::write(dir.path().join(i.to_string()), "").unwrap_or_else(|e| panic!("{e}"));
        }
        let l = listing(dir.path(), 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.len(), 6);
        assert!(l.iter().any(|e| e.contains("more than 5 entries")));
    }
}
