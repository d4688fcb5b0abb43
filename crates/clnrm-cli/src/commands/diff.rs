//! `clnrm diff`: the span tree of each scenario's latest run against the baseline
//! (running the scenarios that have no saved spans first); `--update-baseline`
//! records them instead.

use super::baseline;
use super::prepare;
use super::run::{Output, artifacts_dir, base_options, execute_plan, runtime};
use crate::cli::{DiagFormat, DiffArgs, DiffFormat};
use crate::exit;
use crate::output::{plural, print_diagnostics};
use clnrm_core::diff::{Display, diff, render_tree};
use clnrm_core::exec::{RunOptions, RunOwner};
use clnrm_core::otel::artifacts;
use clnrm_core::plan::{NotSelected, PlanOptions, plan};
use serde_json::json;

/// Runs the command.
pub fn run(args: DiffArgs) -> i32 {
    let prepared = prepare(&args.paths, &args.vars);
    let diags = prepared.diagnostics();
    if diags.iter().any(|d| d.is_error()) {
        print_diagnostics(
            &diags,
            DiagFormat::Human,
            prepared.files.len(),
            "error: invalid input; nothing was compared",
        );
        return exit::INVALID_INPUT;
    }
    let filter = match &args.filter {
        Some(g) => match globset::Glob::new(g) {
            Ok(g) => Some(g.compile_matcher()),
            Err(e) => {
                eprintln!("error: invalid --filter \"{g}\": {e}");
                return exit::INVALID_INPUT;
            }
        },
        None => None,
    };
    let project = prepared.project.clone();
    let executor = project.config.executor.clone();
    let opts = PlanOptions {
        filter,
        executor: executor.clone(),
        ..PlanOptions::default()
    };
    let mut plan = plan(&prepared.files, &opts);
    let ids: Vec<String> = plan.selected().map(|s| s.id.0.clone()).collect();
    let dir = artifacts_dir(&project);
    let lacking: Vec<String> = ids
        .iter()
        .filter(|id| !matches!(artifacts::load(&dir, id), Ok(Some(_))))
        .cloned()
        .collect();
    if !lacking.is_empty() {
        eprintln!(
            "running {} without saved spans first",
            plural(lacking.len(), "scenario")
        );
        for s in &mut plan.scenarios {
            if !lacking.contains(&s.id.0) {
                s.not_selected = Some(NotSelected::Filtered);
            }
        }
        let run_opts = RunOptions {
            force: true,
            ..base_options(&project, RunOwner::current())
        };
        let rt = match runtime() {
            Ok(r) => r,
            Err(code) => return code,
        };
        match rt.block_on(execute_plan(
            plan,
            run_opts,
            Output::Progress,
            &project.config.executor,
        )) {
            Ok(report) if report.interrupted => return exit::INTERRUPTED,
            Ok(_) => {}
            Err(code) => return code,
        }
    }
    if args.update_baseline {
        return match baseline::record(&project, &ids) {
            Ok(n) => {
                eprintln!(
                    "recorded the span trees of {} in {}",
                    plural(n, "scenario"),
                    baseline::path(&project).display()
                );
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                baseline::exit_code(&e)
            }
        };
    }
    compare(&args, &project, &ids)
}

fn compare(args: &DiffArgs, project: &clnrm_core::project::Project, ids: &[String]) -> i32 {
    let check = match baseline::check(project, args.durations.map(|p| p / 100.0)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return baseline::exit_code(&e);
        }
    };
    let display = Display {
        only_diffs: args.only_diffs || project.config.diff.show_only_diffs,
        max_depth: project.config.diff.max_display_depth as usize,
    };
    let mut differing = 0;
    let mut docs = Vec::new();
    for id in ids {
        let current = match baseline::current_tree(project, id) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return baseline::exit_code(&e);
            }
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
