//! `clnrm bench`: the selected scenarios run `--warmup` rounds, then `--rounds`
//! measured rounds, in one session whose warm pool is kept across rounds; statistics
//! per scenario and per step, saved and compared on request.

use super::{connect_engine, end_session, print_prepared, runtime, watch_signals};
use crate::cli::{BenchArgs, BenchFormat};
use crate::exit;
use clnrm_core::bench::{self, BenchResult};
use clnrm_core::config::{RunConfig, RunFlags, Subset};
use clnrm_core::exec::{Event, Stop};
use clnrm_core::pipeline::{self, Host, Sink};

/// Takes no event: the command says on stderr which round runs, and reports at the end.
struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _event: &Event) {}
}

/// Runs the command.
pub fn run(args: BenchArgs) -> i32 {
    for name in args.save.iter().chain(&args.compare) {
        if !bench::valid_name(name) {
            eprintln!(
                "error: invalid bench name \"{name}\": use letters, digits, `.`, `-` and `_`"
            );
            return exit::INVALID_INPUT;
        }
    }
    if !(args.threshold >= 0.0 && args.threshold.is_finite()) {
        eprintln!(
            "error: invalid --threshold {}: expected a percentage, 0 or more",
            args.threshold
        );
        return exit::INVALID_INPUT;
    }
    let prepared = super::prepare(&args.paths, &args.vars);
    if let Err(code) = print_prepared(&prepared, "nothing was run") {
        return code;
    }
    let layout = prepared.project.layout();
    let saved = match &args.compare {
        Some(name) => match BenchResult::load(&layout.bench(name)) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: --compare {name}: {e}");
                return exit::INVALID_INPUT;
            }
        },
        None => None,
    };
    let flags = RunFlags {
        workers: Some(args.workers),
        filter: args.filter.clone(),
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        failed: args.failed,
        ..RunFlags::default()
    };
    let config = match super::run::resolve(&flags, &prepared) {
        Ok(c) => c.measuring(),
        Err(code) => return code,
    };
    // What every round runs, chosen once, before the engine is asked anything.
    let mut ids: std::collections::BTreeSet<String> = pipeline::selected_ids(&prepared, &config)
        .into_iter()
        .collect();
    if args.failed {
        let (failed, warning) = pipeline::outcomes::failed_at(&layout.outcomes());
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        let before = ids.len();
        ids.retain(|id| failed.contains(id));
        if ids.is_empty() && before > 0 {
            eprintln!(
                "--failed: none of the {before} selected failed in its last run; nothing runs"
            );
            return exit::SUCCESS;
        }
        eprintln!(
            "--failed: measuring the {} of {before} selected whose last run failed",
            ids.len()
        );
    }
    if ids.is_empty() {
        eprintln!("error: no scenario selected");
        return exit::INVALID_INPUT;
    }
    let config = RunConfig {
        subset: Subset::Ids(ids),
        ..config
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let warmup = args.warmup as usize;
    let total = warmup + args.rounds as usize;
    let outcome = rt.block_on(async {
        let engine = connect_engine(&prepared.project.config.executor).await?;
        let stop = Stop::default();
        tokio::spawn(watch_signals(stop.clone()));
        // One session for every round: its warm pool is what a round measures with.
        let session = pipeline::start_session(engine, &prepared, &config, true).await;
        for w in session.warnings() {
            eprintln!("warning: {w}");
        }
        let mut measured = Vec::new();
        let mut interrupted = false;
        let mut failed = None;
        for round in 1..=total {
            let what = if round <= warmup { "warm-up" } else { "round" };
            eprintln!("{what} {round}/{total}");
            let host = Host::Session(&session);
            let report = match pipeline::run(&prepared, &config, host, Quiet, stop.clone()).await {
                Ok(ran) => ran.report,
                Err(e) => {
                    failed = Some(super::run::pipeline_error(&e));
                    break;
                }
            };
            if report.interrupted {
                interrupted = true;
                break;
            }
            if round > warmup {
                measured.push(report);
            }
        }
        end_session(&session, &stop).await;
        match failed {
            Some(code) => Err(code),
            None => Ok((measured, interrupted)),
        }
    });
    let (measured, interrupted) = match outcome {
        Ok(o) => o,
        Err(code) => return code,
    };
    if interrupted {
        eprintln!("interrupted: nothing measured is reported");
        return exit::INTERRUPTED;
    }
    let result = BenchResult::of(&measured, warmup);
    let changes = saved
        .as_ref()
        .map(|old| bench::compare(&result, old, args.threshold));
    match args.format {
        BenchFormat::Human => print!("{}", bench::to_human(&result, changes.as_deref())),
        BenchFormat::Markdown => print!("{}", bench::to_markdown(&result, changes.as_deref())),
        BenchFormat::Json => {
            let mut v = serde_json::to_value(&result).unwrap_or_default();
            if let Some(c) = &changes {
                v["compare"] = serde_json::json!({
                    "name": args.compare,
                    "threshold": args.threshold,
                    "changes": c,
                });
            }
            println!("{v:#}");
        }
    }
    if let Some(name) = &args.save {
        let path = layout.bench(name);
        if let Err(e) = result.save(&path) {
            eprintln!("error: cannot save {}: {e}", path.display());
            return exit::ENVIRONMENT;
        }
        eprintln!("saved {}", prepared.project.display(&path));
    }
    let regressed = changes.iter().flatten().filter(|c| c.regressed).count();
    if regressed > 0 {
        eprintln!(
            "{regressed} scenario median(s) slower by more than {}% than {}",
            args.threshold,
            args.compare.as_deref().unwrap_or_default()
        );
    }
    if result.has_failures() || regressed > 0 {
        exit::TEST_FAILURE
    } else {
        exit::SUCCESS
    }
}
