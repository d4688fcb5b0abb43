//! Writing the files clnrm keeps under `.clnrm/`: atomically (a temporary file, then
//! a rename), and under the cache directory's lock when several processes may
//! rewrite the same file.

use std::fs::File;
use std::path::Path;

/// Writes `bytes` to `path` atomically (a temporary file, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// The lock every writer of a file under cache directory `dir` holds while it reads
/// and rewrites it (the directory made when missing); released when dropped.
pub(crate) fn lock_dir(dir: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let lock = File::create(dir.join("lock"))?;
    lock.lock()?;
    Ok(lock)
}
