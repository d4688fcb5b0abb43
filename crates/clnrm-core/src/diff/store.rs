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
    /// What decides a comparison besides the trees (`ignore_timestamps`,
    /// `ignore_attributes`, `keep_attributes`, the durations threshold), as JSON: part
    /// of a compared scenario's cache key.
    pub settings: String,
}

/// How spans are normalised in a project.
pub fn normalize(config: &DiffConfig) -> Normalize {
    Normalize::with_kept(
        config.ignore_timestamps,
        &config.ignore_attributes,
        &config.keep_attributes,
    )
}

/// The project's baseline and how to compare with it; `durations` is a fraction
/// (0.5 = 50%) by which a span's duration may move.
pub fn check(
    layout: &Layout,
    config: &DiffConfig,
    durations: Option<f64>,
) -> Result<BaselineCheck, BaselineError> {
    let normalize = normalize(config);
    let mut baseline = Baseline::load(layout.baseline())?;
    // What is ignored now is ignored on the stored side too: adding a key to
    // `ignore_attributes` never shows it as removed.
    baseline.scenarios = std::mem::take(&mut baseline.scenarios)
        .into_iter()
        .map(|(id, tree)| (id, tree.normalized(&normalize)))
        .collect();
    let settings = serde_json::json!({
        "ignore_timestamps": config.ignore_timestamps,
        "ignore_attributes": config.ignore_attributes,
        "keep_attributes": config.keep_attributes,
        "durations": durations,
    })
    .to_string();
    Ok(BaselineCheck {
        baseline,
        normalize,
        compare: Compare { durations },
        max_depth: config.max_display_depth as usize,
        settings,
    })
}

/// The normalised tree of the spans scenario `id`'s latest run saved, if it saved any.
pub fn current_tree(
    layout: &Layout,
    config: &DiffConfig,
    id: &str,
) -> Result<Option<SpanTree>, BaselineError> {
    Ok(saved(layout, id)?
        .filter(|a| !a.spans.is_empty())
        .map(|a| tree_of(&a, config)))
}

fn saved(layout: &Layout, id: &str) -> Result<Option<artifacts::SpansArtifact>, BaselineError> {
    let dir = layout.artifacts();
    artifacts::load(&dir, id).map_err(|source| BaselineError::Io {
        path: dir.display().to_string(),
        source,
    })
}

fn tree_of(a: &artifacts::SpansArtifact, config: &DiffConfig) -> SpanTree {
    SpanTree::from_spans_in(&a.spans, &normalize(config), &a.identities)
}

/// What recording did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Scenarios whose trees were recorded, in the order asked.
    pub recorded: Vec<String>,
    /// Scenarios not recorded, each with why.
    pub not_recorded: Vec<(String, String)>,
    /// The file that was not a baseline, set aside.
    pub replaced: Option<Replaced>,
}

impl Recorded {
    /// How many were recorded.
    pub fn count(&self) -> usize {
        self.recorded.len()
    }
}

/// Records the trees of `ids` from their saved spans: each one whose last run passed
/// (or failed only because its tree is not the baseline's); the others are listed
/// with why. Other scenarios' entries are kept. A file that is not a baseline is kept
/// as `<file>.bak` and replaced.
pub fn record(
    layout: &Layout,
    config: &DiffConfig,
    ids: &[String],
) -> Result<Recorded, BaselineError> {
    record_except(layout, config, ids, &[])
}

/// [`record`], with `refused` (id, why) not recorded whatever their saved spans say
/// (scenarios that failed in the run recording them).
pub fn record_except(
    layout: &Layout,
    config: &DiffConfig,
    ids: &[String],
    refused: &[(String, String)],
) -> Result<Recorded, BaselineError> {
    let (mut baseline, replaced) = Baseline::load_for_update(layout.baseline())?;
    let mut done = Recorded {
        replaced,
        ..Recorded::default()
    };
    for id in ids {
        if let Some((_, why)) = refused.iter().find(|(r, _)| r == id) {
            done.not_recorded.push((id.clone(), why.clone()));
            continue;
        }
        let Some(a) = saved(layout, id)? else {
            done.not_recorded.push((
                id.clone(),
                "no saved spans (its file collects none, or it sent none)".into(),
            ));
            continue;
        };
        match &a.verdict {
            _ if a.spans.is_empty() => done
                .not_recorded
                .push((id.clone(), "its last run collected no spans".into())),
            Some(v) if v.recordable() => {
                baseline.scenarios.insert(id.clone(), tree_of(&a, config));
                done.recorded.push(id.clone());
            }
            Some(v) => {
                let reason = v.reason.as_deref().map_or_else(String::new, |r| format!(" ({r})"));
                let why = match v.status.as_str() {
                    "flaky" => "its last run was flaky: it passed only on a retry".to_owned(),
                    "error" => format!("its last run ended in an error{reason}"),
                    other => format!("its last run {other}{reason}"),
                };
                done.not_recorded.push((id.clone(), why));
            }
            None => done.not_recorded.push((
                id.clone(),
                "its saved spans do not say whether its run passed (saved by an older clnrm); run it again".into(),
            )),
        }
    }
    baseline.save(layout.baseline())?;
    Ok(done)
}
