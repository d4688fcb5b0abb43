//! The project's span-tree baseline (`diff.baseline_path`), shared by `run` and `diff`.

use super::run::artifacts_dir;
use clnrm_core::diff::{Baseline, Compare, Normalize, SpanTree};
use clnrm_core::exec::BaselineCheck;
use clnrm_core::otel::artifacts;
use clnrm_core::project::Project;
use std::path::PathBuf;

/// The baseline file.
pub fn path(project: &Project) -> PathBuf {
    project.root.join(&project.config.diff.baseline_path)
}

/// How spans are normalised in this project.
pub fn normalize(project: &Project) -> Normalize {
    let d = &project.config.diff;
    Normalize::new(d.ignore_timestamps, &d.ignore_attributes)
}

/// The baseline and how to compare with it; `durations` is a fraction (0.5 = 50%).
pub fn check(project: &Project, durations: Option<f64>) -> Result<BaselineCheck, String> {
    let baseline = Baseline::load(&path(project)).map_err(|e| e.to_string())?;
    Ok(BaselineCheck {
        baseline,
        normalize: normalize(project),
        compare: Compare { durations },
        max_depth: project.config.diff.max_display_depth as usize,
    })
}

/// The normalised tree of the spans a scenario's latest run saved, if any.
pub fn current_tree(project: &Project, id: &str) -> Result<Option<SpanTree>, String> {
    let dir = artifacts_dir(project);
    let saved = artifacts::load(&dir, id).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(saved.map(|a| SpanTree::from_spans(&a.spans, &normalize(project))))
}

/// Records the latest trees of `ids` (those with saved spans) in the baseline; returns
/// how many were recorded. Other scenarios' entries are kept.
pub fn record(project: &Project, ids: &[String]) -> Result<usize, String> {
    let file = path(project);
    let mut baseline = Baseline::load(&file).map_err(|e| e.to_string())?;
    let mut n = 0;
    for id in ids {
        if let Some(tree) = current_tree(project, id)? {
            baseline.scenarios.insert(id.clone(), tree);
            n += 1;
        }
    }
    baseline.save(&file).map_err(|e| e.to_string())?;
    Ok(n)
}
