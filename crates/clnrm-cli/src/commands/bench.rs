//! `clnrm bench`: the selected scenarios run `--warmup` rounds, then `--rounds`
//! measured rounds, in one session whose warm pool is kept across rounds; statistics
//! per scenario and per step, saved and compared on request.

use super::{connect_engine, end_session, print_prepared, runtime, watch_signals};
use crate::cli::{BenchArgs, BenchFormat};
use crate::exit;
use clnrm_core::bench::{self, BenchResult};
use clnrm_core::config::{RunConfig, RunFlags};
use clnrm_core::exec::{Event, RunOwner, Session, Stop};
use clnrm_core::pipeline::{self, Sink};

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
        force: true,
        filter: args.filter.clone(),
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        ..RunFlags::default()
    };
    let mut config = match RunConfig::resolve(&flags, &prepared.project) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    // Every round runs everything; nothing is compared with the baseline.
    config.cache = false;
    let mut planned = match pipeline::plan_run(&prepared, &config, RunOwner::current()) {
        Ok(p) => p,
        Err(e) => return super::run::pipeline_error(&e),
    };
    planned.options.baseline = None;
    planned.options.artifacts = None;
    // A round measures one run of each scenario: no retry hides a failure or adds time.
    planned.options.retries = 0;
    for sc in &mut planned.plan.scenarios {
        sc.retries = Some(0);
    }
    if planned.plan.selected().next().is_none() {
        eprintln!("error: no scenario selected");
        return exit::INVALID_INPUT;
    }
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
        let otlp = planned.plan.selected().any(|s| s.env.otlp.is_some());
        let session = Session::start(engine, &planned.options.session(), otlp, true).await;
        for w in session.warnings() {
            eprintln!("warning: {w}");
        }
        let mut measured = Vec::new();
        let mut interrupted = false;
        for round in 1..=total {
            let what = if round <= warmup { "warm-up" } else { "round" };
            eprintln!("{what} {round}/{total}");
            let report = pipeline::execute(&session, &planned, Quiet, stop.clone()).await;
            if report.interrupted {
                interrupted = true;
                break;
            }
            if round > warmup {
                measured.push(report);
            }
        }
        end_session(&session, &stop).await;
        Ok::<_, i32>((measured, interrupted))
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
