//! What a run reports as it goes: typed events, and the result types they carry.
//! Reporters consume these; they never drive execution.

use crate::diff::{Counts, Display, TreeDiff, render_tree};
use crate::expect::Unmet;
use crate::plan::ScenarioId;
use serde::Serialize;
use std::time::Duration;

/// A scenario's or step's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Everything as expected.
    Passed,
    /// Ran, and something was not as expected.
    Failed,
    /// Could not run (image missing, engine down, container would not start).
    Error,
    /// Unchanged since its last passing run.
    Cached,
    /// Not run (filtered, another partition, after `--fail-fast`, interrupted).
    Skipped,
}

impl Status {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Cached => "cached",
            Status::Skipped => "skipped",
        }
    }
}

/// Why a step or scenario did not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The exit code was not the expected one.
    ExitCode,
    /// `expected_output_regex` did not match.
    Regex,
    /// A step or scenario timeout fired.
    Timeout,
    /// The kernel killed a process for lack of memory.
    Oom,
    /// A service never became healthy.
    Unhealthy,
    /// The image is missing.
    Image,
    /// The engine failed or a container would not start.
    Engine,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--filter` or `--partition` left it out.
    Filtered,
    /// An earlier failure stopped the run (`--fail-fast`).
    FailFast,
    /// An earlier step failed.
    EarlierStep,
    /// The spans do not meet an `[[expect.*]]`.
    Expectation,
    /// The span tree differs from the baseline.
    Diff,
    /// Unchanged since its last passing run.
    Cached,
    /// It sent more spans than it may collect (`[otel] max_spans`, 64 MiB).
    SpanLimit,
    /// A service's main process exited while the scenario needed it (or a one-shot
    /// failed).
    ServiceExited,
    /// A service's set-up (`[[service.<id>.setup]]`) failed.
    Setup,
    /// A step's `capture` found nothing.
    Capture,
    /// An `http` step got another status (or no answer at all).
    Status,
    /// An `http` step's `expected_json` did not hold.
    Json,
}

impl Reason {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ExitCode => "exit_code",
            Reason::Regex => "regex",
            Reason::Timeout => "timeout",
            Reason::Oom => "oom",
            Reason::Unhealthy => "unhealthy",
            Reason::Image => "image",
            Reason::Engine => "engine",
            Reason::Interrupted => "interrupted",
            Reason::Filtered => "filtered",
            Reason::FailFast => "fail_fast",
            Reason::EarlierStep => "earlier_step",
            Reason::Expectation => "expectation",
            Reason::Diff => "diff",
            Reason::Cached => "cached",
            Reason::SpanLimit => "span_limit",
            Reason::ServiceExited => "service_exited",
            Reason::Setup => "setup_failed",
            Reason::Capture => "capture",
            Reason::Status => "status",
            Reason::Json => "json",
        }
    }
}

/// One step's outcome. Every string is already masked.
#[derive(Clone, Debug, PartialEq)]
pub struct StepResult {
    /// Step name.
    pub name: String,
    /// Service it ran in.
    pub service: String,
    /// The command, shell-quoted for display.
    pub command: String,
    /// Exit code, when the command ended by itself.
    pub exit_code: Option<i64>,
    /// Outcome.
    pub status: Status,
    /// Why it did not pass.
    pub reason: Option<Reason>,
    /// What went wrong, in a sentence.
    pub message: Option<String>,
    /// Wall time.
    pub duration: Duration,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// It failed but `continue_on_failure` let the scenario go on.
    pub tolerated: bool,
    /// The container it ran in (short id).
    pub container: String,
    /// Runs it took (more than 1 under `retry`; 0 when it did not run).
    pub attempts: u32,
    /// The status code an `http` step got.
    pub http_status: Option<u16>,
}

/// One scenario's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    /// Its id.
    pub id: ScenarioId,
    /// Index of its file in the plan.
    pub file_index: usize,
    /// Its file, as shown to users.
    pub file: String,
    /// Its name.
    pub name: String,
    /// Its `tags`.
    pub tags: Vec<String>,
    /// Outcome.
    pub status: Status,
    /// Why it did not pass.
    pub reason: Option<Reason>,
    /// What went wrong, in a sentence.
    pub message: Option<String>,
    /// When it began, counted from the start of the run.
    pub start: Duration,
    /// Wall time on its critical path (steps and checks, not container start; when
    /// its environment could not start, the time that took).
    pub duration: Duration,
    /// How long it waited for its environment (containers started, healthy, their
    /// dependencies met; near 0 when the pool had one ready).
    pub setup: Duration,
    /// Steps, in order.
    pub steps: Vec<StepResult>,
    /// Spans collected.
    pub spans: usize,
    /// Unmet expectations (texts masked).
    pub unmet: Vec<Unmet>,
    /// The span-tree diff against the baseline, when it differs.
    pub diff: Option<ScenarioDiff>,
    /// What its services' containers did (those running their own command).
    pub services: Vec<ServiceReport>,
}

/// What one service's container did during a scenario (SPEC §7.2). Texts masked.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceReport {
    /// Service id.
    pub id: String,
    /// Its image.
    pub image: String,
    /// Its container (short id).
    pub container: String,
    /// Its main process's exit code, when it has ended.
    pub exit_code: Option<i64>,
    /// The kernel killed it for lack of memory.
    pub oom_killed: bool,
    /// The last lines of its log (stdout and stderr, timestamped).
    pub log_tail: String,
}

/// How a scenario's span tree differs from its baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioDiff {
    /// How many of each difference.
    pub counts: Counts,
    /// The tree of differences (spans are masked before they are compared).
    pub tree: TreeDiff,
    /// `diff.max_display_depth`, for printing.
    #[serde(skip)]
    pub max_depth: usize,
}

impl ScenarioDiff {
    /// The spans on the way to a difference, as `clnrm diff --only-diffs` prints them.
    pub fn render(&self) -> String {
        render_tree(
            &self.tree,
            Display {
                only_diffs: true,
                max_depth: self.max_depth,
            },
        )
    }
}

impl ScenarioResult {
    /// The result of a scenario that did not run (or did not finish): `skipped` for
    /// `reason`, saying `message`.
    pub fn not_run(
        sc: &crate::plan::PlannedScenario,
        plan: &crate::plan::Plan,
        reason: Reason,
        message: &str,
    ) -> Self {
        Self {
            id: sc.id.clone(),
            file_index: sc.file,
            file: plan.files[sc.file].display.clone(),
            name: sc.name.clone(),
            tags: sc.tags.clone(),
            status: Status::Skipped,
            reason: Some(reason),
            message: Some(message.to_owned()),
            start: Duration::ZERO,
            duration: Duration::ZERO,
            setup: Duration::ZERO,
            steps: Vec::new(),
            spans: 0,
            unmet: Vec::new(),
            diff: None,
            services: Vec::new(),
        }
    }
}

/// Events of a run, in the order they happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Its id (also the `clnrm.run` label).
        run_id: String,
        /// Scenarios to execute.
        total: usize,
        /// Workers.
        workers: usize,
    },
    /// Containers left by dead runs were removed.
    Reaped {
        /// How many containers.
        containers: usize,
        /// How many networks.
        networks: usize,
    },
    /// A scenario got its containers and began.
    ScenarioStarted {
        /// Which.
        id: ScenarioId,
    },
    /// A step ended.
    StepFinished {
        /// Its scenario.
        id: ScenarioId,
        /// The outcome.
        step: StepResult,
    },
    /// A scenario ended (or was skipped).
    ScenarioFinished(ScenarioResult),
    /// The run ended.
    RunFinished {
        /// Wall time.
        duration: Duration,
        /// Ctrl-C or SIGTERM stopped it.
        interrupted: bool,
    },
}
