//! Command-line arguments.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Hermetic integration tests in containers, checked against the spans they emit.
#[derive(Debug, Parser)]
#[command(name = "clnrm", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios in containers: render, validate, execute, report.
    Run(RunArgs),
    /// Diff the span tree of each scenario's latest run against the baseline.
    Diff(DiffArgs),
    /// Show or empty the per-scenario change-detection cache.
    Cache(CacheArgs),
    /// Run once, then re-run the affected scenarios on every save.
    Watch(WatchArgs),
    /// Render templates and validate test definitions without running anything.
    Validate(ValidateArgs),
    /// Build the images the scenarios build from source (`[service.<id>.build]`),
    /// as a run would, without running anything (for a CI step, or to check a
    /// Dockerfile).
    Build(BuildArgs),
    /// Print the TOML a test definition renders to.
    Render(RenderArgs),
    /// Print the scenario ids a run would execute.
    List(ListArgs),
    /// Scaffold tests/, an example and .clnrm/config.toml.
    Init(InitArgs),
    /// Time scenarios: warm-up rounds, then measured rounds on the warm pool, with
    /// min, median, p95, mean and standard deviation per scenario and per step.
    Bench(BenchArgs),
    /// Work with report files: merge the reports of a run's shards.
    Report(ReportArgs),
    /// The runs service: an HTTP API where clients submit runs, with workers that
    /// run them (`serve token create` makes tokens).
    Serve(ServeArgs),
    /// Workers only: take runs from the service's database and run them here.
    Worker(WorkerArgs),
    /// Review pending output snapshots (.snap.new): list them with their diff,
    /// accept or reject them.
    Snapshots(SnapshotsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write man pages for clnrm and each of its commands into a directory.
    Man(ManArgs),
    /// Make a test definition from a Compose file: its services, and a starter
    /// scenario for each.
    Import(ImportArgs),
    /// The language server, over stdin and stdout, for editors: diagnostics as you
    /// type, completion, hover, go to definition, quick fixes.
    Lsp(LspArgs),
    /// Print a starter block of span expectations from a scenario's last saved spans
    /// (names, kinds, parents, attributes the last runs agreed on), ready to paste
    /// under the scenario.
    Expect(ExpectArgs),
}

/// `clnrm expect`.
#[derive(Debug, clap::Args)]
pub struct ExpectArgs {
    /// The scenario: its id, `file::name` (a glob matches several; each gets a block).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Files or directories to look in [default: the file the id names, else tests/].
    pub paths: Vec<PathBuf>,
    /// Template variables, as the run used them.
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm lsp`.
#[derive(Debug, clap::Args)]
pub struct LspArgs {
    /// Talk over stdin and stdout (the only transport; editors' clients pass it).
    #[arg(long)]
    pub stdio: bool,
}

/// `clnrm import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Compose file (compose.yaml, docker-compose.yml).
    pub file: PathBuf,
    /// Write the test definition here (then validate it) instead of printing it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `clnrm completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `clnrm man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write clnrm.1, clnrm-run.1, … into (made if missing).
    pub dir: PathBuf,
}

/// `clnrm snapshots`.
#[derive(Debug, clap::Args)]
pub struct SnapshotsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SnapshotsAction,
}

/// `clnrm snapshots` actions.
#[derive(Debug, Subcommand)]
pub enum SnapshotsAction {
    /// List the pending snapshots with a diff each; --accept or --reject them.
    Review(ReviewArgs),
}

/// `clnrm snapshots review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Make every listed pending snapshot the snapshot.
    #[arg(long, conflicts_with = "reject")]
    pub accept: bool,
    /// Drop every listed pending snapshot.
    #[arg(long)]
    pub reject: bool,
    /// Only the snapshots of scenarios whose id matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub filter: Option<String>,
}

/// `clnrm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Files or directories [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Rounds run first and not measured.
    #[arg(long, value_name = "W", default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub warmup: u64,
    /// Rounds measured.
    #[arg(long, value_name = "R", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub rounds: u64,
    /// Scenarios at once [default: 1, so that they do not slow each other].
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Keep the results in .clnrm/bench/NAME.json.
    #[arg(long, value_name = "NAME")]
    pub save: Option<String>,
    /// Put the results beside .clnrm/bench/NAME.json; exit 1 when a scenario's
    /// median got slower by more than --threshold.
    #[arg(long, value_name = "NAME")]
    pub compare: Option<String>,
    /// Percent a scenario's median may grow before --compare calls it a regression.
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BenchFormat::Human)]
    pub format: BenchFormat,
    /// Only scenario ids matching this glob (repeatable: any of them).
    #[arg(long, value_name = "GLOB")]
    pub filter: Vec<String>,
    /// Only the selected scenarios whose last outcome was failed or error.
    #[arg(long)]
    pub failed: bool,
    #[command(flatten)]
    pub tags: TagArgs,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm bench --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    /// A table on stdout.
    Human,
    /// One JSON document (the saved form, plus the comparison).
    Json,
    /// Markdown tables.
    Markdown,
}

