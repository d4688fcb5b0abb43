//! Execution: a session (the pool of warm environments and the OTLP receiver) runs
//! a plan; its dispatcher owns the run's state (queue, results, cache records, the
//! reason it stops) and hands scenarios to workers, each taking a warm environment
//! from the [`pool`], running the scenario's steps in it and giving it back. Emits
//! [`Event`]s; reporters consume them. An interrupt stops dispatching, interrupts
//! running steps, then the session removes every container of the run;
//! `--fail-fast` only stops dispatching.

pub mod agent;
mod captures;
mod dispatcher;
pub mod events;
mod grpc;
mod http;
mod images;
mod otel_env;
pub mod pool;
mod queue;
pub mod reaper;
mod scenario;
mod services;
mod session;
mod spans;
mod steps;
pub mod vantage;
mod worker;

pub use captures::CaptureError;
pub use dispatcher::CancelReason;
pub use events::{
    Event, Reason, ScenarioDiff, ScenarioResult, ServiceReport, Status, StepResult, TAIL_BYTES,
    tail,
};
pub use images::{BuildDone, ImageError, build_images};
pub use pool::StepError;
pub use queue::{scenario_key, with_snapshots};
pub use reaper::{RUN_LABEL, RunOwner, reap};
pub use session::Session;

use crate::cache::{Cache, Lookup};
use crate::diff::BaselineCheck;
use crate::plan::Plan;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenarios at once.
    pub workers: usize,
    /// Stop dispatching after the first failure.
    pub fail_fast: bool,
    /// Who owns the run's containers.
    pub owner: RunOwner,
    /// Where collected spans are saved (`.clnrm/artifacts`).
    pub artifacts: Option<std::path::PathBuf>,
    /// Compare each scenario that has a baseline entry with it.
    pub baseline: Option<Arc<BaselineCheck>>,
    /// The digests of the host paths the scenarios read (taken with the cache).
    pub inputs: Option<Arc<crate::inputs::Digests>>,
    /// Run everything, whatever the cache says (it is still updated).
    pub force: bool,
    /// Runs after a failure, for scenarios without their own `retries`.
    pub retries: u32,
}

/// How a run is stopped: `interrupt` (the first Ctrl-C or SIGTERM) stops dispatching
/// and interrupts running scenarios, which are then cleaned up; `force` (the second)
/// stops waiting for anything.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    /// Graceful stop.
    pub interrupt: CancellationToken,
    /// Stop now.
    pub force: CancellationToken,
}

/// What a session is made with: how many scenarios it runs at once, how many
/// containers may live at once, who owns them, whether environments are kept warm.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Scenarios at once.
    pub workers: usize,
    /// Containers alive at once, at most.
    pub max_containers: usize,
    /// Who owns the session's containers.
    pub owner: RunOwner,
    /// Keep warm environments.
    pub warm_pool: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Every scenario of the plan, in plan order.
    pub results: Vec<ScenarioResult>,
    /// Ctrl-C or SIGTERM stopped it.
    pub interrupted: bool,
    /// Wall time.
    pub duration: Duration,
    /// The cache the run was given, with what it recorded, for its caller to save.
    pub cache: Option<Cache>,
}

/// When every selected scenario of `plan` is unchanged since its last passing run (a
/// fully cached run), their results, without touching the engine beyond the image ids
/// the caller read; `None` when anything must run. The hits are counted in `cache`.
pub fn all_cached(
    plan: &Plan,
    image_ids: &HashMap<String, String>,
    opts: &RunOptions,
    c: &mut Cache,
) -> Option<Vec<ScenarioResult>> {
    if opts.force {
        return None;
    }
    let keys = queue::cache_keys(
        plan,
        image_ids,
        opts.baseline.as_deref(),
        opts.inputs.as_deref(),
    );
    // Each key's digest once: hashing is most of what a fully cached run computes.
    let digests: HashMap<usize, Option<String>> = plan
        .selected()
        .map(|s| {
            let key = queue::with_snapshots(&keys[s.order], s);
            (s.order, key.uncacheable.is_none().then(|| key.digest()))
        })
        .collect();
    if plan
        .selected()
        .any(|s| c.peek_digest(&s.id.0, digests[&s.order].as_deref()) == Lookup::Miss)
    {
        return None;
    }
    let results = plan
        .scenarios
        .iter()
        .map(|sc| match sc.not_selected {
            None => {
                c.lookup_digest(&sc.id.0, digests[&sc.order].as_deref());
                ScenarioResult::cached(sc, plan)
            }
            Some(_) => ScenarioResult::not_selected(sc, plan),
        })
        .collect();
    Some(results)
}

#[cfg(test)]
mod tests;
