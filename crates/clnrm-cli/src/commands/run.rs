//! `clnrm run`: the pipeline of `clnrm_core::pipeline` with this command's flags and
//! sinks: prepare (refusing invalid files), plan, execute in containers, conclude,
//! print the report. Ctrl-C or SIGTERM stops the run, removes its containers, writes
//! the partial report and exits 130; a second one stops it at once.

use super::{
    Output, engine_error, lazy_engine, print_prepared, runtime, watch_signals, with_deadlines,
};
use crate::cli::{RunArgs, RunFormat};
use crate::exit;
use crate::output::plural;
use crate::sink::CliSink;
use clnrm_core::backend::Docker;
use clnrm_core::config::{RunConfig, RunFlags};
use clnrm_core::exec::Stop;
use clnrm_core::pipeline::{self, Host, PipelineError, Prefetch, Prepared, Ran};
use clnrm_core::project::Project;
use std::sync::Arc;

/// The flags of `run` (and `watch`) as the pipeline reads them.
pub fn flags(args: &RunArgs) -> RunFlags {
    RunFlags {
        workers: args.workers,
        fail_fast: args.fail_fast,
        force: args.force,
        no_pool: args.no_pool,
        filter: args.filter.clone(),
        partition: args.partition.clone(),
        save_timings: args.save_timings,
        retries: args.retries,
        flaky_fails: args.flaky_fails,
        update_snapshots: args.update_snapshots,
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        memory_mb: args.memory,
        cpus: args.cpu,
        update_baseline: args.update_baseline,
        report_dir: args.report_dir.clone(),
        failed: args.failed,
        only: Vec::new(),
    }
}

/// Runs the command.
pub fn run(args: RunArgs) -> i32 {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let (project, general) = Project::discover(&cwd);
    let prefetch = prefetch(&runtime, &project, &args);
    let prepared = pipeline::prepare_in(project, general, &args.paths, &args.vars.vars, false);
    let config = print_prepared(&prepared, "nothing was run")
        .and_then(|()| resolve(&flags(&args), &prepared));
    let config = match config {
        Ok(c) => c,
        Err(code) => {
            // Nothing is waited for (a prefetch's engine lookup included).
            drop(prefetch);
            runtime.shutdown_background();
            return code;
        }
    };
    let ran = runtime.block_on(async {
        let host = match prefetch {
            Some((engine, prefetch)) => Host::Prefetched(engine, prefetch),
            None => Host::Engine(lazy_engine(&prepared.project.config.executor)?),
        };
        let stop = Stop::default();
        tokio::spawn(watch_signals(stop.clone()));
        let sink = CliSink::new(Output::of(args.format));
        pipeline::run(&prepared, &config, host, sink, stop)
            .await
            .map_err(|e| pipeline_error(&e))
    });
    // Everything the run started has ended: nothing to wait for.
    runtime.shutdown_background();
    match ran {
        Ok(ran) => finish(args.format, &prepared, &config, &ran),
        Err(code) => code,
    }
}

/// When the cache may answer the run, the engine, already asked about the last run's
/// images, so that it answers while the files are read: what a fully cached run waits
/// for. `None` otherwise, or when no engine can even be made (which the run reports
/// once the files are known valid).
fn prefetch(
    runtime: &tokio::runtime::Runtime,
    project: &Project,
    args: &RunArgs,
) -> Option<(Arc<clnrm_core::backend::Engine>, Prefetch)> {
    let docker = flags(args)
        .cache_may_answer(project)
        .then(Docker::new)?
        .ok()?;
    let engine = Arc::new(with_deadlines(docker, &project.config.executor));
    let _in = runtime.enter();
    Some((engine.clone(), Prefetch::start(engine, &project.layout())))
}

/// `flags` resolved over the project's configuration, or the exit code after saying
/// why they cannot be.
pub fn resolve(flags: &RunFlags, prepared: &Prepared) -> Result<RunConfig, i32> {
    RunConfig::resolve(flags, &prepared.project).map_err(|e| {
        eprintln!("error: {e}");
        exit::INVALID_INPUT
    })
}

/// Prints the machine format and what concluding the run did; the exit code.
pub fn finish(format: RunFormat, prepared: &Prepared, config: &RunConfig, ran: &Ran) -> i32 {
    crate::sink::print_report(format, &ran.report, Some(prepared));
    let mut code = exit::of_report(&ran.report, config.flaky_fails);
    for w in &ran.concluded.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(r) = &ran.concluded.recorded {
        say_recorded(&prepared.project, r);
    }
    if let Some(e) = &ran.error {
        code = code.max(pipeline_error(e));
    }
    code
}

/// Says what `--update-baseline` recorded.
pub fn say_recorded(project: &clnrm_core::project::Project, r: &clnrm_core::diff::store::Recorded) {
    let layout = project.layout();
    if let Some(old) = &r.replaced {
        eprintln!(
            "warning: {} was not a clnrm baseline ({}); kept it as {} and recorded a new one",
            layout.baseline().display(),
            old.reason,
            old.backup.display()
        );
    }
    eprintln!(
        "recorded the span trees of {} in {}",
        plural(r.count(), "scenario"),
        layout.baseline().display()
    );
    if !r.not_recorded.is_empty() {
        eprintln!("not recorded ({}):", r.not_recorded.len());
        for (id, why) in &r.not_recorded {
            eprintln!("  {id}: {why}");
        }
    }
}

/// Says what went wrong; the exit code, the same for a kind of failure in every command.
pub fn pipeline_error(e: &PipelineError) -> i32 {
    if let PipelineError::Engine(e) = e {
        return engine_error(e);
    }
    eprintln!("error: {e}");
    if e.is_invalid_input() {
        exit::INVALID_INPUT
    } else {
        exit::ENVIRONMENT
    }
}
