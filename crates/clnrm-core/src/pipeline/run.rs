//! The run pipeline after validation: plan the valid files with a [`RunConfig`],
//! execute the plan in a [`Session`] while a [`Sink`] receives the events, then
//! conclude: record the cache, the baseline (`--update-baseline`) and the report
//! files. `clnrm run`, `watch` and `diff` go through it, as will the runs service.

use super::Prepared;
use crate::cache::Cache;
use crate::config::{BadFlag, RunConfig};
use crate::diff::store::{self, Recorded};
use crate::diff::{BaselineCheck, BaselineError};
use crate::exec::{Event, RunOptions, RunOwner, Session, SessionOptions, Status, Stop};
use crate::plan::{Plan, PlanOptions, plan};
use crate::project::Project;
use crate::report::{RunReport, WriteError, write_reports};
use std::sync::{Arc, Mutex};

/// Where a run's events go (the human report, progress, clnrm's own telemetry, a
/// server's event stream); called on a blocking thread of the runtime, in order, so
/// it may block (and reach the runtime through `tokio::runtime::Handle::current()`).
pub trait Sink: Send + 'static {
    /// One event of the run.
    fn event(&mut self, event: &Event);
    /// The run ended; its report.
    fn finish(&mut self, _report: &RunReport) {}
}

/// Why a run could not be planned or concluded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A flag with a value that cannot be used.
    #[error(transparent)]
    Flag(#[from] BadFlag),
    /// The baseline cannot be read or written.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// A report file cannot be written.
    #[error(transparent)]
    Reports(#[from] WriteError),
}

impl PipelineError {
    /// Whether the user's input is at fault (else the environment is).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            PipelineError::Flag(_) => true,
            PipelineError::Baseline(e) => matches!(e, BaselineError::Corrupt { .. }),
            PipelineError::Reports(_) => false,
        }
    }
}

/// A planned run: what [`execute`] runs and [`conclude`] concludes.
pub struct Planned {
    /// The scenarios, their environments and keys.
    pub plan: Plan,
    /// How to execute them.
    pub options: RunOptions,
    /// What the user should know (an unusable cache file that was replaced).
    pub warnings: Vec<String>,
}

/// The options of a session for runs with `config`, owned by `owner`.
pub fn session_options(config: &RunConfig, owner: RunOwner) -> SessionOptions {
    SessionOptions {
        workers: config.workers,
        max_containers: config.max_containers,
        owner,
        warm_pool: config.warm_pool,
    }
}

/// Plans the valid files of `prepared` with `config`, for a run owned by `owner`:
/// opens the cache and (unless recording) the baseline.
pub fn plan_run(
    prepared: &Prepared,
    config: &RunConfig,
    owner: RunOwner,
) -> Result<Planned, PipelineError> {
    let project = &prepared.project;
    let layout = project.layout();
    let mut warnings = Vec::new();
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
    let plan_options = PlanOptions {
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
    };
    let mut plan = plan(&prepared.files, &plan_options);

    let cache = config.cache.then(|| {
        let cache = Cache::open(&layout.cache());
        warnings.extend(cache.warning.clone());
        Arc::new(Mutex::new(cache))
    });
    let inputs = config.cache.then(|| {
        let (digests, warning) = read_inputs(&plan, &layout, config);
        warnings.extend(warning);
        let written = crate::inputs::written::load(&layout.cache());
        crate::plan::attach_inputs(&mut plan, &digests, &written);
        Arc::new(digests)
    });
    let baseline: Option<Arc<BaselineCheck>> = if config.update_baseline {
        None
    } else {
        Some(Arc::new(store::check(&layout, &project.config.diff, None)?))
    };
    let options = RunOptions {
        workers: config.workers,
        fail_fast: config.fail_fast,
        max_containers: config.max_containers,
        owner,
        warm_pool: config.warm_pool,
        artifacts: Some(layout.artifacts()),
        baseline,
        cache,
        inputs,
        force: config.force,
        retries: config.retries,
    };
    Ok(Planned {
        plan,
        options,
        warnings,
    })
}

