//! `clnrm run`: the pipeline of `clnrm_core::pipeline` with this command's flags and
//! sinks: prepare (refusing invalid files), plan, execute in containers, conclude,
//! print the report. Ctrl-C or SIGTERM stops the run, removes its containers, writes
//! the partial report and exits 130; a second one stops it at once.

use super::{Output, connect_engine, end_session, print_prepared, runtime, watch_signals};
use crate::cli::{RunArgs, RunFormat};
use crate::exit;
use crate::output::plural;
use crate::sink::CliSink;
use crate::telemetry;
use clnrm_core::config::{RunConfig, RunFlags};
use clnrm_core::exec::{Event, RunOwner, Session, Stop};
use clnrm_core::exec::{ScenarioResult, StepResult};
use clnrm_core::expect::Position;
use clnrm_core::pipeline::{self, Concluded, PipelineError, Planned, Prepared};
use clnrm_core::report::{
    HumanReporter, RunReport, Verdict, to_html, to_json, to_junit, to_markdown,
};
use std::io::IsTerminal;

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
    }
}

/// Runs the command.
pub fn run(args: RunArgs) -> i32 {
    if args.server.is_some() {
        return super::remote::run(&args);
    }
    let started = std::time::Instant::now();
    let prepared = super::prepare(&args.paths, &args.vars);
    if let Err(code) = print_prepared(&prepared, "nothing was run") {
        return code;
    }
    let config = match RunConfig::resolve(&flags(&args), &prepared.project) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let planned = match pipeline::plan_run(&prepared, &config, RunOwner::current()) {
        Ok(p) => p,
        Err(e) => return pipeline_error(&e),
    };
    for w in &planned.warnings {
        eprintln!("warning: {w}");
    }
    if !config.update_baseline
        && !telemetry::wanted()
        && let Some(report) = pipeline::all_cached(&planned, started)
    {
        print_cached(args.format, &planned, &report);
        return finish(args.format, &prepared, &config, &planned, &report);
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let output = if args.format == RunFormat::Human {
        Output::Human
    } else {
        Output::Progress
    };
    let report = match runtime.block_on(execute(&prepared, &planned, output)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    finish(args.format, &prepared, &config, &planned, &report)
}

/// Connects to the engine and executes `planned` in a session of its own, handling
/// Ctrl-C and SIGTERM; `Err` holds the exit code when no engine answers.
pub async fn execute(
    prepared: &Prepared,
    planned: &Planned,
    output: Output,
) -> Result<RunReport, i32> {
    let engine = connect_engine(&prepared.project.config.executor).await?;
    let stop = Stop::default();
    tokio::spawn(watch_signals(stop.clone()));
    let otlp = planned.plan.selected().any(|s| s.env.otlp.is_some());
    let session = Session::start(engine, &planned.options.session(), otlp, false).await;
    for w in session.warnings() {
        eprintln!("warning: {w}");
    }
    let mut report = pipeline::execute(&session, planned, CliSink::new(output), stop.clone()).await;
    end_session(&session, &stop).await;
    // Ctrl-C during the teardown interrupts the run too (the results stand).
    report.interrupted |= stop.interrupt.is_cancelled();
    Ok(report)
}

/// The human report of a fully cached run, written at once.
fn print_cached(format: RunFormat, planned: &Planned, report: &RunReport) {
    if format != RunFormat::Human {
        return;
    }
    // Nothing is live here: one buffered write instead of a write per line.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let tty = std::io::stdout().is_terminal();
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut h = HumanReporter::new(out, tty && !no_color, false);
    h.event(&Event::RunStarted {
        run_id: report.run_id.clone(),
        total: planned.plan.selected().count(),
        workers: planned.options.workers,
    });
    for r in &report.results {
        h.event(&Event::ScenarioFinished(r.clone()));
    }
    h.finish(report);
}

/// Prints the machine format, concludes the run (cache, baseline, report files);
/// the exit code.
pub fn finish(
    format: RunFormat,
    prepared: &Prepared,
    config: &RunConfig,
    planned: &Planned,
    report: &RunReport,
) -> i32 {
    finish_with(format, prepared, config, planned, report).0
}

/// [`finish`], also giving the host paths the run itself changed.
pub fn finish_with(
    format: RunFormat,
    prepared: &Prepared,
    config: &RunConfig,
    planned: &Planned,
    report: &RunReport,
) -> (i32, clnrm_core::inputs::written::Written) {
    print_report(format, report, Some(prepared));
    let mut code = exit_code(report, config.flaky_fails);
    let mut written = clnrm_core::inputs::written::Written::new();
    match pipeline::conclude(&prepared.project, config, planned, report) {
        Ok(Concluded {
            recorded,
            warnings,
            written_inputs,
        }) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            if let Some(r) = recorded {
                say_recorded(&prepared.project, &r);
            }
            written = written_inputs;
        }
        Err(e) => code = code.max(pipeline_error(&e)),
    }
    (code, written)
}

/// Prints a machine format of `report` on stdout (the human one is live). The files
/// of `prepared` give HTML its spans (the project's artifacts) and GitHub's
/// annotations their lines; without them, neither.
pub fn print_report(format: RunFormat, report: &RunReport, prepared: Option<&Prepared>) {
    match format {
        RunFormat::Html => {
            let artifacts = prepared.map(|p| p.project.layout().artifacts());
            let runs = [report.run_id.clone()];
            match &artifacts {
                Some(dir) => print!(
                    "{}",
                    to_html(
                        report,
                        &clnrm_core::report::html::artifact_spans(dir, &runs)
                    )
                ),
                None => print!("{}", to_html(report, &|_| None)),
            }
        }
        RunFormat::Human => {}
        RunFormat::Json => println!("{:#}", to_json(report)),
        RunFormat::Junit => print!("{}", to_junit(report)),
        RunFormat::Markdown => print!("{}", to_markdown(report)),
        RunFormat::Github => {
            let site = step_site(prepared);
            print!("{}", clnrm_core::report::github::to_github(report, &site));
            // The job summary: the Markdown report, appended (several steps may write).
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                use std::io::Write as _;
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(to_markdown(report).as_bytes()));
                if let Err(e) = written {
                    eprintln!(
                        "warning: cannot write the job summary to {}: {e}",
                        std::path::Path::new(&path).display()
                    );
                }
            }
        }
    }
}