/// `clnrm serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Token management.
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// Address to listen on (port 0: any free port; the one taken is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Workers in this process.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    /// No worker in this process: the API only (workers run elsewhere).
    #[arg(long)]
    pub no_worker: bool,
    /// The most a submitted project may hold, in MiB (compressed and unpacked).
    #[arg(long, value_name = "MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_upload_mb: u64,
    /// Runs that may wait in the queue; a submission past it is answered 503 with
    /// Retry-After.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued: u64,
    /// Let uploaded test files bind-mount host paths.
    #[arg(long)]
    pub allow_host_volumes: bool,
    /// Let uploaded test files build images from source (`[service.<id>.build]`):
    /// their Dockerfiles run on the workers' engines.
    #[arg(long)]
    pub allow_builds: bool,
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// The database of the runs service.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// The database: sqlite://PATH [default: sqlite://.clnrm/server.db in the project].
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

/// How long a worker's claim on a run lasts without renewal.
#[derive(Debug, clap::Args)]
pub struct LeaseArgs {
    /// Seconds a claimed run stays a worker's without a renewal (renewed every fifth
    /// of it); a worker that dies loses its runs after this long.
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_secs: u64,
}

/// `clnrm serve` actions.
#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Manage API tokens.
    Token(TokenArgs),
}

/// `clnrm serve token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TokenAction,
}

/// `clnrm serve token` actions.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// What it may do: read (GET), run (also submit and cancel), admin.
        #[arg(long, value_parser = ["read", "run", "admin"])]
        scope: String,
        /// A name to recognise it by.
        #[arg(long, default_value = "token")]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// `clnrm worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Workers in this process.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// `clnrm report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ReportAction,
}

/// `clnrm report` actions.
#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Merge the JSON reports of shards (`--partition`) into one report.json,
    /// junit.xml and report.md, and record the durations in .clnrm/timings.json.
    Merge(MergeArgs),
}

/// `clnrm report merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' report.json files (from `run --report-dir` or `--format json`).
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Directory to write report.json, junit.xml, report.md and report.html in.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Leave .clnrm/timings.json as it is.
    #[arg(long)]
    pub no_timings: bool,
    /// A FLAKY scenario makes the exit code 1.
    #[arg(long)]
    pub flaky_fails: bool,
}

