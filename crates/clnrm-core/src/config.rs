//! How a run runs, resolved once: command-line flags over the test file over
//! `.clnrm/config.toml` over the defaults (which live in [`crate::project`]). Every
//! later stage reads a [`RunConfig`]; none looks at flags or the config again.

use crate::project::Project;
use std::path::PathBuf;

/// What the command line says about a run; `None` and `false` mean "not given".
#[derive(Clone, Debug, Default)]
pub struct RunFlags {
    /// `--workers N`.
    pub workers: Option<u64>,
    /// `--fail-fast`.
    pub fail_fast: bool,
    /// `--force`.
    pub force: bool,
    /// `--no-pool`.
    pub no_pool: bool,
    /// `--filter GLOB`, repeatable: any of them.
    pub filter: Vec<String>,
    /// `--partition K/N`.
    pub partition: Option<String>,
    /// `--tag TAG` (repeatable).
    pub tags: Vec<String>,
    /// `--skip-tag TAG` (repeatable).
    pub skip_tags: Vec<String>,
    /// `--save-timings`.
    pub save_timings: bool,
    /// `--retries N`.
    pub retries: Option<u64>,
    /// `--flaky-fails`.
    pub flaky_fails: bool,
    /// `--update-snapshots`.
    pub update_snapshots: bool,
    /// `--memory MB`.
    pub memory_mb: Option<u64>,
    /// `--cpu CORES`.
    pub cpus: Option<f64>,
    /// `--update-baseline`.
    pub update_baseline: bool,
    /// `--report-dir DIR`.
    pub report_dir: Option<PathBuf>,
    /// `--failed`: only the scenarios whose last outcome was failed or error.
    pub failed: bool,
    /// Only these scenario ids (the runs service's `scenarios`; empty: no such limit).
    pub only: Vec<String>,
}

/// A flag with a value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BadFlag {
    /// A `--filter` glob that does not parse.
    #[error("invalid --filter \"{glob}\": {source}")]
    Filter {
        /// The glob as given.
        glob: String,
        /// What the glob parser said.
        #[source]
        source: globset::Error,
    },
    /// The `--filter` globs together do not build a matcher.
    #[error("invalid --filter: {0}")]
    Filters(#[source] globset::Error),
    /// A `--partition` that is not `K/N` with 1 <= K <= N (behind an optional mode).
    #[error(
        "invalid --partition \"{0}\": expected K/N, hash:K/N or duration:K/N with 1 <= K <= N, e.g. duration:1/4"
    )]
    Partition(String),
    /// A `--partition` mode that does not exist.
    #[error("invalid --partition \"{text}\": unknown mode \"{mode}\" (expected hash or duration)")]
    PartitionMode {
        /// The flag's value.
        text: String,
        /// The mode before the `:`.
        mode: String,
    },
    /// A `--cpu` that is no positive number of cores.
    #[error("invalid --cpu {0}: expected cores above 0, e.g. 0.5")]
    Cpus(f64),
    /// More `--retries` than allowed.
    #[error("invalid --retries {0}: expected 0 to {max}", max = crate::model::defaults::MAX_RETRIES)]
    Retries(u64),
}

/// How to run, resolved.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Scenarios at once.
    pub workers: usize,
    /// Stop dispatching after the first failure.
    pub fail_fast: bool,
    /// Run everything, whatever the cache says.
    pub force: bool,
    /// Keep warm environments.
    pub warm_pool: bool,
    /// Run only scenario ids matching one of these globs.
    pub filter: Option<globset::GlobSet>,
    /// The K-th (1-based) of N slices.
    pub partition: Option<Partition>,
    /// `--save-timings`: record the durations in `.clnrm/timings.json`.
    pub save_timings: bool,
    /// `--tag`.
    pub tags: Vec<String>,
    /// `--skip-tag`.
    pub skip_tags: Vec<String>,
    /// Runs after a failure, for scenarios without their own `retries`.
    pub retries: u32,
    /// A `flaky` scenario fails the run.
    pub flaky_fails: bool,
    /// Steps write their output snapshots instead of failing.
    pub update_snapshots: bool,
    /// Memory limit per container, over the file's and the config's.
    pub memory_mb: Option<u64>,
    /// CPU limit per container, over the file's and the config's.
    pub cpus: Option<f64>,
    /// Record passing scenarios' trees as their baseline instead of comparing.
    pub update_baseline: bool,
    /// Where to write `report.json`, `junit.xml` and `report.md`.
    pub report_dir: Option<PathBuf>,
    /// Containers alive at once, at most.
    pub max_containers: usize,
    /// Whether passing scenarios are skipped when unchanged.
    pub cache: bool,
    /// Which of the selected scenarios run.
    pub subset: Subset,
    /// Compare each scenario's tree with the baseline (off while recording one, in
    /// `bench`, and in the run `diff` makes before comparing).
    pub compare: bool,
    /// Save each scenario's spans in `.clnrm/artifacts` (off in `bench`).
    pub keep_spans: bool,
    /// Honour scenarios' own `retries` (off in `bench`: one run of each).
    pub own_retries: bool,
    /// Conclude the run: the cache, the outcomes, the baseline, the timings and the
    /// report files (off in `bench`'s rounds, which only measure).
    pub conclude: bool,
}