/// The digests of what the selected scenarios of `plan` read from the host, through
/// the project's stat index (saved for the next run); clnrm's own outputs (`.clnrm/`,
/// the report directory) are not part of any input. A warning when the index was
/// unusable or could not be saved.
fn read_inputs(
    plan: &Plan,
    layout: &crate::project::Layout,
    config: &RunConfig,
) -> (crate::inputs::Digests, Option<String>) {
    let paths = crate::plan::host_inputs(plan);
    if paths.is_empty() {
        return (crate::inputs::Digests::default(), None);
    }
    let cache_dir = layout.cache();
    let mut index = crate::inputs::StatIndex::open(&cache_dir);
    let mut exclude = vec![layout.dir()];
    exclude.extend(
        config
            .report_dir
            .iter()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
    );
    let manifests = crate::cache::manifests_dir(&cache_dir);
    let digests = crate::inputs::digest_all(&paths, &mut index, &exclude, Some(&manifests));
    let mut warning = index.warning.take();
    if let Err(e) = index.save() {
        warning = Some(format!(
            "could not save the index of host inputs in {}: {e}",
            cache_dir.display()
        ));
    }
    (digests, warning)
}

/// Executes `planned` in `session`, the events going to `sink` as they happen; the
/// run's report once it ended (or `stop` stopped it).
pub async fn execute<E: crate::backend::ContainerEngine>(
    session: &Session<E>,
    planned: &Planned,
    mut sink: impl Sink,
    stop: Stop,
) -> RunReport {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let events = tokio::task::spawn_blocking(move || {
        while let Some(event) = rx.blocking_recv() {
            sink.event(&event);
        }
        sink
    });
    let outcome = session
        .run(planned.plan.clone(), &planned.options, tx, stop)
        .await;
    let report = RunReport {
        run_id: planned.options.owner.run_id.clone(),
        results: outcome.results,
        duration: outcome.duration,
        interrupted: outcome.interrupted,
    };
    if let Ok(mut sink) = events.await {
        // On a blocking thread too: a sink may wait (an export, a file).
        let shown = report.clone();
        let _ = tokio::task::spawn_blocking(move || sink.finish(&shown)).await;
    }
    report
}

/// What concluding a run did.
#[derive(Debug, Default)]
pub struct Concluded {
    /// The baseline recorded (`--update-baseline`).
    pub recorded: Option<Recorded>,
    /// What the user should know (the cache could not be saved).
    pub warnings: Vec<String>,
    /// What the run itself changed in bind-mounted host paths (a writable mount its
    /// containers write to), per input: the scenarios reading them run every time.
    pub written_inputs: crate::inputs::written::Written,
}

/// Concludes a run: saves the cache, records the trees of the scenarios that passed
/// when `config` says so (never after an interrupt), and writes the report files.
pub fn conclude(
    project: &Project,
    config: &RunConfig,
    planned: &Planned,
    report: &RunReport,
) -> Result<Concluded, PipelineError> {
    let layout = project.layout();
    let mut done = Concluded::default();
    if let Some(before) = &planned.options.inputs {
        done.written_inputs = written_inputs(planned, report, before, &layout);
        if !done.written_inputs.is_empty() {
            if let Err(e) = crate::inputs::written::add(&layout.cache(), &done.written_inputs) {
                done.warnings.push(format!(
                    "could not record the paths the run wrote to in {}: {e}",
                    layout.cache().display()
                ));
            }
            let shown: Vec<String> = done
                .written_inputs
                .keys()
                .map(|p| p.display().to_string())
                .collect();
            done.warnings.push(format!(
                "the run changed what it bind-mounts from the host ({}): the scenarios that mount it will run every time; mount it with read_only = true, or mount a directory only the scenario writes to that is not under version control",
                shown.join(", ")
            ));
        }
    }
    if let Some(cache) = &planned.options.cache {
        let max = project.config.cache.max_entries as usize;
        let saved = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .save(max);
        if let Err(e) = saved {
            done.warnings.push(format!(
                "could not save the cache in {}: {e}",
                layout.cache().display()
            ));
        }
    }
    if config.update_baseline && !report.interrupted {
        let (ids, refused) = baseline_candidates(report);
        done.recorded = Some(store::record_except(
            &layout,
            &project.config.diff,
            &ids,
            &refused,
        )?);
    }
    if config.save_timings
        && !report.interrupted
        && let Err(e) = crate::timings::record(&layout.timings(), report)
    {
        done.warnings
            .push(format!("could not save the timings: {e}"));
    }
    let artifacts = layout.artifacts();
    let runs = [report.run_id.clone()];
    write_reports(
        report,
        config.report_dir.as_deref(),
        &planned.plan.files,
        &crate::report::html::artifact_spans(&artifacts, &runs),
    )?;
    Ok(done)
}