/// Template variables given on the command line.
#[derive(Debug, clap::Args)]
pub struct VarArgs {
    /// Set a template variable (highest precedence); repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

/// `clnrm build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Files or directories [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Only the images of scenarios whose id (`file::name`) matches this glob
    /// (repeatable: any of them).
    #[arg(long, value_name = "GLOB")]
    pub filter: Vec<String>,
    /// Images built at once [default: executor.worker_count, else the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: Option<u64>,
    #[command(flatten)]
    pub tags: TagArgs,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories to validate [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// Diagnostic output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    /// rustc-style text on stderr.
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions annotations on stdout.
    Github,
}

/// `clnrm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Files or directories to run [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Run scenarios in parallel (the default; kept for scripts that pass it).
    #[arg(long)]
    pub parallel: bool,
    /// Scenarios at once [default: executor.worker_count, else the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: Option<u64>,
    /// Stop starting scenarios after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run only scenarios whose id (`file::name`) matches this glob (repeatable: any
    /// of them).
    #[arg(long, value_name = "GLOB")]
    pub filter: Vec<String>,
    /// Run the K-th of N slices of the scenarios (for CI sharding): K/N round-robin,
    /// hash:K/N by id, duration:K/N balanced by .clnrm/timings.json, e.g. duration:2/4.
    #[arg(long, value_name = "[MODE:]K/N")]
    pub partition: Option<String>,
    /// Record the durations of the scenarios that ran in .clnrm/timings.json.
    #[arg(long)]
    pub save_timings: bool,
    /// Run a failed scenario again, on a fresh environment, up to N more times; one
    /// that passes later is FLAKY [default: executor.retries, else 0; a scenario's
    /// own `retries` wins].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=100))]
    pub retries: Option<u64>,
    /// A FLAKY scenario fails the run (exit 1) instead of counting as passed.
    #[arg(long)]
    pub flaky_fails: bool,
    /// Write the output of `snapshot = true` steps as their snapshots (new or
    /// changed) instead of failing them.
    #[arg(long)]
    pub update_snapshots: bool,
    #[command(flatten)]
    pub tags: TagArgs,
    /// Memory limit per container in MiB (overrides [limits] and the config).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(4..))]
    pub memory: Option<u64>,
    /// CPU limit per container in cores, e.g. 0.5 (overrides [limits] and the config).
    #[arg(long, value_name = "CORES")]
    pub cpu: Option<f64>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = RunFormat::Human)]
    pub format: RunFormat,
    /// Create each scenario's containers when it starts instead of keeping warm ones
    /// (slower; shows what the pool buys).
    #[arg(long)]
    pub no_pool: bool,
    /// Run every scenario, even those unchanged since their last passing run.
    #[arg(long)]
    pub force: bool,
    /// Run only the selected scenarios whose last outcome (.clnrm/outcomes.json) was
    /// failed or error.
    #[arg(long)]
    pub failed: bool,
    /// Record the span trees of the scenarios that pass as their baseline (instead of
    /// comparing with it).
    #[arg(long)]
    pub update_baseline: bool,
    /// Also write report.json, junit.xml, report.md and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Run on a runs service (`clnrm serve`) instead of here: the project is packed
    /// and submitted, its events printed as they come, the exit code the same.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The service's token (with scope run) [default: $CLNRM_TOKEN].
    #[arg(long, value_name = "TOKEN", requires = "server")]
    pub token: Option<String>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Quiet time after a save before a cycle starts, in ms [default: watch.debounce_ms, 300].
    #[arg(long, value_name = "MS")]
    pub debounce: Option<u64>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `clnrm cache`.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CacheAction,
}

/// `clnrm cache` actions.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Entries, size, and the hits and misses of the last run.
    Stats(CacheStatsArgs),
    /// Empty the cache.
    Clear,
}

/// `clnrm cache stats`.
#[derive(Debug, clap::Args)]
pub struct CacheStatsArgs {
    /// Explain the keys of the scenarios whose ids match this glob (e.g.
    /// 'tests/web.clnrm.toml::*'): what each key is made of, which part changed since
    /// the last run, and whether a run would skip the scenario.
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// Files or directories to look in for --explain [default: the file its id names,
    /// else tests/].
    #[arg(requires = "explain")]
    pub paths: Vec<PathBuf>,
    /// Template variables, as the run used them.
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Files or directories [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Record the latest trees as the baseline of these scenarios.
    #[arg(long)]
    pub update_baseline: bool,
    /// Print only spans on the way to a difference.
    #[arg(long)]
    pub only_diffs: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Tree)]
    pub format: DiffFormat,
    /// Only scenario ids (`file::name`) matching this glob (repeatable: any of them).
    #[arg(long, value_name = "GLOB")]
    pub filter: Vec<String>,
    #[command(flatten)]
    pub tags: TagArgs,
    /// Also report durations that moved by more than PCT percent (needs
    /// diff.ignore_timestamps = false when the baseline was recorded).
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(f64))]
    pub durations: Option<f64>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// Diff output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// ✓ same, ✏️ changed, ➕ extra, ❌ missing, as an indented tree.
    Tree,
    /// One JSON document.
    Json,
}

/// Run report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// Progress, failure details and a summary.
    Human,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
    /// A Markdown summary.
    Markdown,
    /// One self-contained HTML page (the report.html of --report-dir).
    Html,
    /// GitHub Actions annotations at each failure's line, and the Markdown report as
    /// the job summary when GITHUB_STEP_SUMMARY is set.
    Github,
}

/// `clnrm render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The test definition to render.
    pub file: PathBuf,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Files or directories [default: tests/].
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub tags: TagArgs,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// Selection by the scenarios' `tags`.
#[derive(Debug, Default, clap::Args)]
pub struct TagArgs {
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Leave out scenarios with this tag (repeatable).
    #[arg(long = "skip-tag", value_name = "TAG")]
    pub skip_tags: Vec<String>,
}

/// `clnrm init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to scaffold [default: the current directory].
    pub dir: Option<PathBuf>,
}
