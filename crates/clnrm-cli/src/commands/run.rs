//! `clnrm run`: render and validate (refusing invalid files), plan, execute in
//! containers, report. Ctrl-C or SIGTERM stops the run, removes its containers,
//! writes the partial report and exits 130; a second one exits at once.

use super::{baseline, prepare};
use crate::cli::{DiagFormat, RunArgs, RunFormat};
use crate::exit;
use crate::output::{plural, print_diagnostics};
use crate::telemetry::{self, Telemetry};
use clnrm_core::backend::{Deadlines, Docker, Engine, EngineError};
use clnrm_core::cache::Cache;
use clnrm_core::exec::{Event, Reason, RunOptions, RunOwner, Session, Status, Stop};
use clnrm_core::plan::{Plan, PlanOptions, plan};
use clnrm_core::project::{ExecutorConfig, Project};
use clnrm_core::report::{HumanReporter, RunReport, to_digest, to_json, to_junit, to_markdown};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs the command.
pub fn run(args: RunArgs) -> i32 {
    let started = std::time::Instant::now();
    let prepared = prepare(&args.paths, &args.vars);
    let diags = prepared.diagnostics();
    let invalid = prepared.invalid_files();
    if invalid > 0 || diags.iter().any(|d| d.is_error()) {
        let summary = format!(
            "error: {} of {} invalid; nothing was run",
            plural(invalid, "file"),
            prepared.files.len()
        );
        print_diagnostics(&diags, DiagFormat::Human, prepared.files.len(), &summary);
        return exit::INVALID_INPUT;
    }
    if !diags.is_empty() {
        print_diagnostics(
            &diags,
            DiagFormat::Human,
            prepared.files.len(),
            &plural(diags.len(), "warning"),
        );
    }
    let executor = prepared.project.config.executor.clone();
    let opts = match plan_options(&args, executor.clone(), prepared.context.clone()) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::INVALID_INPUT;
        }
    };
    let plan = plan(&prepared.files, &opts);
    let project = prepared.project.clone();
    let mut run_opts = run_options(&args, &project, RunOwner::current());
    run_opts.cache = open_cache(&project);
    if !args.update_baseline {
        match baseline::check(&project, None) {
            Ok(b) => run_opts.baseline = Some(Arc::new(b)),
            Err(e) => {
                eprintln!("error: {e}");
                return baseline::exit_code(&e);
            }
        }
    }
    if !args.update_baseline
        && !telemetry::wanted()
        && let Some(code) = fully_cached(&args, &plan, &run_opts, &project, started)
    {
        return code;
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(run_async(&args, plan, run_opts, &project))
}

/// The fast path of a run where every scenario is unchanged since its last passing
/// run: the image ids are read with plain requests, nothing else touches the engine, no
/// async runtime starts. `None` when something must run (or the fast path cannot tell).
fn fully_cached(
    args: &RunArgs,
    plan: &Plan,
    opts: &RunOptions,
    project: &Project,
    started: std::time::Instant,
) -> Option<i32> {
    let images: std::collections::BTreeSet<String> = plan
        .selected()
        .flat_map(|s| s.env.services.iter().map(|v| v.image.clone()))
        .collect();
    let images: Vec<String> = images.into_iter().collect();
    let ids = clnrm_core::backend::image_ids_now(&images)?;
    let results = clnrm_core::exec::all_cached(plan, &ids, opts)?;
    let report = RunReport {
        run_id: opts.owner.run_id.clone(),
        results,
        duration: started.elapsed(),
        interrupted: false,
    };
    if args.format == RunFormat::Human {
        // Nothing is live here: one buffered write instead of a write per line.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = std::io::stdout().is_terminal();
        let out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut h = HumanReporter::new(out, tty && !no_color, false);
        h.event(&Event::RunStarted {
            run_id: report.run_id.clone(),
            total: plan.selected().count(),
            workers: opts.workers,
        });
        for r in &report.results {
            h.event(&Event::ScenarioFinished(r.clone()));
        }
        h.finish(&report);
    }
    Some(conclude(
        args,
        &report,
        &plan.files,
        opts.cache.clone(),
        project,
    ))
}

