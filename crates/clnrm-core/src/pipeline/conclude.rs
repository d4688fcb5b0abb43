//! Concluding a run: what it wrote into its own host inputs, the cache, each
//! scenario's outcome, the baseline (`--update-baseline`), the timings and the report
//! files.

use super::error::PipelineError;
use super::plan::Planned;
use crate::cache::Cache;
use crate::config::RunConfig;
use crate::diff::store::{self, Recorded};
use crate::exec::Status;
use crate::project::Project;
use crate::report::{RunReport, write_reports};

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

/// Concludes a run: saves its `cache` (with what the run recorded in it) and the
/// outcomes, records the trees of the scenarios that passed when `config` says so
/// (never after an interrupt), and writes the report files.
pub(crate) fn conclude(
    project: &Project,
    config: &RunConfig,
    planned: &Planned,
    cache: Option<&Cache>,
    report: &RunReport,
) -> Result<Concluded, PipelineError> {
    let layout = project.layout();
    let mut done = Concluded::default();
    if let Some(before) = &planned.options.inputs {
        let outputs = super::plan::outputs(&layout, config, &planned.plan);
        done.written_inputs = written_inputs(planned, report, before, &layout, &outputs);
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
            // With the cache off they run every time anyway.
            if config.cache {
                done.warnings.push(format!(
                    "the run changed what it bind-mounts from the host ({}): the scenarios that mount it will run every time; mount it with read_only = true, or mount a directory only the scenario writes to that is not under version control",
                    shown.join(", ")
                ));
            }
        }
    }
    if !config.cache && planned.options.artifacts.is_some() {
        let ran: Vec<&str> = report
            .results
            .iter()
            .filter(|r| !matches!(r.status, Status::Cached | Status::Skipped))
            .map(|r| r.id.0.as_str())
            .collect();
        if let Err(e) = crate::cache::forget(&layout.cache(), &ran) {
            done.warnings.push(format!(
                "could not update the cache in {}: {e}",
                layout.cache().display()
            ));
        }
    }
    if let Some(cache) = cache {
        let max = project.config.cache.max_entries as usize;
        if let Err(e) = cache.save(max) {
            done.warnings.push(format!(
                "could not save the cache in {}: {e}",
                layout.cache().display()
            ));
        }
    }
    if let Err(e) = super::outcomes::record(&layout.outcomes(), report) {
        done.warnings.push(format!(
            "could not record the outcomes in {}: {e}",
            layout.outcomes().display()
        ));
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
        && let Err(e) = crate::timings::record(&layout.timings(), report.durations())
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

/// What the scenarios that ran changed in their own writable mounts since the run was
/// planned: per input, the paths inside it that differ (`outputs` excluded, as when
/// they were read). What changed in a read-only mount was changed by someone else.
fn written_inputs(
    planned: &Planned,
    report: &RunReport,
    before: &crate::inputs::Digests,
    layout: &crate::project::Layout,
    outputs: &[std::path::PathBuf],
) -> crate::inputs::written::Written {
    let ran: std::collections::BTreeSet<std::path::PathBuf> = report
        .results
        .iter()
        .filter(|r| !matches!(r.status, Status::Cached | Status::Skipped))
        .filter_map(|r| planned.plan.scenarios.iter().find(|s| s.id == r.id))
        .flat_map(crate::plan::PlannedScenario::writable_inputs)
        .collect();
    let mut out = crate::inputs::written::Written::new();
    if ran.is_empty() {
        return out;
    }
    let mut index = crate::inputs::StatIndex::open(&layout.cache());
    for p in ran {
        let Some(was) = before.get(&p) else { continue };
        let changed = crate::inputs::digest(&p, &mut index, outputs).changed_since(was);
        if !changed.is_empty() {
            out.insert(p, changed);
        }
    }
    let _ = index.save();
    out
}
