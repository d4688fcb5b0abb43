//! Finding test definitions: `*.clnrm.toml` and `*.clnrm.toml.tera`, recursively,
//! honouring `.gitignore`, skipping `.git`, `target`, `node_modules` and `.clnrm`,
//! in a stable (sorted) order. Reading the files is not done here.

use crate::diag::{Code, Diagnostic};
use std::path::{Path, PathBuf};

/// Directory names never searched.
pub const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules", ".clnrm"];

/// Whether a file name is a test definition.
pub fn is_test_file_name(name: &str) -> bool {
    name.ends_with(".clnrm.toml") || name.ends_with(".clnrm.toml.tera")
}

/// Test definitions under `paths`, sorted and without duplicates: each named file,
/// whatever its name, and the files of each named directory that follow the naming
/// rule. A named path that does not exist is a diagnostic.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::Io,
                        format!("cannot read {}: {}", path.display(), io_reason(&e)),
                    )
                    .in_file(path.display().to_string()),
                );
                continue;
            }
        };
        if !meta.is_dir() {
            // A file named explicitly is read as a test definition whatever its
            // name, as pytest collects a file it is given; only directories are
            // searched by the naming rule.
            files.push(path.clone());
            continue;
        }
        files.extend(walk(path));
    }
    files.sort();
    files.dedup();
    (files, diags)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .ignore(false)
        .parents(true)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir
                && e.depth() > 0
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| SKIPPED_DIRS.contains(&n)))
        })
        .build();
    walker
        .filter_map(Result::ok)
        .filter(|e| e.depth() > 0 && e.file_name().to_str().is_some_and(is_test_file_name))
        .map(ignore::DirEntry::into_path)
        .collect()
}

// A directory named like a test file is kept: loading reports it as unreadable.

/// A short reason for an I/O error, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_test_definitions_and_skips_ignored_dirs() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for p in [
            "a.clnrm.toml",
            "b/c.clnrm.toml.tera",
            "Cargo.toml",
            "x.toml",
            "target/t.clnrm.toml",
            "node_modules/n.clnrm.toml",
            ".clnrm/c.clnrm.toml",
            "ignored/i.clnrm.toml",
        ] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap_or(root))?;
            std::fs::write(path, "")?;
        }
        std::fs::write(root.join(".gitignore"), "ignored/\n")?;
        let (files, diags) = discover(&[root.to_path_buf()]);
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
            .collect();
        assert_eq!(names, ["a.clnrm.toml", "b/c.clnrm.toml.tera"]);
        assert!(diags.is_empty());
        Ok(())
    }

    #[test]
    fn a_named_file_is_taken_whatever_its_name() {
        let (files, diags) = discover(&[PathBuf::from("Cargo.toml")]);
        assert_eq!(files, vec![PathBuf::from("Cargo.toml")]);
        assert!(diags.is_empty());
    }
}
