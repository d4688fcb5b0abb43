//! Planning a run: the scenarios selected (paths, `--filter`, tags, `--partition`,
//! then the run's [`Subset`]), the digests of what they read from the host, the
//! cache and the baseline opened.

use super::Prepared;
use super::error::PipelineError;
use crate::cache::Cache;
use crate::config::{RunConfig, Subset};
use crate::diff::BaselineCheck;
use crate::diff::store;
use crate::exec::{RunOptions, RunOwner};
use crate::plan::{Intake, NotSelected, Plan, PlanOptions, plan};
use std::sync::Arc;

/// A planned run: what [`execute`] runs and [`conclude`] concludes.
pub struct Planned {
    /// The scenarios, their environments and keys.
    pub plan: Plan,
    /// How to execute them.
    pub options: RunOptions,
    /// The run's cache (with the cache on), taken by the run that owns it and
    /// saved when it is concluded.
    pub cache: Option<Cache>,
    /// What the user should know (an unusable cache file that was replaced).
    pub warnings: Vec<String>,
    /// What the run is about to do, when its subset says more than its selection.
    pub notes: Vec<String>,
}

/// Plans the valid files of `prepared` with `config`, for a run owned by `owner`:
/// selects its [`Subset`], opens the cache and (when comparing) the baseline.
pub(crate) fn plan_run(
    prepared: &Prepared,
    config: &RunConfig,
    owner: RunOwner,
) -> Result<Planned, PipelineError> {
    let project = &prepared.project;
    let layout = project.layout();
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let plan_options = plan_options(prepared, config, &mut warnings);
    let mut plan = plan(&prepared.files, &plan_options);
    if let Some(note) = narrow(&mut plan, &config.subset, &layout, &mut warnings) {
        notes.push(note);
    }

    let cache = config.cache.then(|| {
        let cache = Cache::open(&layout.cache());
        warnings.extend(cache.warning.clone());
        cache
    });
    // Read with the cache off too: environments and fixture snapshots are keyed by
    // what their services mount, built images by their sources.
    let inputs = {
        // What runs write into their own mounts: neither an environment's input nor
        // a build's source.
        let written = crate::inputs::written::load(&layout.cache());
        let (digests, warning) = read_inputs(&mut plan, &layout, config, &written);
        warnings.extend(warning);
        crate::plan::attach_inputs(&mut plan, &digests, &written, &owner.run_id);
        Some(Arc::new(digests))
    };
    let baseline: Option<Arc<BaselineCheck>> = if config.compare && !config.update_baseline {
        Some(Arc::new(store::check(&layout, &project.config.diff, None)?))
    } else {
        None
    };
    if !config.own_retries {
        for sc in &mut plan.scenarios {
            sc.retries = Some(0);
        }
    }
    let options = RunOptions {
        workers: config.workers,
        fail_fast: config.fail_fast,
        owner,
        artifacts: config.keep_spans.then(|| layout.artifacts()),
        baseline,
        inputs,
        force: config.force,
        retries: config.retries,
    };
    Ok(Planned {
        plan,
        options,
        cache,
        warnings,
        notes,
    })
}

/// How `config` plans the files of `prepared`; a warning when the recorded durations
/// `--partition duration:` reads are unusable.
fn plan_options(
    prepared: &Prepared,
    config: &RunConfig,
    warnings: &mut Vec<String>,
) -> PlanOptions {
    let project = &prepared.project;
    let layout = project.layout();
    let timings = match config.partition {
        Some(crate::config::Partition::Duration(..)) => {
            match crate::timings::Timings::load(&layout.timings()) {
                Ok(t) => t.scenarios,
                Err(e) => {
                    warnings.push(format!(
                        "recorded durations unusable ({e}); shards are balanced as if all took the same time"
                    ));
                    Default::default()
                }
            }
        }
        _ => Default::default(),
    };
    PlanOptions {
        memory_mb: config.memory_mb,
        cpus: config.cpus,
        filter: config.filter.clone(),
        tags: config.tags.clone(),
        skip_tags: config.skip_tags.clone(),
        timings,
        partition: config.partition,
        executor: project.config.executor.clone(),
        context: prepared.context.clone(),
        project: project.root.display().to_string(),
        update_snapshots: config.update_snapshots,
        snapshot_redact: project.config.snapshot_redact.clone(),
    }
}

