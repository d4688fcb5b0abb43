//! One scenario: lease an environment from the pool, run the steps in it, gather the
//! spans, check them, and hand the result and the environment back to the
//! dispatcher. A worker owns nothing of the run: it reads the run's context and
//! talks to the dispatcher through messages.

use super::events::{Reason, ScenarioResult, ServiceReport, Status, StepResult};
use super::pool::{self, Env, Pool};
use super::services::ServiceLog;
use super::{scenario, spans};
use crate::backend::ContainerEngine;
use crate::diff::BaselineCheck;
use crate::otel::{Overflow, Receiver, SpanBudget};
use crate::plan::{Intake, Plan, PlannedScenario};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::RwLock;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// What every worker of a run reads; nothing in it changes during the run.
pub(super) struct Ctx<E> {
    pub plan: Arc<Plan>,
    pub pool: Pool<E>,
    pub receiver: Option<Arc<Receiver>>,
    /// One lock per file: `concurrent = false` scenarios take it exclusively.
    pub file_locks: Vec<Arc<RwLock<()>>>,
    /// Image → why scenarios using it cannot run.
    pub image_errors: HashMap<String, super::images::ImageError>,
    /// Tag → a build made while the scenarios that need it run on the image it
    /// replaces; their verdicts wait for it.
    pub ahead: HashMap<String, super::images::AheadBuild>,
    /// Why scenarios exporting over OTLP cannot run (no receiver), if they cannot.
    pub otlp_error: Option<String>,
    pub artifacts: Option<std::path::PathBuf>,
    pub baseline: Option<Arc<BaselineCheck>>,
    pub run_id: String,
    pub started: Instant,
}

/// What a worker tells the dispatcher while it works.
pub(super) enum Note {
    /// A scenario claimed its environment: time to prepare for the next ones.
    Claimed,
    /// Scenario `0` has its environment and begins.
    Started(usize),
    /// A step of scenario `0` ended.
    Step(usize, Box<StepResult>),
    /// Scenario `0` ran its steps and waits for its spans: it runs nothing more.
    Settling(usize),
}

/// What a worker leaves: the result, and the environment to give back (with whether
/// the scenario ended normally, so that it may be checked for reuse).
pub(super) struct Done {
    /// Which scenario of the plan.
    pub index: usize,
    pub result: ScenarioResult,
    pub env: Option<(Env, bool)>,
}

