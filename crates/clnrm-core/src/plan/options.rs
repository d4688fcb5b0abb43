//! What planning takes from outside the files: the command line's limits and
//! selection, the config's executor and snapshot settings, the outside variables.

use crate::project::ExecutorConfig;

/// Limits and selection given on the command line.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `--memory MB`.
    pub memory_mb: Option<u64>,
    /// `--cpu CORES`.
    pub cpus: Option<f64>,
    /// `--filter GLOB` on scenario ids.
    pub filter: Option<globset::GlobSet>,
    /// `--partition [hash:|duration:]K/N` (1-based K).
    pub partition: Option<crate::config::Partition>,
    /// Recorded durations by scenario id, in ms (for `duration:K/N`).
    pub timings: std::collections::BTreeMap<String, u64>,
    /// `--tag`: only scenarios with any of these tags (none given: every scenario).
    pub tags: Vec<String>,
    /// `--skip-tag`: no scenario with any of these tags.
    pub skip_tags: Vec<String>,
    /// `[executor]` of the config.
    pub executor: ExecutorConfig,
    /// The template variables given from outside the files (`--var`, `CLNRM_VAR_*`,
    /// config), canonical; part of every scenario's cache key.
    pub context: String,
    /// The project's root: whose fixture snapshots a run makes and `clnrm cache` removes.
    pub project: String,
    /// `--update-snapshots`: steps write their output snapshots instead of failing.
    pub update_snapshots: bool,
    /// The config's `[snapshot] redact`.
    pub snapshot_redact: Vec<(String, String)>,
}
