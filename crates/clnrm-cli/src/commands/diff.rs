//! `clnrm diff`: the span tree of each scenario's latest run against the baseline
//! (running first, through the run pipeline, the scenarios whose file collects spans
//! and that have not run yet); `--update-baseline` records those whose last run
//! passed instead.

use super::run::{execute, pipeline_error, say_recorded};
use super::{Output, print_prepared, runtime};
use crate::cli::{DiffArgs, DiffFormat};
use crate::exit;
use crate::output::plural;
use clnrm_core::config::{RunConfig, RunFlags};
use clnrm_core::diff::store;
use clnrm_core::diff::{Display, diff, render_tree};
use clnrm_core::exec::RunOwner;
use clnrm_core::otel::artifacts;
use clnrm_core::pipeline::{self, PipelineError, Prepared};
use clnrm_core::plan::Intake;
use clnrm_core::plan::NotSelected;
use clnrm_core::project::Project;
use serde_json::json;

/// Runs the command.
pub fn run(args: DiffArgs) -> i32 {
    let prepared = super::prepare(&args.paths, &args.vars);
    if let Err(code) = print_prepared(&prepared, "nothing was compared") {
        return code;
    }
    // Scenarios without saved spans run first, whatever the cache says; their run
    // compares with no baseline (this command does, after).
    let flags = RunFlags {
        filter: args.filter.clone(),
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        force: true,
        update_baseline: true,
        ..RunFlags::default()
    };
    let config = match RunConfig::resolve(&flags, &prepared.project) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let ids = match run_missing(&prepared, &config) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let project = &prepared.project;
    if args.update_baseline {
        return match store::record(&project.layout(), &project.config.diff, &ids) {
            Ok(r) => {
                say_recorded(project, &r);
                exit::SUCCESS
            }
            Err(e) => pipeline_error(&PipelineError::from(e)),
        };
    }
    compare(&args, project, &ids)
}

/// Runs the selected scenarios that have not run (no spans saved, not even none)
/// and whose file collects spans; the ids of all selected.
fn run_missing(prepared: &Prepared, config: &RunConfig) -> Result<Vec<String>, i32> {
    let mut planned = pipeline::plan_run(prepared, config, RunOwner::current())
        .map_err(|e| pipeline_error(&e))?;
    let ids: Vec<String> = planned.plan.selected().map(|s| s.id.0.clone()).collect();
    let dir = prepared.project.layout().artifacts();
    // A run saves what its scenarios sent, nothing included, unless their file
    // collects no spans (`exporter = "none"`).
    let lacking: Vec<String> = planned
        .plan
        .selected()
        .filter(|s| s.intake != Intake::None)
        .filter(|s| !matches!(artifacts::load(&dir, &s.id.0), Ok(Some(_))))
        .map(|s| s.id.0.clone())
        .collect();
    if lacking.is_empty() {
        return Ok(ids);
    }
    eprintln!(
        "running {} without saved spans first",
        plural(lacking.len(), "scenario")
    );
    for s in &mut planned.plan.scenarios {
        if !lacking.contains(&s.id.0) {
            s.not_selected = Some(NotSelected::Filtered);
        }
    }
    let rt = runtime()?;
    let report = rt.block_on(execute(prepared, &planned, Output::Progress))?;
    if report.interrupted {
        return Err(exit::INTERRUPTED);
    }
    Ok(ids)
}

fn compare(args: &DiffArgs, project: &Project, ids: &[String]) -> i32 {
    let layout = project.layout();
    let durations = args.durations.map(|p| p / 100.0);
    let check = match store::check(&layout, &project.config.diff, durations) {
        Ok(c) => c,
        Err(e) => return pipeline_error(&PipelineError::from(e)),
    };
    let display = Display {
        only_diffs: args.only_diffs || project.config.diff.show_only_diffs,
        max_depth: project.config.diff.max_display_depth as usize,
    };
    let mut differing = 0;
    let mut docs = Vec::new();
    for id in ids {
        let current = match store::current_tree(&layout, &project.config.diff, id) {
            Ok(t) => t,
            Err(e) => return pipeline_error(&PipelineError::from(e)),
        };
        let recorded = check.baseline.scenarios.get(id);
        let (state, d) = match (recorded, &current) {
            (None, _) => ("no_baseline", None),
            (Some(_), None) => ("no_spans", None),
            (Some(base), Some(cur)) => {
                let d = diff(base, cur, check.compare);
                (if d.is_empty() { "same" } else { "differs" }, Some(d))
            }
        };
        if matches!(state, "differs" | "no_spans") {
            differing += 1;
        }
        match args.format {
            DiffFormat::Json => docs.push(json!({
                "id": id,
                "state": state,
                "counts": d.as_ref().map(|d| d.counts()),
                "diff": d,
            })),
            DiffFormat::Tree => {
                let headline = match (state, &d) {
                    ("no_baseline", _) => {
                        "no baseline (record one with --update-baseline)".to_owned()
                    }
                    ("no_spans", _) => "no spans collected, but the baseline has a tree".to_owned(),
                    (_, Some(d)) if !d.is_empty() => {
                        let c = d.counts();
                        format!(
                            "differs: {} changed, {} missing, {} extra",
                            c.changed, c.missing, c.extra
                        )
                    }
                    _ => "same".to_owned(),
                };
                println!("{id}: {headline}");
                if let Some(d) = &d
                    && (!display.only_diffs || !d.is_empty())
                {
                    print!("{}", render_tree(d, display));
                }
            }
        }
    }
    if args.format == DiffFormat::Json {
        println!("{:#}", json!({ "differing": differing, "scenarios": docs }));
    }
    if differing > 0 {
        exit::TEST_FAILURE
    } else {
        exit::SUCCESS
    }
}