impl RunConfig {
    /// The configuration of a measured round (`bench`): every selected scenario runs
    /// once, nothing compared, retried, saved or recorded.
    pub fn measuring(self) -> Self {
        Self {
            cache: false,
            force: true,
            compare: false,
            update_baseline: false,
            keep_spans: false,
            retries: 0,
            own_retries: false,
            save_timings: false,
            conclude: false,
            ..self
        }
    }
}

/// Which of the scenarios the paths, `--filter`, the tags and `--partition` select run,
/// from what earlier runs recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Subset {
    /// All of them.
    #[default]
    All,
    /// `--failed`: those whose last outcome was failed or error.
    Failed,
    /// Those whose file collects spans and that saved none yet (`diff`).
    WithoutSpans,
    /// Those with these ids.
    Ids(std::collections::BTreeSet<String>),
}

impl RunFlags {
    /// Whether a run with these flags in `project` may be answered from the cache:
    /// [`RunConfig::cache_may_answer`] before the files are read.
    pub fn cache_may_answer(&self, project: &Project) -> bool {
        project.config.cache.enabled && !self.force && !self.update_baseline
    }
}

impl RunConfig {
    /// Whether the cache may answer the run: it is on, and neither `--force` nor
    /// `--update-baseline` runs everything.
    pub fn cache_may_answer(&self) -> bool {
        self.cache && !self.force && !self.update_baseline
    }

    /// `flags` over `project`'s configuration over the defaults.
    pub fn resolve(flags: &RunFlags, project: &Project) -> Result<Self, BadFlag> {
        let executor = &project.config.executor;
        let filter = if flags.filter.is_empty() {
            None
        } else {
            let mut set = globset::GlobSetBuilder::new();
            for g in &flags.filter {
                set.add(globset::Glob::new(g).map_err(|source| BadFlag::Filter {
                    glob: g.clone(),
                    source,
                })?);
            }
            Some(set.build().map_err(BadFlag::Filters)?)
        };
        let partition = flags
            .partition
            .as_deref()
            .map(parse_partition_flag)
            .transpose()?;
        if let Some(c) = flags.cpus
            && !(c > 0.0 && c <= 1024.0)
        {
            return Err(BadFlag::Cpus(c));
        }
        let retries = flags.retries.unwrap_or(executor.retries);
        if retries > crate::model::defaults::MAX_RETRIES {
            return Err(BadFlag::Retries(retries));
        }
        let workers = flags
            .workers
            .or(executor.worker_count)
            .map_or_else(crate::cpus, |w| w as usize);
        Ok(Self {
            workers: workers.max(1),
            fail_fast: flags.fail_fast,
            force: flags.force,
            warm_pool: !flags.no_pool,
            filter,
            partition,
            tags: flags.tags.clone(),
            skip_tags: flags.skip_tags.clone(),
            retries: retries as u32,
            flaky_fails: flags.flaky_fails || executor.flaky_fails,
            update_snapshots: flags.update_snapshots,
            save_timings: flags.save_timings,
            memory_mb: flags.memory_mb,
            cpus: flags.cpus,
            update_baseline: flags.update_baseline,
            report_dir: flags.report_dir.clone(),
            max_containers: executor.max_concurrent_containers as usize,
            cache: project.config.cache.enabled,
            subset: match (flags.failed, flags.only.is_empty()) {
                (true, _) => Subset::Failed,
                (false, false) => Subset::Ids(flags.only.iter().cloned().collect()),
                (false, true) => Subset::All,
            },
            compare: !flags.update_baseline,
            keep_spans: true,
            own_retries: true,
            conclude: true,
        })
    }
}

