//! What a run reports as it goes: typed events, and the result types they carry.
//! Reporters consume these; they never drive execution.

use crate::diff::{Counts, Display, TreeDiff, render_tree};
use crate::expect::Unmet;
use crate::plan::ScenarioId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A scenario's or step's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything as expected.
    Passed,
    /// Failed, then passed when it ran again (`retries`); counted as passed unless
    /// `--flaky-fails`.
    Flaky,
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
            Status::Flaky => "flaky",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Cached => "cached",
            Status::Skipped => "skipped",
        }
    }
}

/// Why a step or scenario did not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// `--filter`, `--tag` or `--skip-tag` left it out.
    Filtered,
    /// `--partition` gave it to another shard.
    Partition,
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
    #[serde(rename = "setup_failed")]
    Setup,
    /// A service's image could not be built from source (`[service.<id>.build]`).
    #[serde(rename = "build_failed")]
    Build,
    /// A step's `capture` found nothing.
    Capture,
    /// An `http` step got another status (or no answer at all).
    Status,
    /// An `http` step's `expected_json` did not hold.
    Json,
    /// A step's output is not its snapshot (or it has none yet).
    Snapshot,
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
            Reason::Partition => "partition",
            Reason::FailFast => "fail_fast",
            Reason::EarlierStep => "earlier_step",
            Reason::Expectation => "expectation",
            Reason::Diff => "diff",
            Reason::Cached => "cached",
            Reason::SpanLimit => "span_limit",
            Reason::ServiceExited => "service_exited",
            Reason::Setup => "setup_failed",
            Reason::Build => "build_failed",
            Reason::Capture => "capture",
            Reason::Status => "status",
            Reason::Json => "json",
            Reason::Snapshot => "snapshot",
        }
    }
}

/// One step's outcome. Every string is already masked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Standard output (reports keep its last [`TAIL_BYTES`]).
    #[serde(serialize_with = "tail_of")]
    pub stdout: String,
    /// Standard error (reports keep its tail too).
    #[serde(serialize_with = "tail_of")]
    pub stderr: String,
    /// It failed but `continue_on_failure` let the scenario go on.
    pub tolerated: bool,
    /// The container it ran in (short id).
    pub container: String,
    /// Runs it took (more than 1 under `retry`; 0 when it did not run).
    pub attempts: u32,
    /// The status code an `http` step got.
    pub http_status: Option<u16>,
    /// How its output compared with its snapshot (`snapshot = true`).
    pub snapshot: Option<crate::snapshots::Outcome>,
    /// Where it is written, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<crate::expect::Position>,
}

/// One scenario's outcome. In reports (and read back by `clnrm report merge`) as
/// the JSON object of SPEC §4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Its id.
    pub id: ScenarioId,
    /// Index of its file in the plan.
    #[serde(skip)]
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
    #[serde(rename = "start_ms", with = "millis")]
    pub start: Duration,
    /// Wall time on its critical path (steps and checks, not container start; when
    /// its environment could not start, the time that took).
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// How long it waited for its environment (containers started, healthy, their
    /// dependencies met; near 0 when the pool had one ready).
    #[serde(rename = "setup_ms", with = "millis")]
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
    /// The attempts before this one, which failed (`retries`), oldest first; each
    /// with its own steps, expectations and diff. Reports write every attempt
    /// (these and this one) under `attempts`.
    #[serde(skip)]
    pub earlier: Vec<ScenarioResult>,
}

/// Durations as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

fn tail_of<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tail(text, TAIL_BYTES))
}

/// What one service's container did during a scenario (SPEC §7.2). Texts masked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Its main process was clnrm's shell, which ran the steps (no log of its own).
    #[serde(default)]
    pub agent: bool,
    /// Its image could not be built: `log_tail` is what the builder printed (its
    /// end), and there is no container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build: bool,
}

/// How a scenario's span tree differs from its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioDiff {
    /// How many of each difference.
    pub counts: Counts,
    /// The tree of differences (spans are masked before they are compared).
    pub tree: TreeDiff,
    /// `diff.max_display_depth`, for printing (read back: the default).
    #[serde(skip, default = "default_depth")]
    pub max_depth: usize,
}

fn default_depth() -> usize {
    crate::project::DiffConfig::default().max_display_depth as usize
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
            earlier: Vec::new(),
        }
    }

    /// The result of a scenario unchanged since its last passing run.
    pub fn cached(sc: &crate::plan::PlannedScenario, plan: &crate::plan::Plan) -> Self {
        Self {
            status: Status::Cached,
            ..Self::not_run(
                sc,
                plan,
                Reason::Cached,
                "unchanged since its last passing run",
            )
        }
    }

    /// The result of a scenario the selection left out (`--filter`, tags,
    /// `--partition`).
    pub fn not_selected(sc: &crate::plan::PlannedScenario, plan: &crate::plan::Plan) -> Self {
        match sc.not_selected {
            Some(crate::plan::NotSelected::OtherPartition) => {
                Self::not_run(sc, plan, Reason::Partition, "not run: in another partition")
            }
            _ => Self::not_run(sc, plan, Reason::Filtered, "not run: filtered out"),
        }
    }

    /// Whether the selection left it out (filters, tags, another shard).
    pub fn is_unselected(&self) -> bool {
        self.status == Status::Skipped
            && matches!(self.reason, Some(Reason::Filtered | Reason::Partition))
    }

    /// Runs it took: its earlier attempts, and the last unless that did not run.
    pub fn attempts(&self) -> usize {
        let last = !matches!(self.status, Status::Skipped | Status::Cached);
        self.earlier.len() + usize::from(last)
    }
}

/// Events of a run, in the order they happen. As data (`{"event": "scenario_finished",
/// ...}`) for the runs service's event stream and the clients that replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
    /// An image was built from source for the run (`[service.<id>.build]`).
    ImageBuilt {
        /// The service it is built for.
        service: String,
        /// Its tag.
        tag: String,
        /// How long the build took.
        #[serde(rename = "duration_ms", with = "millis")]
        duration: Duration,
        /// For an image made by putting changed files into the last one (`develop`
        /// sync) instead of a build: how many files.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        synced: Option<usize>,
        /// For files put into the last image ahead of a rebuild: the tag being
        /// built, which the scenarios' verdicts wait for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ahead: Option<String>,
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
    /// An attempt of a scenario failed and it runs again (`retries`); its final
    /// result comes later, with this attempt among its `earlier` ones.
    Retrying(ScenarioResult),
    /// A scenario ended (or was skipped).
    ScenarioFinished(ScenarioResult),
    /// The run ended.
    RunFinished {
        /// Wall time.
        #[serde(rename = "duration_ms", with = "millis")]
        duration: Duration,
        /// Ctrl-C or SIGTERM stopped it.
        interrupted: bool,
    },
}

/// Output kept per stream in reports: the last this many bytes.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Marks `result` failed for `reason`, saying why.
pub(crate) fn fail(result: &mut StepResult, reason: Reason, message: String) {
    result.status = Status::Failed;
    result.reason = Some(reason);
    result.message = Some(message);
}

/// What an `http` step's request got back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers, names lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`BODY_CAP`](super::http::BODY_CAP) bytes).
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}
