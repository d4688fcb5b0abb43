//! The project: its root directory (the nearest ancestor holding `.clnrm/`) and its
//! configuration `.clnrm/config.toml`, read with the same diagnostics as test files.
//! All defaults live in the `Default` impls here.

use crate::diag::{Diagnostic, Diagnostics, Source, Span};
use crate::model::reader::toml_to_value;
use crate::model::reader::{Reader, Table};
use crate::model::{Sp, parse_document};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[watch]`.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchConfig {
    /// Debounce window in milliseconds.
    pub debounce_ms: u64,
    /// Globs of files that trigger a run.
    pub patterns: Vec<String>,
    /// Globs of files that never trigger a run.
    pub ignore_patterns: Vec<String>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            debounce_ms: 300,
            patterns: vec![
                "**/*.clnrm.toml".into(),
                "**/*.clnrm.toml.tera".into(),
                "**/*.tera".into(),
            ],
            ignore_patterns: Vec::new(),
        }
    }
}

/// `[cache]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheConfig {
    /// Whether passing scenarios are skipped when unchanged.
    pub enabled: bool,
    /// Entries kept before the least recently used are evicted.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
        }
    }
}

/// `[executor]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorConfig {
    /// Workers; `None` means the number of CPUs.
    pub worker_count: Option<u64>,
    /// Containers alive at once, at most.
    pub max_concurrent_containers: u64,
    /// Memory limit per container in MiB.
    pub container_memory_mb: u64,
    /// CPU limit per container in cores.
    pub container_cpu_limit: f64,
    /// Deadline of one engine call, in milliseconds.
    pub engine_timeout_ms: u64,
    /// Deadline of one image pull, in milliseconds.
    pub pull_timeout_ms: u64,
    /// Runs after a failure, for scenarios without their own `retries`.
    pub retries: u64,
    /// A `flaky` scenario fails the run.
    pub flaky_fails: bool,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            worker_count: None,
            max_concurrent_containers: 20,
            container_memory_mb: 512,
            container_cpu_limit: 1.0,
            engine_timeout_ms: crate::model::defaults::ENGINE_TIMEOUT_MS,
            pull_timeout_ms: crate::model::defaults::PULL_TIMEOUT_MS,
            retries: 0,
            flaky_fails: false,
        }
    }
}

impl ExecutorConfig {
    /// The deadline of one engine call.
    pub fn engine_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.engine_timeout_ms)
    }

    /// The deadline of one image pull.
    pub fn pull_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.pull_timeout_ms)
    }
}

/// `[diff]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffConfig {
    /// Baseline file, relative to the project root.
    pub baseline_path: String,
    /// Drop timestamps before comparing.
    pub ignore_timestamps: bool,
    /// Print only differing spans.
    pub show_only_diffs: bool,
    /// Deepest level printed.
    pub max_display_depth: u64,
    /// Attribute-key globs left out of comparisons.
    pub ignore_attributes: Vec<String>,
    /// Per-connection attributes (left out by default) to keep, as globs.
    pub keep_attributes: Vec<String>,
}

impl Default for DiffConfig {
    fn default() -> Self {
        Self {
            baseline_path: Layout::BASELINE.into(),
            ignore_timestamps: true,
            show_only_diffs: false,
            max_display_depth: 10,
            ignore_attributes: Vec::new(),
            keep_attributes: Vec::new(),
        }
    }
}

/// One `[server] webhooks` entry: a POST to `url` for each of `events`, signed with
/// HMAC-SHA256 of `secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// `http://HOST[:PORT]/PATH`.
    pub url: String,
    /// Which events (`run.finished`).
    pub events: Vec<String>,
    /// The signing key.
    pub secret: String,
}

/// The events a webhook may ask for.
pub const WEBHOOK_EVENTS: &[&str] = &["run.finished"];

