//! `clnrm diff`: the span tree of each scenario's latest run against the baseline
//! (running first, through the run pipeline, the scenarios whose file collects spans
//! and that have not run yet); `--update-baseline` records those whose last run
//! passed instead.

use super::run::{pipeline_error, resolve, say_recorded};
use super::{Output, lazy_engine, print_prepared, runtime, watch_signals};
use crate::cli::{DiffArgs, DiffFormat};
use crate::exit;
use crate::sink::CliSink;
use clnrm_core::config::{RunConfig, RunFlags, Subset};
use clnrm_core::diff::store;
use clnrm_core::diff::{Display, diff, render_tree};
use clnrm_core::exec::Stop;
use clnrm_core::pipeline::{self, Host, PipelineError, Prepared};
use clnrm_core::project::Project;
use serde_json::json;

/// Runs the command.
pub fn run(args: DiffArgs) -> i32 {
    let prepared = super::prepare(&args.paths, &args.vars);
    if let Err(code) = print_prepared(&prepared, "nothing was compared") {
        return code;
    }
    // Scenarios whose file collects spans and that saved none yet run first, whatever
    // the cache says; that run compares with no baseline (this command does, after).
    let flags = RunFlags {
        filter: args.filter.clone(),
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        ..RunFlags::default()
    };
    let config = match resolve(&flags, &prepared) {
        Ok(c) => RunConfig {
            subset: Subset::WithoutSpans,
            force: true,
            compare: false,
            ..c
        },
        Err(code) => return code,
    };
    if let Err(code) = run_missing(&prepared, &config) {
        return code;
    }
    let project = &prepared.project;
    let ids = pipeline::selected_ids(&prepared, &config);
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

/// Runs the scenarios of `config`'s subset (those without saved spans); `Err` holds
/// the exit code when they could not run.
fn run_missing(prepared: &Prepared, config: &RunConfig) -> Result<(), i32> {
    let rt = runtime()?;
    let ran = rt.block_on(async {
        let engine = lazy_engine(&prepared.project.config.executor)?;
        let stop = Stop::default();
        tokio::spawn(watch_signals(stop.clone()));
        let sink = CliSink::new(Output::Progress);
        pipeline::run(prepared, config, Host::Engine(engine), sink, stop)
            .await
            .map_err(|e| pipeline_error(&e))
    })?;
    if ran.report.interrupted {
        return Err(exit::INTERRUPTED);
    }
    Ok(())
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
