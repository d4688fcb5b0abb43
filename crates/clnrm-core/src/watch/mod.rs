//! The event source of `clnrm watch`: file-system events (notify) feed one channel; a
//! debounce window collects a batch; filters run first (the `[watch]` patterns and
//! ignore patterns, `.gitignore`, and clnrm's own outputs such as `.clnrm/` and report
//! files never count). Bind-mounted host paths and build contexts are watched too; in
//! a build context, what its `.dockerignore` leaves out does not count. The loop around the pipeline lives with the CLI.

use crate::build::DockerIgnore;
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
    /// What clnrm writes besides `.clnrm/` (grows as files gain `[report]` tables).
    outputs: std::sync::RwLock<BTreeSet<PathBuf>>,
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
            outputs: std::sync::RwLock::new(outputs.iter().cloned().collect()),
        }
    }

    /// Counts `paths` among clnrm's outputs from now on.
    pub fn add_outputs(&self, paths: impl IntoIterator<Item = PathBuf>) {
        self.outputs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(paths);
    }

    /// Whether `path` is something clnrm itself writes (under `.clnrm/` but the
    /// user's templates and configuration, a report file or directory): it never
    /// counts, in a bind-mounted input either.
    pub fn is_output(&self, path: &Path) -> bool {
        let outputs = self
            .outputs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if outputs.iter().any(|o| path.starts_with(o)) {
            return true;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        rel.starts_with(Layout::DIR)
            && !rel.starts_with(Layout::TEMPLATES)
            && rel != Path::new(Layout::CONFIG)
    }

    /// Whether a change of `path` should start a cycle.
    pub fn wants(&self, path: &Path) -> bool {
        if self.is_output(path) {
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
        if temporary(path) {
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
    rx: mpsc::Receiver<PathBuf>,
    shared: std::sync::Arc<Shared>,
}

/// What the source and its [`Inputs`] handle share.
struct Shared {
    watcher: std::sync::Mutex<notify::RecommendedWatcher>,
    filter: Filter,
    /// Directories watched for some of their files only: those files.
    only: std::sync::Mutex<std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>>>,
    /// Directories watched whole.
    dirs: std::sync::Mutex<Vec<PathBuf>>,
    /// Host paths scenarios bind-mount: a change in one always counts (no pattern,
    /// ignore file or project boundary applies to what a container reads).
    inputs: std::sync::Mutex<BTreeSet<PathBuf>>,
    /// Files in inputs that the runs themselves write (a writable mount): their
    /// changes do not count, or every run would start the next.
    ignored: std::sync::Mutex<BTreeSet<PathBuf>>,
    /// Inputs that did not exist when they were added (watched through the nearest
    /// directory that did): watched themselves once they appear.
    pending: std::sync::Mutex<BTreeSet<PathBuf>>,
    /// Build contexts (SPEC §14), each with its `.dockerignore` and the Dockerfiles
    /// built from it: a change counts unless the engine would not be sent it
    /// (`.dockerignore` is read again when it changes).
    contexts:
        std::sync::Mutex<std::collections::BTreeMap<PathBuf, (DockerIgnore, BTreeSet<String>)>>,
}

/// A handle that adds host inputs to a running [`Source`].
#[derive(Clone)]
pub struct Inputs(std::sync::Arc<Shared>);

impl Inputs {
    /// Watches `paths` (bind-mounted host paths) too, those not yet watched; a path
    /// that does not exist yet is watched through the nearest directory that does,
    /// and itself once it appears. What cannot be watched, each with why (the others
    /// are watched).
    pub fn add(&self, paths: &BTreeSet<PathBuf>) -> Vec<String> {
        let fresh: Vec<PathBuf> = {
            let mut known = lock(&self.0.inputs);
            paths
                .iter()
                .filter(|p| known.insert((*p).clone()))
                .cloned()
                .collect()
        };
        let mut failed = Vec::new();
        for p in fresh {
            if let Err(e) = self.0.watch_input(&p) {
                failed.push(format!("cannot watch {}: {e}", p.display()));
            }
        }
        failed
    }

    /// Watches `contexts` (build contexts, each with the Dockerfiles built from it) too,
    /// those not yet watched: a change in one counts unless its `.dockerignore` leaves
    /// it out (its Dockerfiles and `.dockerignore` always count). What cannot be
    /// watched, each with why.
    pub fn contexts(
        &self,
        contexts: &std::collections::BTreeMap<PathBuf, BTreeSet<String>>,
    ) -> Vec<String> {
        let fresh: Vec<PathBuf> = {
            let mut known = lock(&self.0.contexts);
            let mut fresh = Vec::new();
            for (c, dockerfiles) in contexts {
                match known.get_mut(c) {
                    Some((_, names)) => names.extend(dockerfiles.iter().cloned()),
                    None => {
                        known.insert(c.clone(), (ignore_of(c), dockerfiles.clone()));
                        fresh.push(c.clone());
                    }
                }
            }
            fresh
        };
        let mut failed = Vec::new();
        for c in fresh {
            if let Err(e) = self.0.watch_input(&c) {
                failed.push(format!("cannot watch build context {}: {e}", c.display()));
            }
        }
        failed
    }

    /// Counts `paths` (report files a file's `[report]` table names) among clnrm's
    /// outputs from now on.
    pub fn outputs(&self, paths: impl IntoIterator<Item = PathBuf>) {
        self.0.filter.add_outputs(paths);
    }

    /// Stops counting changes of `paths` (files in inputs the runs themselves write).
    pub fn ignore(&self, paths: &BTreeSet<PathBuf>) {
        lock(&self.0.ignored).extend(paths.iter().cloned());
    }
}

/// The `.dockerignore` of `context`; one that cannot be read leaves nothing out.
fn ignore_of(context: &Path) -> DockerIgnore {
    crate::build::read_ignore(context).unwrap_or_default()
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Watches input `p`; remembers it when it is not there yet.
    fn watch_input(&self, p: &Path) -> notify::Result<()> {
        if !p.exists() {
            lock(&self.pending).insert(p.to_path_buf());
        }
        self.watch(p)
    }

    /// `path` changed: a pending input it is (or lies under) is watched again, itself
    /// once it exists (a directory created after `watch` started is watched
    /// recursively from then), else through its new nearest directory.
    fn appeared(&self, path: &Path) {
        let under: Vec<PathBuf> = {
            let mut pending = lock(&self.pending);
            let under: Vec<PathBuf> = pending
                .iter()
                .filter(|p| p.starts_with(path))
                .cloned()
                .collect();
            for p in under.iter().filter(|p| p.exists()) {
                pending.remove(p);
            }
            under
        };
        for p in under {
            // A failure leaves it watched as it was.
            let _ = self.watch(&p);
        }
    }

    /// Watches `p`: a directory recursively; a file (or a path not there yet) through
    /// its directory, for its own events only (an editor or `sed -i` saves a new file
    /// and renames it over the old one, which a watch of the file itself would lose).
    fn watch(&self, p: &Path) -> notify::Result<()> {
        if p.is_dir() {
            if lock(&self.dirs).iter().any(|d| p.starts_with(d)) {
                return Ok(());
            }
            lock(&self.watcher).watch(p, RecursiveMode::Recursive)?;
            lock(&self.dirs).push(p.to_path_buf());
            return Ok(());
        }
        let Some(parent) = p.ancestors().skip(1).find(|a| a.is_dir()) else {
            return Ok(());
        };
        let mut only = lock(&self.only);
        let fresh = !only.contains_key(parent);
        only.entry(parent.to_path_buf())
            .or_default()
            .insert(p.to_path_buf());
        if fresh && !lock(&self.dirs).iter().any(|d| parent.starts_with(d)) {
            lock(&self.watcher).watch(parent, RecursiveMode::NonRecursive)?;
        }
        Ok(())
    }

    /// Whether a change of `path` counts: the filter wants it and, when it lies in a
    /// directory watched for some files only, it is one of them; or it lies in a
    /// bind-mounted input the runs do not write to themselves (and is no editor's
    /// temporary).
    fn wants(&self, path: &Path) -> bool {
        let listed = path.parent().is_none_or(|parent| {
            let in_dirs = lock(&self.dirs).iter().any(|d| parent.starts_with(d));
            in_dirs
                || lock(&self.only)
                    .get(parent)
                    .is_none_or(|files| files.contains(path))
        });
        if listed && self.filter.wants(path) {
            return true;
        }
        if temporary(path) || self.filter.is_output(path) {
            return false;
        }
        if lock(&self.ignored).contains(path) {
            return false;
        }
        lock(&self.inputs).iter().any(|i| path.starts_with(i)) || self.in_context(path)
    }

    /// Whether `path` lies in a build context and the engine would be sent it (the
    /// Dockerfile and `.dockerignore` are always sent; `.dockerignore` is read again
    /// when it changes).
    fn in_context(&self, path: &Path) -> bool {
        let mut contexts = lock(&self.contexts);
        for (context, (ignore, dockerfiles)) in contexts.iter_mut() {
            let Ok(rel) = path.strip_prefix(context) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel == ".dockerignore" {
                *ignore = ignore_of(context);
                return true;
            }
            if rel.is_empty() || dockerfiles.contains(&rel) || !ignore.excludes(&rel) {
                return true;
            }
        }
        false
    }
}

/// Whether `path` names an editor's temporary file or clnrm's own atomic-write one.
fn temporary(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // `x.tmp`, and clnrm's own atomic writes (`x.tmp<pid>`); not `x.tmpl`.
    let tmp = name
        .rsplit_once('.')
        .and_then(|(_, ext)| ext.strip_prefix("tmp"))
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()));
    name.starts_with(".#") || name.ends_with('~') || tmp || name.ends_with(".swp")
}

impl Source {
    /// Watches `paths` (test files and directories, the filter applies) and `inputs`
    /// (bind-mounted host paths, counted unless clnrm writes them); what of `inputs`
    /// cannot be watched, each with why, beside it.
    pub fn new(
        paths: &[PathBuf],
        filter: Filter,
        inputs: &BTreeSet<PathBuf>,
    ) -> notify::Result<(Self, Vec<String>)> {
        let (tx, rx) = mpsc::channel();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && !matches!(event.kind, notify::EventKind::Access(_))
            {
                for p in event.paths {
                    let _ = tx.send(p);
                }
            }
        })?;
        let shared = std::sync::Arc::new(Shared {
            watcher: std::sync::Mutex::new(watcher),
            filter,
            only: std::sync::Mutex::default(),
            dirs: std::sync::Mutex::default(),
            inputs: std::sync::Mutex::default(),
            ignored: std::sync::Mutex::default(),
            pending: std::sync::Mutex::default(),
            contexts: std::sync::Mutex::default(),
        });
        // Directories first, so that a file inside one needs no watch of its own.
        let (dirs, files): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| p.is_dir());
        for p in dirs.into_iter().chain(files) {
            shared.watch(p)?;
        }
        let source = Self { rx, shared };
        let failed = source.inputs().add(inputs);
        Ok((source, failed))
    }

    /// A handle that adds bind-mounted host paths to watch.
    pub fn inputs(&self) -> Inputs {
        Inputs(self.shared.clone())
    }

    fn wants(&self, path: &Path) -> bool {
        self.shared.wants(path)
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
                    self.shared.appeared(&p);
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
    fn temporaries_are_named_as_editors_and_clnrm_name_them() {
        for t in [
            "a.clnrm.tmp123",
            "x.tmp",
            ".#a.toml",
            "a.toml~",
            ".a.toml.swp",
        ] {
            assert!(temporary(Path::new(t)), "{t}");
        }
        for t in ["nginx.conf.tmpl", "a.clnrm.toml", "tmp", "x.tmp1a"] {
            assert!(!temporary(Path::new(t)), "{t}");
        }
    }

    #[test]
    fn a_mounted_input_counts_but_not_what_clnrm_writes_into_it_and_appears_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("tests")).expect("mkdir");
        let reports = root.join("reports");
        let f = Filter::new(&root, &[], &[], std::slice::from_ref(&reports));
        assert!(f.is_output(&root.join(".clnrm/cache/hashes.json")));
        assert!(f.is_output(&reports.join("report.json")));
        assert!(!f.is_output(&root.join(".clnrm/config.toml")));
        // A `[report]` table written during the watch.
        assert!(!f.is_output(&root.join("late/junit.xml")));
        f.add_outputs([root.join("late/junit.xml")]);
        assert!(f.is_output(&root.join("late/junit.xml")));
        // A scenario mounts the whole project (host_path = "..").
        let whole: BTreeSet<PathBuf> = [root.clone()].into();
        let (src, failed) = Source::new(&[root.join("tests")], f, &whole).expect("watch");
        assert!(failed.is_empty(), "{failed:?}");
        assert!(!src.wants(&root.join(".clnrm/outcomes.json")));
        assert!(!src.wants(&reports.join("junit.xml")));
        assert!(src.wants(&root.join("app.py")));
        drop(src);
        // Another mounts `data/`, which is not there yet: watched once it appears.
        let data = root.join("data");
        // Watched through `deep/` once that is made, then itself.
        let deep = root.join("deep/er");
        let f = Filter::new(&root, &[], &[], &[]);
        let (src, _) = Source::new(
            &[root.join("tests")],
            f,
            &[data.clone(), deep.clone()].into(),
        )
        .expect("watch");
        assert!(lock(&src.shared.pending).contains(&data));
        std::fs::create_dir_all(data.join("sub")).expect("mkdir");
        // Never waits past 10 s: a missed event fails the test instead of hanging it.
        let t0 = Instant::now();
        let late = || t0.elapsed() > Duration::from_secs(10);
        let first = src
            .next_batch(Duration::from_millis(200), &late)
            .expect("batch");
        assert!(first.contains(&data), "{first:?}");
        assert!(!lock(&src.shared.pending).contains(&data));
        std::fs::write(data.join("sub/x.conf"), "x").expect("write");
        let batch = src
            .next_batch(Duration::from_millis(200), &late)
            .expect("the change inside the new directory");
        assert!(batch.contains(&data.join("sub/x.conf")), "{batch:?}");
        // `deep/` is made (its event seen), then `deep/er` and a file in it.
        std::fs::create_dir(root.join("deep")).expect("mkdir");
        let t1 = Instant::now();
        while lock(&src.shared.only)
            .get(&root.join("deep"))
            .is_none_or(|files| !files.contains(&deep))
        {
            assert!(
                t1.elapsed() < Duration::from_secs(10),
                "deep/ never watched"
            );
            let _ = src.next_batch(Duration::from_millis(50), &|| {
                t1.elapsed() > Duration::from_millis(200)
            });
        }
        // Its appearance is a change (a cycle reads what it holds), and so is what
        // is written in it after.
        std::fs::create_dir(&deep).expect("mkdir");
        let t2 = Instant::now();
        let until = |want: PathBuf| {
            let mut seen = BTreeSet::new();
            while !seen.contains(&want) {
                assert!(t2.elapsed() < Duration::from_secs(10), "{seen:?}");
                if let Some(b) = src.next_batch(Duration::from_millis(100), &|| {
                    t2.elapsed() > Duration::from_secs(10)
                }) {
                    seen.extend(b);
                }
            }
        };
        until(deep.clone());
        std::fs::write(deep.join("y.conf"), "y").expect("write");
        until(deep.join("y.conf"));
    }

    #[test]
    fn a_burst_of_saves_is_one_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("tests")).expect("mkdir");
        let (src, _) = Source::new(std::slice::from_ref(&root), filter(&root), &BTreeSet::new())
            .expect("watch");
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
