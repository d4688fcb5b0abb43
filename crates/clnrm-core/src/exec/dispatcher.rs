//! The dispatcher: the one task that owns a run's state. It alone holds the queue,
//! the results, the cache records and the reason the run stops; workers run one
//! scenario each and talk to it through messages. One `select!` merges what the
//! workers say, the scenarios they finish, and the stop signals.
//!
//! Stopping is ordered ([`CancelReason`]): a failure under `--fail-fast` stops
//! dispatching and lets running scenarios finish; an interrupt also interrupts them
//! (their steps and span waits), then lets them clean up; a second interrupt stops
//! waiting for them at all. A reason only ever rises.

use super::events::{Event, Reason, ScenarioResult, Status};
use super::queue::Queue;
use super::worker::{Ctx, Done, Note, run_one};
use super::{RunOutcome, Stop};
use crate::backend::ContainerEngine;
use crate::cache::Cache;
use crate::plan::EnvSpec;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// Why a run stops dispatching, from the mildest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelReason {
    /// It does not.
    None,
    /// A scenario failed under `--fail-fast`: nothing new starts.
    TestFailure,
    /// Ctrl-C or SIGTERM: nothing new starts, running scenarios are interrupted.
    Interrupt,
    /// A second one: nothing is waited for.
    ForceInterrupt,
}

/// The state of one run, owned by the dispatcher.
pub(super) struct Dispatcher<E> {
    pub ctx: Arc<Ctx<E>>,
    pub queue: Queue,
    pub results: Vec<Option<ScenarioResult>>,
    /// Cache key of each scenario of the plan.
    pub keys: Vec<crate::cache::Key>,
    /// The run's cache: looked up before dispatching, recorded in as results come.
    pub cache: Option<Cache>,
    pub events: UnboundedSender<Event>,
    pub workers: usize,
    pub fail_fast: bool,
    /// Runs after a failure, for scenarios without their own `retries`.
    pub retries: u32,
    /// The failed attempts of each scenario so far.
    pub earlier: Vec<Vec<ScenarioResult>>,
    pub reason: CancelReason,
}

impl<E: ContainerEngine> Dispatcher<E> {
    /// Reports the result of scenario `i`.
    pub fn finish(&mut self, i: usize, mut result: ScenarioResult) {
        result.tags.clone_from(&self.ctx.plan.scenarios[i].tags);
        // Whatever ended it (a last attempt, an interrupt), its failed attempts stay.
        if result.earlier.is_empty() {
            result.earlier = std::mem::take(&mut self.earlier[i]);
        }
        let _ = self.events.send(Event::ScenarioFinished(result.clone()));
        self.results[i] = Some(result);
    }

    /// Runs the queue to its end (or until stopped); every scenario of the plan gets
    /// a result.
    pub async fn run(mut self, stop: Stop) -> RunOutcome {
        let interrupt = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<Note>();
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut tasks: HashMap<Id, usize> = HashMap::new();
        // Scenarios that only wait for their spans (or for the build their image
        // went ahead of): they hold no worker (the wait
        // is idle; what the steps ran is over), so the next scenario starts; as
        // many as there are workers, whose environments stay up meanwhile. Not
        // under --fail-fast, where a failure their spans show stops the next one,
        // nor with one worker, which runs one scenario at a time.
        let mut settling: HashSet<usize> = HashSet::new();
        if stop.interrupt.is_cancelled() {
            self.raise(CancelReason::Interrupt, &interrupt);
        }
        loop {
            while running
                .len()
                .saturating_sub(settling.len().min(self.workers))
                < self.workers
                && self.reason == CancelReason::None
            {
                let Some(i) = self.queue.pop() else { break };
                let earlier = self.earlier[i].len();
                let task = running.spawn(run_one(
                    self.ctx.clone(),
                    (i, earlier),
                    tx.clone(),
                    interrupt.clone(),
                ));
                tasks.insert(task.id(), i);
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                () = stop.force.cancelled(), if self.reason < CancelReason::ForceInterrupt => {
                    self.raise(CancelReason::ForceInterrupt, &interrupt);
                    running.abort_all();
                }
                () = stop.interrupt.cancelled(), if self.reason < CancelReason::Interrupt => {
                    self.raise(CancelReason::Interrupt, &interrupt);
                }
                Some(note) = rx.recv() => self.hear(note, &mut settling),
                Some(joined) = running.join_next_with_id() => {
                    // What the worker said before it ended comes first.
                    while let Ok(note) = rx.try_recv() {
                        self.hear(note, &mut settling);
                    }
                    match joined {
                        Ok((id, done)) => {
                            tasks.remove(&id);
                            settling.remove(&done.index);
                            self.collect(done);
                        }
                        Err(e) => {
                            // Aborted (a second interrupt) or panicked (a bug): the
                            // scenario is reported below with the others left over.
                            if let Some(i) = tasks.remove(&e.id()) {
                                settling.remove(&i);
                            }
                        }
                    }
                }
            }
        }
        while let Ok(note) = rx.try_recv() {
            self.hear(note, &mut settling);
        }
        self.conclude()
    }