/// Options from the project config alone: its workers, no cache, no baseline.
pub fn base_options(project: &Project, owner: RunOwner) -> RunOptions {
    let executor = &project.config.executor;
    RunOptions {
        workers: executor
            .worker_count
            .map_or_else(clnrm_core::cpus, |w| w as usize),
        fail_fast: false,
        max_containers: executor.max_concurrent_containers as usize,
        owner,
        warm_pool: true,
        artifacts: Some(artifacts_dir(project)),
        baseline: None,
        cache: None,
        force: false,
    }
}

/// Options from `run`'s flags over the project config (no cache, no baseline yet).
pub fn run_options(args: &RunArgs, project: &Project, owner: RunOwner) -> RunOptions {
    let base = base_options(project, owner);
    RunOptions {
        workers: args.workers.map_or(base.workers, |w| w as usize),
        fail_fast: args.fail_fast,
        warm_pool: !args.no_pool,
        force: args.force,
        ..base
    }
}

/// The project's cache when `cache.enabled`, its warning (if the file was unusable) printed.
pub fn open_cache(project: &Project) -> Option<Arc<std::sync::Mutex<Cache>>> {
    project.config.cache.enabled.then(|| {
        let cache = Cache::open(&cache_dir(project));
        if let Some(w) = &cache.warning {
            eprintln!("warning: {w}");
        }
        Arc::new(std::sync::Mutex::new(cache))
    })
}

/// The change-detection cache's directory.
pub fn cache_dir(project: &Project) -> PathBuf {
    project.layout().cache()
}

/// Where collected spans are saved.
pub fn artifacts_dir(project: &Project) -> PathBuf {
    project.layout().artifacts()
}

/// A runtime for the engine and the run.
pub fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(clnrm_core::cpus().clamp(2, 8))
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::ENVIRONMENT
        })
}