/// The scenarios of `report` whose trees `--update-baseline` records: those that
/// passed, cached ones included (from the spans their last run saved); the others
/// that were selected, each with why it is not recorded.
fn baseline_candidates(report: &RunReport) -> (Vec<String>, Vec<(String, String)>) {
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for r in report.results.iter().filter(|r| !r.is_unselected()) {
        ids.push(r.id.0.clone());
        let why = match r.status {
            Status::Passed | Status::Cached => continue,
            Status::Flaky => format!("flaky: it passed only on attempt {}", r.attempts()),
            Status::Skipped => format!("not run ({})", r.reason.map_or("skipped", |x| x.as_str())),
            Status::Failed | Status::Error => format!(
                "it {}{}",
                r.status.as_str(),
                r.reason
                    .map_or_else(String::new, |x| format!(" ({})", x.as_str()))
            ),
        };
        refused.push((r.id.0.clone(), why));
    }
    (ids, refused)
}

/// What the scenarios that ran changed in their own inputs since the run was planned:
/// per input, the paths inside it that differ.
fn written_inputs(
    planned: &Planned,
    report: &RunReport,
    before: &crate::inputs::Digests,
    layout: &crate::project::Layout,
) -> crate::inputs::written::Written {
    let ran: std::collections::BTreeSet<std::path::PathBuf> = report
        .results
        .iter()
        .filter(|r| !matches!(r.status, Status::Cached | Status::Skipped))
        .filter_map(|r| planned.plan.scenarios.iter().find(|s| s.id == r.id))
        .flat_map(crate::plan::PlannedScenario::host_inputs)
        .collect();
    let mut out = crate::inputs::written::Written::new();
    if ran.is_empty() {
        return out;
    }
    let mut index = crate::inputs::StatIndex::open(&layout.cache());
    let exclude = [layout.dir()];
    for p in ran {
        let Some(was) = before.get(&p) else { continue };
        let changed = crate::inputs::digest(&p, &mut index, &exclude).changed_since(was);
        if !changed.is_empty() {
            out.insert(p, changed);
        }
    }
    let _ = index.save();
    out
}

/// The report of a run in which every selected scenario is unchanged since its last
/// passing run, made without an async runtime or any engine call but one plain
/// request per image id; `None` when something must run or it cannot tell.
pub fn all_cached(planned: &Planned, started: std::time::Instant) -> Option<RunReport> {
    let images: std::collections::BTreeSet<String> = planned
        .plan
        .selected()
        .flat_map(|s| s.env.services.iter().map(|v| v.image.clone()))
        .collect();
    let images: Vec<String> = images.into_iter().collect();
    let ids = crate::backend::image_ids_now(&images)?;
    let results = crate::exec::all_cached(&planned.plan, &ids, &planned.options)?;
    Some(RunReport {
        run_id: planned.options.owner.run_id.clone(),
        results,
        duration: started.elapsed(),
        interrupted: false,
    })
}