enum Guard {
    Read(#[expect(dead_code, reason = "held for its drop")] tokio::sync::OwnedRwLockReadGuard<()>),
    Write(
        #[expect(dead_code, reason = "held for its drop")] tokio::sync::OwnedRwLockWriteGuard<()>,
    ),
}

/// Runs scenario `i` after its `earlier` failed attempts; `cancel` is the run's
/// interrupt.
pub(super) async fn run_one<E: ContainerEngine>(
    ctx: Arc<Ctx<E>>,
    (i, earlier): (usize, usize),
    notes: UnboundedSender<Note>,
    cancel: CancellationToken,
) -> Done {
    let sc = &ctx.plan.scenarios[i];
    let without_env = |result| Done {
        index: i,
        result,
        env: None,
    };
    let error = |reason: Reason, message: String| ScenarioResult {
        status: Status::Error,
        message: Some(sc.masker.mask(&message)),
        ..ScenarioResult::not_run(sc, &ctx.plan, reason, "")
    };
    let interrupted = || {
        without_env(ScenarioResult::not_run(
            sc,
            &ctx.plan,
            Reason::Interrupted,
            "not run: interrupted",
        ))
    };
    if let Some(e) = sc
        .env
        .services
        .iter()
        .find_map(|s| ctx.image_errors.get(&s.image))
    {
        return without_env(image_error(sc, &ctx.plan, e));
    }
    if let (Some(e), Some(_)) = (&ctx.otlp_error, &sc.env.otlp) {
        return without_env(error(Reason::Engine, e.clone()));
    }
    let file_lock = ctx.file_locks[sc.file].clone();
    let _guard = if sc.exclusive {
        Guard::Write(file_lock.write_owned().await)
    } else {
        Guard::Read(file_lock.read_owned().await)
    };
    let claimed = Instant::now();
    let claim = ctx.pool.claim(&sc.env);
    let _ = notes.send(Note::Claimed);
    let acquired = tokio::select! {
        e = claim.ready() => e,
        () = cancel.cancelled() => return interrupted(),
    };
    let setup = claimed.elapsed();
    // A start-up failure took its time too.
    let failed_setup = |status: Status, reason: Reason, message: String| {
        without_env(ScenarioResult {
            status,
            setup,
            duration: setup,
            ..error(reason, message)
        })
    };
    let failed = match acquired {
        Ok(env) => Ok(env),
        Err(e @ (pool::PoolError::Unhealthy { .. } | pool::PoolError::NoReadySpan { .. })) => Err(
            failed_setup(Status::Failed, Reason::Unhealthy, e.to_string()),
        ),
        Err(e @ (pool::PoolError::ServiceExited { .. } | pool::PoolError::NotCompleted { .. })) => {
            Err(failed_setup(
                Status::Failed,
                Reason::ServiceExited,
                e.to_string(),
            ))
        }
        Err(e @ pool::PoolError::Setup { .. }) => {
            Err(failed_setup(Status::Failed, Reason::Setup, e.to_string()))
        }
        Err(pool::PoolError::Stopped) => return interrupted(),
        Err(e) => Err(failed_setup(Status::Error, Reason::Engine, e.to_string())),
    };
    let mut env = match failed {
        Ok(env) => env,
        Err(mut done) => {
            // On an image put ahead of its build: a failed build is the verdict (it
            // says more than what failed on the image it stood in for).
            let building = builds_ahead(&ctx, sc);
            if !building.is_empty() {
                let built = tokio::select! {
                    outcomes = futures_util::future::join_all(building) => outcomes,
                    () = cancel.cancelled() => Vec::new(),
                };
                if let Some(e) = built.into_iter().find_map(Result::err) {
                    done.result = ScenarioResult {
                        setup,
                        duration: setup,
                        ..image_error(sc, &ctx.plan, &e)
                    };
                }
            }
            return done;
        }
    };
    let _ = notes.send(Note::Started(i));
    let (mut result, reusable) = in_env(&ctx, (sc, earlier), &mut env, &notes, &cancel).await;
    result.setup = setup;
    Done {
        index: i,
        result,
        env: Some((env, reusable)),
    }
}

/// The result of `sc`, which cannot run on an image it needs: `e` says why.
fn image_error(sc: &PlannedScenario, plan: &Plan, e: &super::images::ImageError) -> ScenarioResult {
    let reason = if e.build.is_some() {
        Reason::Build
    } else {
        Reason::Image
    };
    ScenarioResult {
        status: Status::Error,
        message: Some(sc.masker.mask(&e.message)),
        services: e
            .build
            .iter()
            .map(|b| ServiceReport {
                log_tail: sc.masker.mask(&b.log_tail),
                ..b.clone()
            })
            .collect(),
        ..ScenarioResult::not_run(sc, plan, reason, "")
    }
}

/// The builds `sc`'s verdict waits for: those made while it runs on the images they
/// replace (one the run did not start is an error: no verdict stands for it).
fn builds_ahead<E>(ctx: &Ctx<E>, sc: &PlannedScenario) -> Vec<super::images::AheadBuild> {
    use futures_util::FutureExt;
    sc.env
        .services
        .iter()
        .filter_map(|s| s.build.as_ref()?.synced.as_ref()?.ahead.as_ref())
        .map(|tag| {
            ctx.ahead.get(tag).cloned().unwrap_or_else(|| {
                let why = super::images::ImageError::plain(format!(
                    "the build of {tag} was not started (the run was interrupted)"
                ));
                futures_util::future::ready(Err(Arc::new(why)))
                    .boxed()
                    .shared()
            })
        })
        .collect()
}

/// Runs `sc` in `env`: its steps, then its spans; the result and whether `env` may be
/// checked for reuse.
async fn in_env<E: ContainerEngine>(
    ctx: &Ctx<E>,
    (sc, earlier): (&PlannedScenario, usize),
    env: &mut Env,
    notes: &UnboundedSender<Note>,
    cancel: &CancellationToken,
) -> (ScenarioResult, bool) {
    let i = sc.order;
    let file = ctx.plan.files[sc.file].display.clone();
    let ran_start = Instant::now();
    let otlp = ctx.receiver.as_ref().filter(|_| sc.env.otlp.is_some());
    let ips = env.ips();
    // A container's host name is its short id.
    let own_containers: Vec<String> = env
        .members
        .iter()
        .map(|m| m.container.chars().take(12).collect())
        .collect();
    if let Some(r) = otlp {
        r.open(&sc.id.0, &ips, sc.span_limits);
    }
    let on_step = |step: &StepResult| {
        let _ = notes.send(Note::Step(i, Box::new(step.clone())));
    };
    let mut ran = scenario::run_scenario(&ctx.pool, env, sc, &file, &on_step, cancel).await;
    ran.result.start = ran_start.saturating_duration_since(ctx.started);
    // Secrets a step captured are masked in the spans and service logs too.
    let with_captured;
    let sc = match ran.masker.take() {
        Some(masker) => {
            with_captured = PlannedScenario {
                masker: std::sync::Arc::new(masker),
                ..sc.clone()
            };
            &with_captured
        }
        None => sc,
    };
    let mut collected = SpanBudget::new(sc.span_limits);
    collected.extend(std::mem::take(&mut ran.stdout_spans));
    let mut dropped_by_receiver = None;
    // The builds its images were put ahead of, waited for as its spans come in.
    let building = builds_ahead(ctx, sc);
    let waits = otlp.is_some() || !building.is_empty();
    if waits {
        let _ = notes.send(Note::Settling(i));
    }
    let wait_for = sc
        .env
        .services
        .iter()
        .find_map(|s| s.wait_for_span.as_ref())
        .map(|(name, t)| (name.as_str(), *t));
    // Spans expected, none on stdout and nothing failed yet: the wait lasts until a
    // first arrives.
    let first = ran.result.status == Status::Passed
        && collected.spans().is_empty()
        && sc.expect.iter().any(|s| s.expect.expects_spans());
    let wait = &sc.span_wait;
    let settle = async {
        if let Some(r) = otlp {
            r.settle(&sc.id.0, wait_for, first, wait.settle, wait.max)
                .await;
        }
    };
    let settle_start = Instant::now();
    let (settled, failed_build) = tokio::select! {
        // What is done wins over an interrupt that came meanwhile.
        biased;
        ((), built) = async { tokio::join!(settle, futures_util::future::join_all(building)) } => {
            (true, built.into_iter().find_map(Result::err))
        }
        () = cancel.cancelled() => (false, None),
    };
    if waits {
        ran.result.duration += settle_start.elapsed();
    }
    if let Some(r) = otlp {
        let received = r.close(&sc.id.0, &ips);
        dropped_by_receiver = received.overflow;
        collected.extend(received.spans);
    }
    if let Some(e) = failed_build {
        // The build its image stood in for failed: that is its verdict.
        let mut result = image_error(sc, &ctx.plan, &e);
        result.start = ran.result.start;
        result.duration = ran.result.duration;
        return (result, false);
    }
    if !settled && ran.result.status == Status::Passed {
        // Cut short while its spans were coming in (or its image was built): no
        // verdict on part of them.
        ran.result.status = Status::Skipped;
        ran.result.reason = Some(Reason::Interrupted);
        ran.result.message = Some(
            match otlp {
                Some(_) => "interrupted while waiting for its spans",
                None => "interrupted while waiting for its image's build",
            }
            .into(),
        );
        ran.reusable = false;
    }
    if ran.result.status == Status::Skipped {
        return (ran.result, false);
    }
    let (collected, overflow) = collected.into_parts();
    let overflow = merge(overflow, dropped_by_receiver, collected.len(), sc);
    // What clnrm's own health probes caused is not the scenario's.
    let collected = spans::without_probe_traffic(collected, &env.probe_windows());
    // clnrm is inside the scenario: its requests arrive from the network's gateway.
    let gateway = ctx
        .pool
        .gateway(env.network_name().map(str::to_owned))
        .await
        .map(|g| g.to_string());
    let own_hosts: Vec<String> = sc
        .env
        .services
        .iter()
        .map(|s| s.id.clone())
        .chain(own_containers)
        .chain(ips.iter().map(ToString::to_string))
        .collect();
    let identities = env.identities();
    spans::conclude(
        sc,
        &mut ran.result,
        &collected,
        overflow,
        &spans::RunPlace {
            baseline: ctx.baseline.as_deref(),
            identities: &identities,
            scope: crate::expect::Scope {
                own_hosts: &own_hosts,
                gateway: gateway.as_deref(),
                collected: &where_spans_were_sought(sc, otlp.map(|r| &**r)),
            },
        },
    );
    let (reports, logs) =
        super::services::report(&ctx.pool, &mut *env, sc, ctx.artifacts.as_deref()).await;
    ran.result.services = reports;
    check_logs(&mut ran.result, sc, &logs);
    if let Some(dir) = ctx
        .artifacts
        .as_deref()
        .filter(|_| sc.intake != Intake::None)
    {
        spans::keep(
            sc,
            (&mut ran.result, earlier),
            &collected,
            dir,
            &ctx.run_id,
            identities,
        );
    }
    (ran.result, ran.reusable)
}

/// Where a scenario's spans were looked for and how long, for "no spans at all"
/// (SPEC §7.5): the exporter, the endpoint the containers were given, the wait.
fn where_spans_were_sought(sc: &PlannedScenario, otlp: Option<&Receiver>) -> String {
    match (sc.intake, otlp, &sc.env.otlp) {
        (Intake::Otlp { grpc }, Some(r), Some(settings)) => {
            let port = if grpc { r.grpc_port() } else { r.http_port() };
            format!(
                "the containers were told to export OTLP ({}) to \
                 OTEL_EXPORTER_OTLP_ENDPOINT=http://host.docker.internal:{port}; clnrm waited \
                 after the last step until none arrived for {} ms, at most {} ms ([otel] \
                 settle_ms, max_wait_ms); check that the system under test uses an \
                 OpenTelemetry SDK with an OTLP exporter and reads the OTEL_* variables",
                settings.protocol,
                sc.span_wait.settle.as_millis(),
                sc.span_wait.max.as_millis()
            )
        }
        (Intake::None, ..) => "[otel] exporter is \"none\", so nothing is collected".to_owned(),
        _ => "[otel] exporter is \"stdout\" (the default), so spans are read as OTLP-JSON \
              lines from the steps' stdout; none was printed (set exporter = \"otlp\" for a \
              system that exports over OTLP)"
            .to_owned(),
    }
}

/// Checks the scenario's `[[expect.log]]` against its services' logs (already
/// masked); a scenario that passed so far, or failed only on expectations, gets the
/// unmet ones.
fn check_logs(result: &mut ScenarioResult, sc: &PlannedScenario, logs: &[ServiceLog]) {
    let judged_spans = matches!(result.reason, Some(Reason::Expectation | Reason::Diff));
    if !(result.status == Status::Passed || judged_spans) {
        return;
    }
    let logs: Vec<(&str, &str)> = logs
        .iter()
        .map(|l| (l.service.as_str(), l.text.as_str()))
        .collect();
    let unmet: Vec<_> = sc
        .expect
        .iter()
        .flat_map(|set| crate::expect::check_logs(set, &logs))
        .collect();
    if unmet.is_empty() {
        return;
    }
    result.status = Status::Failed;
    result.reason = Some(Reason::Expectation);
    result.unmet.extend(unmet);
    result.message = Some(spans::span_message(result));
}

/// What did not fit, from both intakes (stdout and the receiver), as one.
fn merge(
    kept: Option<Overflow>,
    received: Option<Overflow>,
    count: usize,
    sc: &PlannedScenario,
) -> Option<Overflow> {
    let Some(received) = received.filter(|o| o.dropped + o.unread > 0) else {
        return kept;
    };
    let mut o = kept.unwrap_or(Overflow {
        kept: count,
        dropped: 0,
        unread: 0,
        limits: sc.span_limits,
    });
    o.dropped += received.dropped;
    o.unread += received.unread;
    Some(o)
}
