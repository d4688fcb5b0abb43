//! The steps one run of the step runner takes: a scenario's, or a fixture's set-up
//! (which has no scenario), and what running them came to. The types the pool and
//! the step runner share, so that neither reaches into the other.

use super::events::{Reason, StepResult};
use crate::otel::SpanRecord;
use crate::plan::{Intake, Masker, PlannedScenario, PlannedStep};
use std::time::Duration;

/// Steps to run in an environment and what they run as: a scenario's, or a fixture's
/// set-up (which has no scenario).
pub struct Steps<'a> {
    /// Who runs them (a scenario id): the trace context of `http` steps and the
    /// receiver's attribution.
    pub id: &'a str,
    /// The environment they run in.
    pub env: &'a crate::plan::EnvSpec,
    /// Where spans come from (stdout spans are read from their output).
    pub intake: Intake,
    /// Secrets to mask.
    pub masker: &'a Masker,
    /// How long they may take together.
    pub timeout: Option<Duration>,
    /// The steps, in order.
    pub steps: &'a [PlannedStep],
    /// Their file, for the position of a failed step.
    pub source: Option<&'a crate::expect::SourceFile>,
}

impl<'a> Steps<'a> {
    /// The steps of `sc`.
    pub fn of(sc: &'a PlannedScenario) -> Self {
        Self {
            id: &sc.id.0,
            env: &sc.env,
            intake: sc.intake,
            masker: &sc.masker,
            timeout: sc.timeout,
            steps: &sc.steps,
            source: sc.source.as_deref(),
        }
    }
}

/// What running steps came to.
pub struct StepsRan {
    /// Each step's result, in order (those after a failure not run).
    pub steps: Vec<StepResult>,
    /// Why they did not all pass: the reason and a sentence.
    pub failure: Option<(Reason, String)>,
    /// Whether the environment may be checked for reuse.
    pub reusable: bool,
    /// Spans found in the steps' stdout.
    pub stdout_spans: Vec<SpanRecord>,
    /// The masker with the secrets the steps captured.
    pub masker: Masker,
}