/// `.clnrm/config.toml`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `[watch]`.
    pub watch: WatchConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[executor]` and `[executor.limits]`.
    pub executor: ExecutorConfig,
    /// `[diff]`.
    pub diff: DiffConfig,
    /// `[snapshot] redact`: regex → replacement, before every file's own.
    pub snapshot_redact: Vec<(String, String)>,
    /// `[server] webhooks`: where the runs service posts what happens to runs.
    pub webhooks: Vec<Webhook>,
    /// `[vars]`: template variables for every file.
    pub vars: BTreeMap<String, tera::Value>,
}

/// Where clnrm keeps its files in a project: every `.clnrm/` path, in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    baseline: PathBuf,
}

impl Layout {
    /// The directory that marks a project root.
    pub const DIR: &'static str = ".clnrm";
    /// The configuration, relative to the root.
    pub const CONFIG: &'static str = ".clnrm/config.toml";
    /// User templates (includes, macros), relative to the root.
    pub const TEMPLATES: &'static str = ".clnrm/templates";
    /// The change-detection cache, relative to the root.
    pub const CACHE: &'static str = ".clnrm/cache";
    /// The spans of each scenario's latest run, relative to the root.
    pub const ARTIFACTS: &'static str = ".clnrm/artifacts";
    /// The baseline when `diff.baseline_path` is not set.
    pub const BASELINE: &'static str = ".clnrm/trace.json";
    /// Recorded scenario durations, relative to the root (SPEC §8; commit it).
    pub const TIMINGS: &'static str = ".clnrm/timings.json";
    /// Output snapshots, relative to the root.
    pub const SNAPSHOTS: &'static str = ".clnrm/snapshots";
    /// Saved bench results, relative to the root.
    pub const BENCH: &'static str = ".clnrm/bench";
    /// Each scenario's last outcome (for `--failed`), relative to the root.
    pub const OUTCOMES: &'static str = ".clnrm/outcomes.json";

    /// The layout of the project at `root` whose baseline is `baseline` (relative to it).
    pub fn new(root: &Path, baseline: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            baseline: root.join(baseline),
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.clnrm/`.
    pub fn dir(&self) -> PathBuf {
        self.root.join(Self::DIR)
    }

    /// `.clnrm/config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(Self::CONFIG)
    }

    /// `.clnrm/templates/`.
    pub fn templates(&self) -> PathBuf {
        self.root.join(Self::TEMPLATES)
    }

    /// `.clnrm/cache/`.
    pub fn cache(&self) -> PathBuf {
        self.root.join(Self::CACHE)
    }

    /// `.clnrm/bench/NAME.json`.
    pub fn bench(&self, name: &str) -> PathBuf {
        self.root.join(Self::BENCH).join(format!("{name}.json"))
    }

    /// `.clnrm/snapshots/`.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join(Self::SNAPSHOTS)
    }

    /// The recorded durations (`.clnrm/timings.json`).
    pub fn timings(&self) -> PathBuf {
        self.root.join(Self::TIMINGS)
    }

    /// Each scenario's last outcome (`.clnrm/outcomes.json`).
    pub fn outcomes(&self) -> PathBuf {
        self.root.join(Self::OUTCOMES)
    }

    /// `.clnrm/artifacts/`.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join(Self::ARTIFACTS)
    }

    /// The baseline file (`diff.baseline_path`).
    pub fn baseline(&self) -> &Path {
        &self.baseline
    }
}

/// A project root and its configuration.
#[derive(Clone, Debug)]
pub struct Project {
    /// The directory holding `.clnrm/` (or the starting directory when none does).
    pub root: PathBuf,
    /// The configuration, defaults where the file is silent.
    pub config: Config,
}

impl Project {
    /// Finds the project containing `start` and reads its configuration.
    pub fn discover(start: &Path) -> (Self, Vec<Diagnostic>) {
        let root = start
            .ancestors()
            .find(|d| d.join(Layout::DIR).is_dir())
            .unwrap_or(start)
            .to_path_buf();
        let path = root.join(Layout::CONFIG);
        let (config, diags) = match std::fs::read_to_string(&path) {
            Ok(text) => parse_config(&Source::file(Layout::CONFIG, text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Config::default(), Vec::new()),
            Err(e) => {
                let d = Diagnostic::error(
                    crate::diag::Code::Io,
                    format!(
                        "cannot read {}: {}",
                        Layout::CONFIG,
                        crate::discover::io_reason(&e)
                    ),
                )
                .in_file(Layout::CONFIG);
                (Config::default(), vec![d])
            }
        };
        (Self { root, config }, diags)
    }

    /// Where clnrm keeps its files in this project.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.root, &self.config.diff.baseline_path)
    }

    /// `path` relative to the root when it lies inside, as shown to users.
    pub fn display(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let rel = rel.strip_prefix(".").unwrap_or(rel);
        rel.display().to_string()
    }
}

