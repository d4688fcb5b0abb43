//! The project's baseline on disk: read to compare a run with it, and recorded from
//! the spans of the scenarios' latest runs (their artifacts). Spans are stored as the
//! artifacts hold them: with secrets masked.

use super::baseline::{Baseline, BaselineError, Replaced};
use super::compare::Compare;
use super::tree::{Normalize, SpanTree};
use crate::otel::artifacts;
use crate::project::{DiffConfig, Layout};

/// The baseline a run compares against, and how.
#[derive(Clone, Debug)]
pub struct BaselineCheck {
    /// The recorded trees.
    pub baseline: Baseline,
    /// `diff.ignore_timestamps`, `diff.ignore_attributes`.
    pub normalize: Normalize,
    /// Durations threshold.
    pub compare: Compare,
    /// `diff.max_display_depth`.
    pub max_depth: usize,
}

/// How spans are normalised in a project.
pub fn normalize(config: &DiffConfig) -> Normalize {
    Normalize::new(config.ignore_timestamps, &config.ignore_attributes)
}

/// The project's baseline and how to compare with it; `durations` is a fraction
/// (0.5 = 50%) by which a span's duration may move.
pub fn check(
    layout: &Layout,
    config: &DiffConfig,
    durations: Option<f64>,
) -> Result<BaselineCheck, BaselineError> {
    Ok(BaselineCheck {
        baseline: Baseline::load(layout.baseline())?,
        normalize: normalize(config),
        compare: Compare { durations },
        max_depth: config.max_display_depth as usize,
    })
}

/// The normalised tree of the spans scenario `id`'s latest run saved, if any.
pub fn current_tree(
    layout: &Layout,
    config: &DiffConfig,
    id: &str,
) -> Result<Option<SpanTree>, BaselineError> {
    let dir = layout.artifacts();
    let saved = artifacts::load(&dir, id).map_err(|source| BaselineError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(saved.map(|a| SpanTree::from_spans(&a.spans, &normalize(config))))
}

/// What recording did.
#[derive(Debug)]
pub struct Recorded {
    /// Scenarios whose trees were recorded (those with saved spans).
    pub count: usize,
    /// The file that was not a baseline, set aside.
    pub replaced: Option<Replaced>,
}

/// Records the latest trees of `ids` in the baseline; other scenarios' entries are
/// kept. A file that is not a baseline is kept as `<file>.bak` and replaced.
pub fn record(
    layout: &Layout,
    config: &DiffConfig,
    ids: &[String],
) -> Result<Recorded, BaselineError> {
    let (mut baseline, replaced) = Baseline::load_for_update(layout.baseline())?;
    let mut count = 0;
    for id in ids {
        if let Some(tree) = current_tree(layout, config, id)? {
            baseline.scenarios.insert(id.clone(), tree);
            count += 1;
        }
    }
    baseline.save(layout.baseline())?;
    Ok(Recorded { count, replaced })
}
