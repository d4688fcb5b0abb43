//! `[[scenario]]`: what one scenario runs (a command line, steps), in which services,
//! with which bounds, and what it keeps after the run.

use super::expect::Expect;
use super::step::Step;
use crate::diag::Span;
use crate::model::{CommandLine, Sp};
use schemars::JsonSchema;

/// `[[scenario]]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Scenario {
    /// Unique within the file.
    pub name: Sp<String>,
    /// Labels for selecting scenarios (`--tag`, `--skip-tag`).
    #[serde(default)]
    pub tags: Vec<Sp<String>>,
    /// Service the scenario runs in.
    pub service: Option<Sp<String>>,
    /// The services this scenario starts (their dependencies come along); every
    /// service of the file when absent.
    pub services: Option<Sp<Vec<Sp<String>>>>,
    /// Command line, split like a POSIX shell word list.
    pub run: Option<Sp<CommandLine>>,
    /// `run` was written, even where it could not be read (that error is reported
    /// where it was read).
    #[serde(skip)]
    pub run_written: bool,
    /// Steps run in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Time the whole scenario may take, in milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Higher runs first; default 0.
    pub priority: Option<Sp<i64>>,
    /// May run alongside the file's other scenarios.
    pub concurrent: Option<Sp<bool>>,
    /// Runs again after a failure, each time on a fresh environment, up to this many
    /// more times (0 to 100; over `--retries` and `[executor] retries`). Passing
    /// later makes it `flaky`.
    pub retries: Option<Sp<u64>>,
    /// What to keep after the run.
    pub artifacts: Option<Artifacts>,
    /// Span expectations for this scenario only, in addition to the file's.
    #[serde(default)]
    pub expect: Expect,
    /// Where the scenario's table is.
    #[serde(skip)]
    pub span: Span,
}

/// `artifacts`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Artifacts {
    /// Items such as `"spans:default"`.
    #[serde(default)]
    pub collect: Vec<Sp<String>>,
}