/// How `--partition` slices the selected scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// `K/N`: round-robin in plan order.
    RoundRobin(u64, u64),
    /// `hash:K/N`: by a hash of the scenario id (stable when files are added).
    Hash(u64, u64),
    /// `duration:K/N`: longest first onto the least loaded shard, from
    /// `.clnrm/timings.json`.
    Duration(u64, u64),
}

impl Partition {
    /// K (1-based) and N.
    pub fn slice(self) -> (u64, u64) {
        match self {
            Partition::RoundRobin(k, n) | Partition::Hash(k, n) | Partition::Duration(k, n) => {
                (k, n)
            }
        }
    }
}

fn parse_partition_flag(text: &str) -> Result<Partition, BadFlag> {
    let (mode, rest) = match text.split_once(':') {
        Some((m, r)) => (Some(m), r),
        None => (None, text),
    };
    let (k, n) = parse_partition(rest).ok_or_else(|| BadFlag::Partition(text.to_owned()))?;
    match mode {
        None => Ok(Partition::RoundRobin(k, n)),
        Some("hash") => Ok(Partition::Hash(k, n)),
        Some("duration") => Ok(Partition::Duration(k, n)),
        Some(other) => Err(BadFlag::PartitionMode {
            text: text.to_owned(),
            mode: other.to_owned(),
        }),
    }
}

/// `K/N` with 1 <= K <= N.
fn parse_partition(text: &str) -> Option<(u64, u64)> {
    let (k, n) = text.split_once('/')?;
    let k: u64 = k.trim().parse().ok()?;
    let n: u64 = n.trim().parse().ok()?;
    (k != 0 && n != 0 && k <= n).then_some((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Config, Project};

    fn project(workers: Option<u64>) -> Project {
        let mut config = Config::default();
        config.executor.worker_count = workers;
        Project {
            root: PathBuf::from("/p"),
            config,
        }
    }

    #[test]
    fn flags_win_over_the_config_which_wins_over_the_defaults() {
        let flags = RunFlags {
            workers: Some(3),
            ..RunFlags::default()
        };
        assert_eq!(
            RunConfig::resolve(&flags, &project(Some(7))).map(|c| c.workers),
            Ok(3)
        );
        let none = RunFlags::default();
        assert_eq!(
            RunConfig::resolve(&none, &project(Some(7))).map(|c| c.workers),
            Ok(7)
        );
        assert_eq!(
            RunConfig::resolve(&none, &project(None)).map(|c| c.workers),
            Ok(crate::cpus())
        );
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        for (flags, says) in [
            (
                RunFlags {
                    partition: Some("3/2".into()),
                    ..RunFlags::default()
                },
                "invalid --partition \"3/2\"",
            ),
            (
                RunFlags {
                    filter: vec!["[".into()],
                    ..RunFlags::default()
                },
                "invalid --filter \"[\"",
            ),
            (
                RunFlags {
                    cpus: Some(0.0),
                    ..RunFlags::default()
                },
                "invalid --cpu 0",
            ),
        ] {
            let e = RunConfig::resolve(&flags, &project(None)).err();
            assert!(e.is_some_and(|e| e.to_string().starts_with(says)), "{says}");
        }
    }
    #[test]
    fn bad_flag_messages_are_whole() {
        assert_eq!(
            BadFlag::Retries(101).to_string(),
            "invalid --retries 101: expected 0 to 100"
        );
        assert_eq!(
            BadFlag::Cpus(-0.5).to_string(),
            "invalid --cpu -0.5: expected cores above 0, e.g. 0.5"
        );
        assert_eq!(
            parse_partition_flag("size:1/2").unwrap_err().to_string(),
            "invalid --partition \"size:1/2\": unknown mode \"size\" (expected hash or duration)"
        );
        assert_eq!(
            parse_partition_flag("0/2").unwrap_err().to_string(),
            "invalid --partition \"0/2\": expected K/N, hash:K/N or duration:K/N with 1 <= K <= N, e.g. duration:1/4"
        );
    }
}
