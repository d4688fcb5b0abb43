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

/// The images clnrm built for the project at a root (label `clnrm.build`), removed
/// when the test ends, passed or not.
pub struct RemoveBuilt(pub std::path::PathBuf);

impl RemoveBuilt {
    /// For the project in `dir` (the root as clnrm names it: canonical).
    pub fn of(dir: &Path) -> Self {
        Self(
            dir.canonicalize()
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
        )
    }
}

impl Drop for RemoveBuilt {
    fn drop(&mut self) {
        let out = std::process::Command::new("docker")
            .args(["images", "-q", "--no-trunc", "--filter"])
            .arg(format!("label=clnrm.build={}", self.0.display()))
            .output();
        for id in out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
        {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", id])
                .output();
        }
    }
}

/// The repository's root.
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The build context `rel` of the repository (an example's app or proxy), checked to
/// hold what `scripts/example-images.sh` downloads into an app's (its wheels).
pub fn context(rel: &str) -> std::path::PathBuf {
    let path = repo_root().join(rel);
    assert!(
        !path.join("requirements.txt").is_file() || path.join("wheels/.requirements").is_file(),
        "{rel}/wheels/ is missing: run scripts/example-images.sh (scripts/setup.sh does)"
    );
    path
}

/// Copies the build context `rel` of the repository ([`context`]) to `rel` in `dir`.
pub fn copy_context(rel: &str, dir: &Path) {
    copy_dir(&context(rel), &dir.join(rel));
}