/// Reads a configuration; unknown keys are warnings, wrong types errors.
pub fn parse_config(src: &Arc<Source>) -> (Config, Vec<Diagnostic>) {
    let mut diags = Diagnostics::default();
    let mut config = Config::default();
    if let Some(doc) = parse_document(src, src.text(), &mut diags) {
        let mut r = Reader {
            src,
            diags: &mut diags,
        };
        let mut root = Table::new(doc.get_ref(), Span::new(0, 0), "");
        read_config(&mut r, &mut root, &mut config);
        root.finish(&mut r);
    }
    (config, diags.into_sorted())
}

fn read_config(r: &mut Reader<'_>, root: &mut Table<'_, '_>, c: &mut Config) {
    fn set<T>(slot: &mut T, v: Option<Sp<T>>) {
        if let Some(v) = v {
            *slot = v.value;
        }
    }
    fn set_list(slot: &mut Vec<String>, v: Option<Vec<Sp<String>>>) {
        if let Some(v) = v {
            *slot = v.into_iter().map(|s| s.value).collect();
        }
    }
    if let Some(mut t) = root.table(r, "watch") {
        set(&mut c.watch.debounce_ms, t.get(r, "debounce_ms"));
        set_list(&mut c.watch.patterns, t.get(r, "patterns"));
        set_list(&mut c.watch.ignore_patterns, t.get(r, "ignore_patterns"));
        t.finish(r);
    }
    if let Some(mut t) = root.table(r, "cache") {
        set(&mut c.cache.enabled, t.get(r, "enabled"));
        set(&mut c.cache.max_entries, t.get(r, "max_entries"));
        t.finish(r);
    }
    if let Some(mut t) = root.table(r, "executor") {
        c.executor.worker_count = t
            .get::<Sp<u64>>(r, "worker_count")
            .map(|v| v.value)
            .or(c.executor.worker_count);
        set(
            &mut c.executor.max_concurrent_containers,
            t.get(r, "max_concurrent_containers"),
        );
        for (key, slot) in [
            ("engine_timeout_ms", &mut c.executor.engine_timeout_ms),
            ("pull_timeout_ms", &mut c.executor.pull_timeout_ms),
        ] {
            match t.get::<Sp<u64>>(r, key) {
                Some(v) if v.value == 0 => r.diags.push(
                    Diagnostic::error(
                        crate::diag::Code::OutOfRange,
                        format!("`{key}` 0 would fail every call at once"),
                    )
                    .at(r.src, v.span, "expected 1 or more (milliseconds)"),
                ),
                Some(v) => *slot = v.value,
                None => {}
            }
        }
        match t.get::<Sp<u64>>(r, "retries") {
            Some(v) if v.value > crate::model::defaults::MAX_RETRIES => r.diags.push(
                Diagnostic::error(
                    crate::diag::Code::OutOfRange,
                    format!(
                        "`retries` {} is more than {}",
                        v.value,
                        crate::model::defaults::MAX_RETRIES
                    ),
                )
                .at(r.src, v.span, "expected 0 to 100 (runs after the first)"),
            ),
            Some(v) => c.executor.retries = v.value,
            None => {}
        }
        set(&mut c.executor.flaky_fails, t.get(r, "flaky_fails"));
        if let Some(mut l) = t.table(r, "limits") {
            set(
                &mut c.executor.container_memory_mb,
                l.get(r, "container_memory_mb"),
            );
            set(
                &mut c.executor.container_cpu_limit,
                l.get(r, "container_cpu_limit"),
            );
            l.finish(r);
        }
        t.finish(r);
    }
    if let Some(mut t) = root.table(r, "diff") {
        set(&mut c.diff.baseline_path, t.get(r, "baseline_path"));
        set(&mut c.diff.ignore_timestamps, t.get(r, "ignore_timestamps"));
        set(&mut c.diff.show_only_diffs, t.get(r, "show_only_diffs"));
        set(&mut c.diff.max_display_depth, t.get(r, "max_display_depth"));
        set_list(&mut c.diff.ignore_attributes, t.get(r, "ignore_attributes"));
        set_list(&mut c.diff.keep_attributes, t.get(r, "keep_attributes"));
        t.finish(r);
    }
    if let Some(t) = root.table(r, "snapshot") {
        let table = crate::model::read_snapshot_table(r, t);
        c.snapshot_redact = table
            .redact
            .entries
            .into_iter()
            .map(|(k, v)| (k.value, v.value))
            .collect();
    }
    if let Some(mut t) = root.table(r, "server") {
        for mut w in t.tables(r, "webhooks") {
            let url: Option<Sp<String>> = w.req(r, "url", "\"http://hooks.internal:8080/clnrm\"");
            let events: Vec<Sp<String>> = w.get(r, "events").unwrap_or_default();
            let secret: Option<Sp<String>> = w.req(r, "secret", "\"a long random string\"");
            w.finish(r);
            let (Some(url), Some(secret)) = (url, secret) else {
                continue;
            };
            let mut ok = true;
            if !url.value.starts_with("http://") {
                ok = false;
                r.diags.push(
                    Diagnostic::error(
                        crate::diag::Code::BadValue,
                        format!("webhook URL \"{}\" is not http://", url.value),
                    )
                    .at(r.src, url.span, "expected http://HOST[:PORT]/PATH (https is not supported yet: put a proxy in between)"),
                );
            }
            for e in &events {
                if !WEBHOOK_EVENTS.contains(&e.value.as_str()) {
                    ok = false;
                    r.diags.push(
                        Diagnostic::error(
                            crate::diag::Code::BadValue,
                            format!("unknown webhook event \"{}\"", e.value),
                        )
                        .at(r.src, e.span, "expected \"run.finished\""),
                    );
                }
            }
            if ok {
                let events = if events.is_empty() {
                    vec!["run.finished".to_owned()]
                } else {
                    events.into_iter().map(|e| e.value).collect()
                };
                c.webhooks.push(Webhook {
                    url: url.value,
                    events,
                    secret: secret.value,
                });
            }
        }
        t.finish(r);
    }
    let vars = root.map(r, "vars", |_, v, _| {
        Some(crate::model::reader::to_toml_value(v.get_ref()))
    });
    c.vars = vars
        .entries
        .into_iter()
        .map(|(k, v)| (k.value, toml_to_value(&v)))
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_overrides_defaults_and_reports_typos() {
        let src = Source::file(
            ".clnrm/config.toml",
            "[watch]\ndebounce_ms = 100\n[executor.limits]\ncontainer_memory_mb = 64\n[cache]\nenabeld = false\n[vars]\nregion = \"eu\"\n",
        );
        let (config, diags) = parse_config(&src);
        assert_eq!(config.watch.debounce_ms, 100);
        assert_eq!(config.executor.container_memory_mb, 64);
        assert!(config.cache.enabled);
        assert_eq!(config.vars["region"], "eu");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `enabled`?"));
    }

    #[test]
    fn engine_deadlines_are_read_and_zero_is_refused() {
        let src = Source::file(
            ".clnrm/config.toml",
            "[executor]\nengine_timeout_ms = 2000\npull_timeout_ms = 0\n",
        );
        let (config, diags) = parse_config(&src);
        assert_eq!(config.executor.engine_timeout_ms, 2000);
        assert_eq!(config.executor.pull_timeout_ms, 600_000);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("pull_timeout_ms"), "{diags:?}");
    }

    #[test]
    fn webhooks_are_read_and_bad_ones_said_where() {
        let src = Source::file(
            ".clnrm/config.toml",
            "[server]\nwebhooks = [\n  { url = \"http://h:1/x\", secret = \"s\" },\n  { url = \"https://h/y\", secret = \"s\", events = [\"run.lost\"] },\n  { url = \"http://h:2/z\", events = [\"run.finished\"] },\n]\n",
        );
        let (config, diags) = parse_config(&src);
        assert_eq!(
            config.webhooks,
            vec![Webhook {
                url: "http://h:1/x".into(),
                events: vec!["run.finished".into()],
                secret: "s".into(),
            }]
        );
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(diags.len(), 3, "{messages:?}");
        assert!(messages[0].contains("is not http://"), "{messages:?}");
        assert!(
            messages[1].contains("unknown webhook event \"run.lost\""),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("secret")),
            "{messages:?}"
        );
    }

    #[test]
    fn wrong_type_in_config_is_an_error() {
        let (_, diags) = parse_config(&Source::file("c", "[watch]\ndebounce_ms = \"fast\"\n"));
        assert!(diags.iter().any(Diagnostic::is_error));
    }
}
