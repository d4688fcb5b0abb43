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

/// Writes `text` as `file` (relative to `dir`) and checks that `clnrm validate`
/// refuses it with exit 2, saying `says` at `file:line:`.
pub fn assert_refused(dir: &Path, file: &str, text: &str, says: &str, line: u32) {
    std::fs::write(dir.join(file), text).unwrap();
    let out = clnrm(dir).args(["validate", file]).output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let name = Path::new(file).file_name().unwrap().to_string_lossy();
    assert!(
        said.contains(says) && said.contains(&format!("{name}:{line}:")),
        "{said}"
    );
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

/// The images clnrm built for the project at a root (its record of them), removed
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
        // No panic here: this also runs while a failed test unwinds.
        for tag in built_tags(&self.0) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", &tag])
                .output();
        }
    }
}

/// The images built for the project at `root` (their ids) that the engine has, from
/// the project's record of what clnrm built, through `docker`.
pub fn built(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = built_tags(root)
        .iter()
        .filter_map(|tag| {
            let out = std::process::Command::new("docker")
                .args(["image", "inspect", "-f", "{{.Id}}", tag])
                .output()
                .unwrap_or_else(|e| panic!("docker image inspect: {e}"));
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Removes the images clnrm built for the project in `dir` (its record of them).
pub fn remove_built(dir: &Path) {
    drop(RemoveBuilt::of(dir));
}

/// The tags clnrm recorded as built for the project at `root`
/// (`.clnrm/cache/builds.json`).
pub fn built_tags(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(".clnrm/cache/builds.json")).unwrap_or_default();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    record["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["tag"].as_str().map(str::to_owned))
        .collect()
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
