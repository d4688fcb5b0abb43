//! The project's span-tree baseline (`diff.baseline_path`), shared by `run` and `diff`.

use super::run::artifacts_dir;
use crate::exit;
use clnrm_core::diff::{Baseline, BaselineError, Compare, Normalize, SpanTree};
use clnrm_core::exec::BaselineCheck;
use clnrm_core::otel::artifacts;
use clnrm_core::project::Project;
use std::path::PathBuf;

/// The baseline file.
pub fn path(project: &Project) -> PathBuf {
    project.layout().baseline().to_path_buf()
}

/// The exit code of a baseline failure, the same in every command: a file that is not
/// a baseline is invalid input, a file that cannot be read or written is the
/// environment's fault.
pub fn exit_code(e: &BaselineError) -> i32 {
    match e {
        BaselineError::Corrupt { .. } => exit::INVALID_INPUT,
        BaselineError::Io { .. } => exit::ENVIRONMENT,
    }
}

/// How spans are normalised in this project.
pub fn normalize(project: &Project) -> Normalize {
    let d = &project.config.diff;
    Normalize::new(d.ignore_timestamps, &d.ignore_attributes)
}

/// The baseline and how to compare with it; `durations` is a fraction (0.5 = 50%).
pub fn check(project: &Project, durations: Option<f64>) -> Result<BaselineCheck, BaselineError> {
    let baseline = Baseline::load(&path(project))?;
    Ok(BaselineCheck {
        baseline,
        normalize: normalize(project),
        compare: Compare { durations },
        max_depth: project.config.diff.max_display_depth as usize,
    })
}

/// The normalised tree of the spans a scenario's latest run saved, if any.
pub fn current_tree(project: &Project, id: &str) -> Result<Option<SpanTree>, BaselineError> {
    let dir = artifacts_dir(project);
    let saved = artifacts::load(&dir, id).map_err(|source| BaselineError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(saved.map(|a| SpanTree::from_spans(&a.spans, &normalize(project))))
}

/// Records the latest trees of `ids` (those with saved spans) in the baseline; returns
/// how many were recorded. Other scenarios' entries are kept; a file that is not a
/// baseline is kept as `<file>.bak` and replaced, with a warning.
pub fn record(project: &Project, ids: &[String]) -> Result<usize, BaselineError> {
    let file = path(project);
    let (mut baseline, replaced) = Baseline::load_for_update(&file)?;
    if let Some(r) = replaced {
        eprintln!(
            "warning: {} was not a clnrm baseline ({}); kept it as {} and recorded a new one",
            file.display(),
            r.reason,
            r.backup.display()
        );
    }
    let mut n = 0;
    for id in ids {
        if let Some(tree) = current_tree(project, id)? {
            baseline.scenarios.insert(id.clone(), tree);
            n += 1;
        }
    }
    baseline.save(&file)?;
    Ok(n)
}