pub fn plan_options(
    args: &RunArgs,
    executor: clnrm_core::project::ExecutorConfig,
    context: String,
) -> Result<PlanOptions, String> {
    let filter = match &args.filter {
        Some(g) => Some(
            globset::Glob::new(g)
                .map_err(|e| format!("invalid --filter \"{g}\": {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let partition = match &args.partition {
        Some(p) => Some(parse_partition(p)?),
        None => None,
    };
    if let Some(c) = args.cpu
        && !(c > 0.0 && c <= 1024.0)
    {
        return Err(format!(
            "invalid --cpu {c}: expected cores above 0, e.g. 0.5"
        ));
    }
    Ok(PlanOptions {
        memory_mb: args.memory,
        cpus: args.cpu,
        filter,
        partition,
        executor,
        context,
    })
}

fn parse_partition(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("invalid --partition \"{text}\": expected K/N with 1 <= K <= N, e.g. 1/4");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

async fn run_async(args: &RunArgs, plan: Plan, opts: RunOptions, project: &Project) -> i32 {
    let files = plan.files.clone();
    let cache = opts.cache.clone();
    let human = args.format == RunFormat::Human;
    let report = match execute_plan(
        plan,
        opts,
        if human {
            Output::Human
        } else {
            Output::Progress
        },
        &project.config.executor,
    )
    .await
    {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut code = conclude(args, &report, &files, cache, project);
    if args.update_baseline && !report.interrupted {
        let passed: Vec<String> = report
            .results
            .iter()
            .filter(|r| r.status == Status::Passed)
            .map(|r| r.id.0.clone())
            .collect();
        match baseline::record(project, &passed) {
            Ok(n) => eprintln!(
                "recorded the span trees of {} in {}",
                plural(n, "scenario"),
                baseline::path(project).display()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                code = code.max(baseline::exit_code(&e));
            }
        }
    }
    code
}

/// Prints the machine formats, saves the cache, writes the report files; the exit code.
fn conclude(
    args: &RunArgs,
    report: &RunReport,
    files: &[clnrm_core::plan::PlannedFile],
    cache: Option<Arc<std::sync::Mutex<Cache>>>,
    project: &Project,
) -> i32 {
    match args.format {
        RunFormat::Human => {}
        RunFormat::Json => println!("{:#}", to_json(report)),
        RunFormat::Junit => print!("{}", to_junit(report)),
        RunFormat::Markdown => print!("{}", to_markdown(report)),
    }
    let mut code = exit_code(report);
    if let Some(cache) = cache {
        let max = project.config.cache.max_entries as usize;
        let saved = cache
            .lock()
            .map_err(|_| "poisoned".to_owned())
            .and_then(|c| c.save(max).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            eprintln!(
                "warning: could not save the cache in {}: {e}",
                cache_dir(project).display()
            );
        }
    }
    if let Err(e) = write_reports(args, report, files) {
        eprintln!("error: {e}");
        code = code.max(exit::ENVIRONMENT);
    }
    code
}

/// Where a run's events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The human report on stdout.
    Human,
    /// Progress on stderr when it is a terminal (a machine format follows on stdout).
    Progress,
}

/// Connects to the engine and executes `plan`; `Err` holds the exit code when no
/// engine answers. Handles Ctrl-C and SIGTERM, and exports clnrm's own spans.
pub async fn execute_plan(
    plan: Plan,
    opts: RunOptions,
    output: Output,
    executor: &ExecutorConfig,
) -> Result<RunReport, i32> {
    let engine = connect_engine(executor).await?;
    let stop = Stop::default();
    tokio::spawn(watch_signals(stop.clone()));
    let otlp = plan.selected().any(|s| s.env.otlp.is_some());
    let session = Session::start(engine, &opts, otlp, false).await;
    for w in session.warnings() {
        eprintln!("warning: {w}");
    }
    let mut report = run_in_session(&session, plan, &opts, output, stop.clone()).await;
    end_session(&session, &stop).await;
    // Ctrl-C during the teardown interrupts the run too (the results stand).
    report.interrupted |= stop.interrupt.is_cancelled();
    Ok(report)
}

/// How long removing a run's containers may take after Ctrl-C.
const TEARDOWN_AFTER_INTERRUPT: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes what the session started (after an interrupt, for at most
/// [`TEARDOWN_AFTER_INTERRUPT`]; after a second one, not at all). Says what is left
/// for the next run to remove.
pub async fn end_session(session: &Session<Engine>, stop: &Stop) {
    // The time left starts when an interrupt comes, during the teardown too.
    let out_of_time = async {
        stop.interrupt.cancelled().await;
        tokio::time::sleep(TEARDOWN_AFTER_INTERRUPT).await;
    };
    let left = tokio::select! {
        left = session.shutdown() => left,
        () = out_of_time => session.leftovers(),
        () = stop.force.cancelled() => {
            eprintln!("stopped without removing this run's containers; the next run removes them");
            return;
        }
    };
    if !left.is_empty() {
        eprintln!(
            "warning: {} and {} could not be removed (the engine did not answer); the next run removes them",
            plural(left.containers, "container"),
            plural(left.networks, "network")
        );
    }
}

/// The container engine with the project's deadlines, or the exit code after saying
/// why there is none.
pub async fn connect_engine(executor: &ExecutorConfig) -> Result<Arc<Engine>, i32> {
    let connected = Docker::connect()
        .await
        .map(|d| Deadlines::new(d, executor.engine_timeout(), executor.pull_timeout()));
    match connected {
        Ok(d) => Ok(Arc::new(d)),
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, EngineError::Unreachable { .. }) {
                eprintln!(
                    "  = help: start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), \
                     or set DOCKER_HOST to a running engine (a Podman socket works too)"
                );
            }
            Err(exit::ENVIRONMENT)
        }
    }
}

/// Runs `plan` in `session`, reporting as it goes.
pub async fn run_in_session(
    session: &Session<Engine>,
    plan: Plan,
    opts: &RunOptions,
    output: Output,
    stop: Stop,
) -> RunReport {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let reporter = tokio::task::spawn_blocking(move || {
        let mut sink = Sink::new(output == Output::Human, no_color);
        let mut telemetry = telemetry::wanted().then(Telemetry::new);
        while let Some(event) = rx.blocking_recv() {
            sink.event(&event);
            if let Some(t) = &mut telemetry {
                t.event(&event);
            }
        }
        (sink, telemetry)
    });
    let run_id = opts.owner.run_id.clone();
    let outcome = session.run(plan, opts, tx, stop).await;
    let report = RunReport {
        run_id,
        results: outcome.results,
        duration: outcome.duration,
        interrupted: outcome.interrupted,
    };
    if let Ok((mut sink, telemetry)) = reporter.await {
        sink.finish(&report);
        if let Some(t) = telemetry
            && let Err(e) = t.export().await
        {
            eprintln!("warning: could not export clnrm's own spans: {e}");
        }
    }
    report
}

/// Where events go: the human report on stdout, or (for machine formats, whose
/// document goes to stdout at the end) progress on stderr when it is a terminal.
enum Sink {
    Human(HumanReporter<std::io::Stdout>),
    Progress(Option<HumanReporter<std::io::Stderr>>),
}

impl Sink {
    fn new(human: bool, no_color: bool) -> Self {
        if human {
            let tty = std::io::stdout().is_terminal();
            Sink::Human(HumanReporter::new(std::io::stdout(), tty && !no_color, tty))
        } else {
            let tty = std::io::stderr().is_terminal();
            Sink::Progress(tty.then(|| HumanReporter::new(std::io::stderr(), false, true)))
        }
    }

    fn event(&mut self, event: &Event) {
        match self {
            Sink::Human(h) => h.event(event),
            Sink::Progress(Some(p)) => p.event(event),
            Sink::Progress(None) => {}
        }
    }

    fn finish(&mut self, report: &RunReport) {
        if let Sink::Human(h) = self {
            h.finish(report);
        }
    }
}

/// The exit code of a run's report.
pub fn exit_code(report: &RunReport) -> i32 {
    if report.interrupted {
        return exit::INTERRUPTED;
    }
    let environment = report.results.iter().any(|r| {
        r.status == Status::Error && matches!(r.reason, Some(Reason::Image | Reason::Engine))
    });
    if environment {
        exit::ENVIRONMENT
    } else if report
        .results
        .iter()
        .any(|r| matches!(r.status, Status::Failed | Status::Error))
    {
        exit::TEST_FAILURE
    } else {
        exit::SUCCESS
    }
}

pub fn write_reports(
    args: &RunArgs,
    report: &RunReport,
    files: &[clnrm_core::plan::PlannedFile],
) -> Result<(), String> {
    if let Some(dir) = &args.report_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        write(
            &dir.join("report.json"),
            &format!("{:#}\n", to_json(report)),
        )?;
        write(&dir.join("junit.xml"), &to_junit(report))?;
        write(&dir.join("report.md"), &to_markdown(report))?;
    }
    for (i, f) in files.iter().enumerate() {
        let mine = report.of_file(i);
        if let Some(p) = &f.report_json {
            write(p, &format!("{:#}\n", to_json(&mine)))?;
        }
        if let Some(p) = &f.report_junit {
            write(p, &to_junit(&mine))?;
        }
        if let Some(p) = &f.report_digest {
            write(p, &to_digest(&mine, &f.display))?;
        }
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a reader never sees half a report.
fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}

/// The first Ctrl-C or SIGTERM stops the run gracefully (`stop.interrupt`); a second
/// one stops it now (`stop.force`): the report is still written. The signal streams
/// are made once, so that a second signal arriving at once is not missed.
pub async fn watch_signals(stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("warning: cannot watch for Ctrl-C; it will end clnrm without cleaning up");
        return;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    next().await;
    eprintln!("\ninterrupted: stopping, removing this run's containers (again to stop at once)");
    stop.interrupt.cancel();
    next().await;
    eprintln!("interrupted again: stopping now");
    stop.force.cancel();
}