/// Where each step of a report is written, from the files `prepared` read: the
/// step's `name`, else the scenario's `run`, else its `name`.
fn step_site(
    prepared: Option<&Prepared>,
) -> impl Fn(&ScenarioResult, &StepResult) -> Option<Position> + '_ {
    let origins: Vec<std::sync::OnceLock<Vec<Option<usize>>>> = prepared
        .map(|p| p.files.iter().map(|_| Default::default()).collect())
        .unwrap_or_default();
    move |r, st| {
        let files = &prepared?.files;
        let (i, cf) = files
            .iter()
            .enumerate()
            .find(|(_, f)| f.display == r.file)?;
        let (file, source) = (cf.file.as_ref()?, cf.rendered.as_ref()?);
        let sc = file.scenarios.iter().find(|s| s.name.value == r.name)?;
        let span = sc
            .steps
            .iter()
            .find(|s| s.name.value == st.name)
            .map(|s| s.name.span)
            .or_else(|| sc.run.as_ref().map(|run| run.span))
            .unwrap_or(sc.name.span);
        Some(Position::locate(source, &cf.display, span, origins.get(i)?))
    }
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
    eprintln!("error: {e}");
    if e.is_invalid_input() {
        exit::INVALID_INPUT
    } else {
        exit::ENVIRONMENT
    }
}

/// The exit code of a run's report; `flaky_fails`: a flaky scenario fails it.
pub fn exit_code(report: &RunReport, flaky_fails: bool) -> i32 {
    match report.verdict(flaky_fails) {
        Verdict::Passed => exit::SUCCESS,
        Verdict::Failed => exit::TEST_FAILURE,
        Verdict::Environment => exit::ENVIRONMENT,
        Verdict::Interrupted => exit::INTERRUPTED,
    }
}