    /// Raises the stop reason (never lowers it); an interrupt reaches the workers.
    fn raise(&mut self, reason: CancelReason, interrupt: &CancellationToken) {
        self.reason = self.reason.max(reason);
        if self.reason >= CancelReason::Interrupt {
            interrupt.cancel();
        }
    }

    /// What a worker says while it works.
    fn hear(&mut self, note: Note, settling: &mut HashSet<usize>) {
        match note {
            Note::Settling(i) => {
                if !self.fail_fast && self.workers > 1 {
                    settling.insert(i);
                }
            }
            Note::Claimed => self.prewarm(),
            Note::Started(i) => {
                let id = self.ctx.plan.scenarios[i].id.clone();
                let _ = self.events.send(Event::ScenarioStarted { id });
            }
            Note::Step(i, step) => {
                let id = self.ctx.plan.scenarios[i].id.clone();
                let _ = self.events.send(Event::StepFinished { id, step: *step });
            }
        }
    }

    /// Whether scenario `i`, which ended with `result`, runs again: it failed (a
    /// timeout too), may retry, and the run is not stopping. A failed fixture set-up
    /// (made once per run) and a snapshot mismatch (the same output again) would fail
    /// the same way, so they are not retried.
    fn retries(&self, i: usize, result: &ScenarioResult) -> bool {
        let allowed = self.ctx.plan.scenarios[i].retries.unwrap_or(self.retries);
        result.status == Status::Failed
            && !matches!(
                result.reason,
                Some(Reason::Setup | Reason::Interrupted | Reason::Snapshot)
            )
            && self.reason == CancelReason::None
            && self.earlier[i].len() < allowed as usize
    }

    /// A finished scenario: its environment back to the pool, its result recorded;
    /// or, when it failed and may retry, queued again first, to run on a fresh
    /// environment.
    fn collect(&mut self, done: Done) {
        let Done {
            index: i,
            mut result,
            env,
        } = done;
        let retry = self.retries(i, &result);
        if retry {
            self.queue.push_front(i);
        } else if !self.earlier[i].is_empty() && result.status == Status::Passed {
            result.status = Status::Flaky;
        }
        if let Some((env, reusable)) = env {
            // An environment nobody will need again is removed now, not at the end.
            // The environment a failed attempt ran in is never the next one's.
            let queued = self.queue.queued(&env.spec.key);
            self.ctx.pool.release(env, reusable && !retry, queued);
        }
        if retry {
            result.tags.clone_from(&self.ctx.plan.scenarios[i].tags);
            result.earlier.clone_from(&self.earlier[i]);
            let _ = self.events.send(Event::Retrying(result.clone()));
            result.earlier.clear();
            self.earlier[i].push(result);
            return;
        }
        let failed = matches!(result.status, Status::Failed | Status::Error);
        if failed && self.fail_fast {
            self.reason = self.reason.max(CancelReason::TestFailure);
        }
        if self.dispatching_over() {
            self.ctx.pool.trim();
        }
        if let Some(cache) = &mut self.cache
            && matches!(
                result.status,
                Status::Passed | Status::Flaky | Status::Failed | Status::Error
            )
        {
            // A flaky scenario is recorded as failing: it runs again next time.
            let passed = result.status == Status::Passed;
            let key = super::queue::with_snapshots(&self.keys[i], &self.ctx.plan.scenarios[i]);
            cache.record(&result.id.0, &key, passed, result.duration);
        }
        self.finish(i, result);
    }