/// The ids of the scenarios of `prepared` that `config` selects by paths, `--filter`,
/// tags and `--partition` (its [`Subset`] aside), in plan order.
pub fn selected_ids(prepared: &Prepared, config: &RunConfig) -> Vec<String> {
    let plan = plan(
        &prepared.files,
        &plan_options(prepared, config, &mut Vec::new()),
    );
    plan.selected().map(|s| s.id.0.clone()).collect()
}

/// Narrows the selection of `plan` to `subset`; the unselected are filtered. A
/// warning when what earlier runs recorded cannot be read.
fn narrow(
    plan: &mut Plan,
    subset: &Subset,
    layout: &crate::project::Layout,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let keep: Box<dyn Fn(&crate::plan::PlannedScenario) -> bool> = match subset {
        Subset::All => return None,
        Subset::Ids(ids) => Box::new(move |s| ids.contains(&s.id.0)),
        Subset::Failed => {
            let (failed, warning) = super::outcomes::failed_at(&layout.outcomes());
            warnings.extend(warning);
            Box::new(move |s| failed.contains(&s.id.0))
        }
        Subset::WithoutSpans => {
            let dir = layout.artifacts();
            // A run saves what its scenarios sent, nothing included, unless their file
            // collects no spans (`exporter = "none"`).
            Box::new(move |s| {
                s.intake != Intake::None
                    && !matches!(crate::otel::artifacts::load(&dir, &s.id.0), Ok(Some(_)))
            })
        }
    };
    let before = plan.selected().count();
    for s in &mut plan.scenarios {
        if s.not_selected.is_none() && !keep(s) {
            s.not_selected = Some(NotSelected::Filtered);
        }
    }
    let after = plan.selected().count();
    let scenarios = |n: usize| format!("{n} scenario{}", if n == 1 { "" } else { "s" });
    match subset {
        Subset::Failed if after == 0 && before > 0 => Some(format!(
            "--failed: none of the {} selected failed in its last run; nothing runs",
            scenarios(before)
        )),
        Subset::Failed => Some(format!(
            "--failed: running the {} of {} selected whose last run failed",
            scenarios(after),
            before
        )),
        Subset::WithoutSpans if after > 0 => Some(format!(
            "running {} without saved spans first",
            scenarios(after)
        )),
        _ => None,
    }
}

/// clnrm's own outputs (`.clnrm/`, the report directory, the report files of the
/// files' `[report]` tables): part of no input.
pub(crate) fn outputs(
    layout: &crate::project::Layout,
    config: &RunConfig,
    plan: &Plan,
) -> Vec<std::path::PathBuf> {
    let mut out = vec![layout.dir()];
    out.extend(
        config
            .report_dir
            .iter()
            .chain(
                plan.files
                    .iter()
                    .flat_map(crate::plan::PlannedFile::reports),
            )
            // As a mount's path is named: absolute, `..` resolved by its text.
            .map(|d| crate::model::host_path_in(&d.to_string_lossy(), std::path::Path::new("."))),
    );
    out
}

/// The digests of what the selected scenarios of `plan` read from the host, through
/// the project's stat index (saved for the next run); clnrm's own outputs (`.clnrm/`,
/// the report directory) are not part of any input. A warning when the index was
/// unusable or could not be saved.
fn read_inputs(
    plan: &mut Plan,
    layout: &crate::project::Layout,
    config: &RunConfig,
    written: &crate::inputs::written::Written,
) -> (crate::inputs::Digests, Option<String>) {
    let paths = crate::plan::host_inputs(plan);
    let builds = plan
        .selected()
        .any(|s| s.env.services.iter().any(|v| v.build.is_some()));
    if paths.is_empty() && !builds {
        return (crate::inputs::Digests::default(), None);
    }
    let cache_dir = layout.cache();
    let mut index = crate::inputs::StatIndex::open(&cache_dir);
    let exclude = outputs(layout, config, plan);
    let manifests = crate::cache::manifests_dir(&cache_dir);
    // The file lists only `cache stats --explain` reads, pruned when the cache is
    // saved: none with the cache off.
    let manifests = config.cache.then_some(manifests.as_path());
    let digests = crate::inputs::digest_all(&paths, &mut index, &exclude, manifests);
    if builds {
        let written = crate::inputs::written::files(written);
        let leave_out: Vec<std::path::PathBuf> = exclude.iter().cloned().chain(written).collect();
        crate::plan::attach_builds(plan, &mut index, &leave_out);
    }
    let mut warning = index.warning.take();
    if let Err(e) = index.save() {
        warning = Some(format!(
            "could not save the index of host inputs in {}: {e}",
            cache_dir.display()
        ));
    }
    (digests, warning)
}
