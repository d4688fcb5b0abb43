//! One module per command; each returns the process exit code.

mod bench;
mod build;
mod cache;
mod diff;
mod docs;
mod expect;
mod import;
mod init;
mod list;
mod remote;
mod render;
mod report;
mod run;
mod serve;
mod snapshots;
mod validate;
mod watch;

pub use crate::sink::Output;

use crate::cli::{Cli, Command, DiagFormat, VarArgs};
use crate::exit;
use crate::output::{plural, print_diagnostics};
use clnrm_core::backend::{Deadlines, Docker, Engine, EngineError};
use clnrm_core::diag::Diagnostic;
use clnrm_core::exec::{Session, Stop};
use clnrm_core::pipeline::{self, Prepared};
use clnrm_core::project::ExecutorConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the chosen command.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Build(args) => build::run(&args),
        Command::Render(args) => render::run(args),
        Command::List(args) => list::run(args),
        Command::Init(args) => init::run(args),
        Command::Import(args) => import::run(&args),
        Command::Expect(args) => expect::run(&args),
        Command::Lsp(_) => match clnrm_lsp::run_stdio() {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                eprintln!("error: clnrm lsp: {e}");
                exit::ENVIRONMENT
            }
        },
        Command::Run(args) if args.server.is_some() => remote::run(&args),
        Command::Run(args) => run::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Cache(args) => cache::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Report(args) => report::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => serve::worker(args),
        Command::Snapshots(args) => snapshots::run(args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
    }
}

/// Validates every test file under `paths` of the project around the current
/// directory, with `vars` applied.
pub fn prepare(paths: &[PathBuf], vars: &VarArgs) -> Prepared {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    pipeline::prepare(&cwd, paths, &vars.vars)
}

/// Prints the diagnostics of a run's files: all of them, and `Err` with the exit
/// code, when anything is an error (then nothing runs: `what_not`); warnings only,
/// when there are some.
pub fn print_prepared(prepared: &Prepared, what_not: &str) -> Result<(), i32> {
    let diags = prepared.diagnostics();
    let files = prepared.files.len();
    if prepared.has_errors() {
        let summary = format!(
            "error: {} of {files} invalid; {what_not}",
            plural(prepared.invalid_files(), "file")
        );
        print_diagnostics(&diags, DiagFormat::Human, files, &summary);
        return Err(exit::INVALID_INPUT);
    }
    if !diags.is_empty() {
        print_diagnostics(
            &diags,
            DiagFormat::Human,
            files,
            &plural(diags.len(), "warning"),
        );
    }
    Ok(())
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

/// The container engine with the project's deadlines, not asked anything yet (a run
/// asks it only when something must run), or the exit code after saying why there
/// is none.
pub fn lazy_engine(executor: &ExecutorConfig) -> Result<Arc<Engine>, i32> {
    match Docker::new() {
        Ok(d) => Ok(Arc::new(with_deadlines(d, executor))),
        Err(e) => Err(engine_error(&e)),
    }
}

/// `docker` with the deadlines of `executor`.
pub fn with_deadlines(docker: Docker, executor: &ExecutorConfig) -> Engine {
    Deadlines::new(docker, executor.engine_timeout(), executor.pull_timeout())
}

/// Says that the engine cannot be used, with what to do when none answers; the exit
/// code.
pub fn engine_error(e: &EngineError) -> i32 {
    eprintln!("error: {e}");
    if matches!(e, EngineError::Unreachable { .. }) {
        eprintln!(
            "  = help: start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), \
             or set DOCKER_HOST to a running engine (a Podman socket works too)"
        );
    }
    exit::ENVIRONMENT
}

/// The container engine with the project's deadlines, connected, or the exit code
/// after saying why there is none.
pub async fn connect_engine(executor: &ExecutorConfig) -> Result<Arc<Engine>, i32> {
    let connected = Docker::connect()
        .await
        .map(|d| Deadlines::new(d, executor.engine_timeout(), executor.pull_timeout()));
    connected.map(Arc::new).map_err(|e| engine_error(&e))
}

/// Removes what the session started (see [`pipeline::end_session`]); says what is
/// left for the next run to remove.
pub async fn end_session(session: &Session<Engine>, stop: &Stop) {
    for w in pipeline::end_session(session, stop).await {
        eprintln!("warning: {w}");
    }
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

/// Exit code for a set of diagnostics.
pub fn exit_code_for(diags: &[&Diagnostic], deny_warnings: bool) -> i32 {
    if diags.iter().any(|d| d.is_error() || deny_warnings) {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    }
}