    /// Whether no scenario will be dispatched any more: the queue is empty, or the run
    /// stops (`--fail-fast`, Ctrl-C). What was prepared ahead then goes.
    fn dispatching_over(&self) -> bool {
        self.queue.is_empty() || self.reason != CancelReason::None
    }

    /// Asks the pool for environments for the next scenarios in the queue; once the
    /// queue is empty, lets it drop the ready ones nobody will claim.
    fn prewarm(&self) {
        if self.dispatching_over() {
            self.ctx.pool.trim();
            return;
        }
        // Per key: environments for the scenarios due next (one per worker) and for
        // those due after them (one more per worker).
        let mut want: HashMap<&str, (usize, usize, &Arc<EnvSpec>)> = HashMap::new();
        for (n, i) in self.queue.next(self.workers * 2).enumerate() {
            let env = &self.ctx.plan.scenarios[i].env;
            if env
                .services
                .iter()
                .any(|s| self.ctx.image_errors.contains_key(&s.image))
            {
                continue;
            }
            let counts = want.entry(env.key.as_str()).or_insert((0, 0, env));
            if n < self.workers {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        for (count, further, env) in want.values() {
            self.ctx.pool.prewarm(env, *count, *further);
        }
    }

    /// Every scenario without a result gets one; the run's outcome.
    fn conclude(mut self) -> RunOutcome {
        let interrupted = self.reason >= CancelReason::Interrupt;
        let plan = self.ctx.plan.clone();
        for i in self.queue.drain() {
            let (reason, text) = if interrupted {
                (Reason::Interrupted, "not run: interrupted")
            } else {
                (Reason::FailFast, "not run: --fail-fast after a failure")
            };
            self.finish(
                i,
                ScenarioResult::not_run(&plan.scenarios[i], &plan, reason, text),
            );
        }
        // Dispatched without a result: cut short by a second interrupt, or their
        // worker failed (a bug). Every scenario of the plan is reported.
        let missing: Vec<usize> = (0..self.results.len())
            .filter(|&i| self.results[i].is_none())
            .collect();
        for i in missing {
            let sc = &plan.scenarios[i];
            let r = if self.reason == CancelReason::ForceInterrupt {
                ScenarioResult::not_run(
                    sc,
                    &plan,
                    Reason::Interrupted,
                    "cut short by a second interrupt",
                )
            } else if sc.not_selected.is_some() {
                ScenarioResult::not_selected(sc, &plan)
            } else {
                ScenarioResult {
                    status: Status::Error,
                    ..ScenarioResult::not_run(
                        sc,
                        &plan,
                        Reason::Engine,
                        "clnrm failed while running it (a bug; please report it)",
                    )
                }
            };
            self.finish(i, r);
        }
        let duration = self.ctx.started.elapsed();
        let _ = self.events.send(Event::RunFinished {
            duration,
            interrupted,
        });
        RunOutcome {
            results: self.results.into_iter().flatten().collect(),
            interrupted,
            duration,
            cache: self.cache,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CancelReason;

    #[test]
    fn stop_reasons_are_ordered_from_the_mildest() {
        assert!(CancelReason::None < CancelReason::TestFailure);
        assert!(CancelReason::TestFailure < CancelReason::Interrupt);
        assert!(CancelReason::Interrupt < CancelReason::ForceInterrupt);
    }
}
