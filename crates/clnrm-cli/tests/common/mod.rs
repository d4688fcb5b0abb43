//! Helpers shared by the integration tests of the `clnrm` binary; each test binary
//! uses a part.
#![allow(dead_code, reason = "each test binary uses a part")]

use assert_cmd::Command;
use std::path::Path;

/// The `clnrm` binary, run in `dir`, without colour.
pub fn clnrm(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("clnrm").unwrap_or_else(|e| panic!("binary: {e}"));
    cmd.current_dir(dir).env("NO_COLOR", "1");
    cmd
}

/// A temporary project (with `.clnrm/`) holding `files` (path, text).
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

/// Copies the directory `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
