//! The event source of `clnrm watch`: file-system events (notify) feed one channel; a
//! debounce window collects a batch; filters run first (the `[watch]` patterns and
//! ignore patterns, `.gitignore`, and clnrm's own outputs such as `.clnrm/` and report
//! files never count). The loop around the pipeline lives with the CLI.

use crate::project::Layout;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Directories whose contents never trigger a cycle.
const NEVER: &[&str] = &[Layout::DIR, ".git", "target", "node_modules"];

/// Which paths count.
#[derive(Debug)]
pub struct Filter {
    root: PathBuf,
    patterns: GlobSet,
    ignore: GlobSet,
    gitignore: Gitignore,
    outputs: BTreeSet<PathBuf>,
}

fn globs(list: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in list {
        if let Ok(g) = Glob::new(g) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

impl Filter {
    /// From `[watch]` patterns and ignore patterns (globs relative to `root`), the
    /// root's `.gitignore`, and files clnrm itself writes (`outputs`).
    pub fn new(root: &Path, patterns: &[String], ignore: &[String], outputs: &[PathBuf]) -> Self {
        let mut gi = GitignoreBuilder::new(root);
        let _ = gi.add(root.join(".gitignore"));
        Self {
            root: root.to_path_buf(),
            patterns: globs(patterns),
            ignore: globs(ignore),
            gitignore: gi.build().unwrap_or_else(|_| Gitignore::empty()),
            outputs: outputs.iter().cloned().collect(),
        }
    }

    /// Whether a change of `path` should start a cycle.
    pub fn wants(&self, path: &Path) -> bool {
        if self.outputs.contains(path) {
            return false;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let user_input = rel.starts_with(Layout::TEMPLATES) || rel == Path::new(Layout::CONFIG);
        if !user_input
            && rel
                .components()
                .any(|c| NEVER.iter().any(|n| c.as_os_str() == *n))
        {
            return false;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        // Editors' temporary files and clnrm's own atomic-write temporaries.
        if name.starts_with(".#")
            || name.ends_with('~')
            || name.contains(".tmp")
            || name.ends_with(".swp")
        {
            return false;
        }
        if self
            .gitignore
            .matched_path_or_any_parents(rel, false)
            .is_ignore()
        {
            return false;
        }
        if self.ignore.is_match(rel) {
            return false;
        }
        user_input || self.patterns.is_match(rel) || self.patterns.is_empty()
    }
}

/// File-system events for a set of paths.
pub struct Source {
    _watcher: notify::RecommendedWatcher,
    rx: mpsc::Receiver<PathBuf>,
    filter: Filter,
    /// Directories watched for some of their files only: those files.
    only: std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Source {
    /// Watches `paths`: directories recursively; a file through its directory (an
    /// editor or `sed -i` saves a new file and renames it over the old one, which a
    /// watch of the file itself would lose), for that file's events only.
    pub fn new(paths: &[PathBuf], filter: Filter) -> notify::Result<Self> {
        let mut dirs = Vec::new();
        let mut only: std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>> =
            std::collections::BTreeMap::new();
        for p in paths {
            match p.parent().filter(|_| p.is_file()) {
                Some(parent) => {
                    only.entry(parent.to_path_buf())
                        .or_default()
                        .insert(p.clone());
                }
                None => dirs.push(p.clone()),
            }
        }
        // A directory watched whole needs no file list.
        only.retain(|parent, _| !dirs.iter().any(|d| parent.starts_with(d)));
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(event) = res
                    && !matches!(event.kind, notify::EventKind::Access(_))
                {
                    for p in event.paths {
                        let _ = tx.send(p);
                    }
                }
            })?;
        for d in &dirs {
            watcher.watch(d, RecursiveMode::Recursive)?;
        }
        for parent in only.keys() {
            watcher.watch(parent, RecursiveMode::NonRecursive)?;
        }
        Ok(Self {
            _watcher: watcher,
            rx,
            filter,
            only,
        })
    }

    /// Whether a change of `path` counts: the filter wants it, and when it lies in a
    /// directory watched for some files only, it is one of them.
    fn wants(&self, path: &Path) -> bool {
        let listed = path
            .parent()
            .and_then(|parent| self.only.get(parent))
            .is_none_or(|files| files.contains(path));
        listed && self.filter.wants(path)
    }

    /// Waits for a wanted change, then collects changes until `debounce` passes
    /// without one; returns the batch. `None` when the source is gone or `stop` says so
    /// (it is polled every 50 ms).
    pub fn next_batch(
        &self,
        debounce: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Option<BTreeSet<PathBuf>> {
        let mut batch = BTreeSet::new();
        let mut quiet_until: Option<Instant> = None;
        loop {
            if stop() {
                return None;
            }
            let wait = match quiet_until {
                Some(t) => t
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
                None => Duration::from_millis(50),
            };
            match self.rx.recv_timeout(wait) {
                Ok(p) => {
                    if self.wants(&p) {
                        batch.insert(p);
                        quiet_until = Some(Instant::now() + debounce);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
            if let Some(t) = quiet_until
                && Instant::now() >= t
            {
                return Some(batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(root: &Path) -> Filter {
        let patterns = vec!["**/*.clnrm.toml".to_owned(), "**/*.tera".to_owned()];
        let outputs = vec![root.join("tests/out/report.json")];
        Filter::new(root, &patterns, &["**/skip/**".to_owned()], &outputs)
    }

    #[test]
    fn own_outputs_ignored_paths_and_temporaries_never_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "generated/\n").expect("gitignore");
        let f = filter(root);
        assert!(f.wants(&root.join("tests/a.clnrm.toml")));
        assert!(
            f.wants(&root.join(".clnrm/templates/_shared.toml.tera")),
            "user macros count"
        );
        assert!(f.wants(&root.join("tests/partials/x.toml.tera")));
        assert!(!f.wants(&root.join(".clnrm/cache/hashes.json")));
        assert!(!f.wants(&root.join(".clnrm/artifacts/m.clnrm.toml")));
        assert!(!f.wants(&root.join("target/x.clnrm.toml")));
        assert!(!f.wants(&root.join("generated/x.clnrm.toml")), "gitignored");
        assert!(
            !f.wants(&root.join("tests/skip/x.clnrm.toml")),
            "ignore_patterns"
        );
        assert!(!f.wants(&root.join("tests/a.clnrm.toml.tmp123")));
        assert!(!f.wants(&root.join("tests/out/report.json")));
        assert!(!f.wants(&root.join("README.md")), "not a watched pattern");
    }

    #[test]
    fn a_burst_of_saves_is_one_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("tests")).expect("mkdir");
        let src = Source::new(std::slice::from_ref(&root), filter(&root)).expect("watch");
        let writer = {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    std::fs::write(root.join(format!("tests/f{i}.clnrm.toml")), "x")
                        .expect("write");
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::fs::write(root.join(".clnrm-ignored.txt"), "x").expect("write");
            })
        };
        let batch = src
            .next_batch(Duration::from_millis(200), &|| false)
            .expect("batch");
        writer.join().expect("writer");
        assert_eq!(batch.len(), 5, "{batch:?}");
    }
}
