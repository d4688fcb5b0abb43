//! Runs one scenario's steps in a ready environment: each step by the agent (or an
//! engine exec), with its timeout, exit-code and output checks, and OOM detection.

use super::agent::quote_for_display;
use super::captures::Captured;
use super::events::{Reason, ScenarioResult, Status, StepResult, fail};
use super::otel_env::{merged, otel_env, with_token};
use super::pool::{Env, Pool, oom_kills, run_in};
use super::steps::{Steps, StepsRan};
use crate::backend::{ContainerEngine, ExecOutput};
use crate::otel::{SpanRecord, spans_in_output};
use crate::plan::{Intake, Masker, PlannedScenario, PlannedStep};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Exit code of a process killed by SIGKILL.
const SIGKILL_EXIT: i64 = 137;

/// What a scenario's run left behind.
pub struct Ran {
    /// The result to report.
    pub result: ScenarioResult,
    /// Whether the environment may be checked for reuse.
    pub reusable: bool,
    /// Spans found in the steps' stdout (`exporter = "stdout"`), and clnrm's own.
    pub stdout_spans: Vec<SpanRecord>,
    /// The file's masker plus the secrets the steps captured, when there were any.
    pub masker: Option<Masker>,
}

enum StepEnd {
    Done(ExecOutput),
    Timeout(Duration),
    Interrupted,
    Broken(super::pool::StepError),
    /// The engine stopped answering while the command ran.
    Stalled(String),
}

/// Runs `sc` in `env`, telling `on_step` of each step as it ends.
pub async fn run_scenario<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    sc: &PlannedScenario,
    file: &str,
    on_step: &(dyn Fn(&StepResult) + Sync),
    cancel: &CancellationToken,
) -> Ran {
    let started = Instant::now();
    let StepsRan {
        steps,
        failure,
        reusable,
        stdout_spans,
        masker,
    } = run_steps(pool, env, &Steps::of(sc), on_step, cancel).await;
    let (status, reason, message) = match failure {
        None => (Status::Passed, None, None),
        Some((Reason::Interrupted, m)) => (Status::Skipped, Some(Reason::Interrupted), Some(m)),
        Some((Reason::Engine, m)) => (Status::Error, Some(Reason::Engine), Some(m)),
        Some((r, m)) => (Status::Failed, Some(r), Some(m)),
    };
    Ran {
        result: ScenarioResult {
            id: sc.id.clone(),
            file_index: sc.file,
            file: file.to_owned(),
            name: sc.name.clone(),
            tags: sc.tags.clone(),
            status,
            reason,
            message,
            start: Duration::ZERO,
            duration: started.elapsed(),
            setup: Duration::ZERO,
            steps,
            spans: 0,
            unmet: Vec::new(),
            diff: None,
            services: Vec::new(),
            earlier: Vec::new(),
        },
        reusable: reusable && status == Status::Passed,
        stdout_spans,
        masker: (masker != *sc.masker).then_some(masker),
    }
}

/// Runs a fixture's set-up `steps` in `env` (the pool's [`super::pool::RunSetup`]).
pub fn run_setup<'a, E: ContainerEngine>(
    pool: &'a Pool<E>,
    env: &'a mut Env,
    steps: &'a Steps<'a>,
    stop: &'a CancellationToken,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepsRan> + Send + 'a>> {
    Box::pin(async move {
        let unseen = |_: &StepResult| {};
        run_steps(pool, env, steps, &unseen, stop).await
    })
}

/// Runs `sc`'s steps in `env`, telling `on_step` of each as it ends; after a failure
/// the rest are not run. A service that was to keep running and exited is why they
/// failed, whatever the steps saw.
pub async fn run_steps<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    sc: &Steps<'_>,
    on_step: &(dyn Fn(&StepResult) + Sync),
    cancel: &CancellationToken,
) -> StepsRan {
    let started = Instant::now();
    let deadline = sc.timeout.map(|t| started + t);
    let mut steps = Vec::new();
    let mut failure: Option<(Reason, String)> = None;
    let mut reusable = true;
    let mut stdout_spans = Vec::new();
    let mut captured = Captured::new(sc.masker);
    for planned in sc.steps {
        if failure.is_some() {
            steps.push(not_run(&captured.masker, planned));
            continue;
        }
        let step = match captured.resolve(planned) {
            Ok(step) => step,
            Err(why) => {
                let mut result = not_run(&captured.masker, planned);
                fail(&mut result, Reason::Capture, why.to_string());
                failure = Some((
                    Reason::Capture,
                    format!(
                        "step \"{}\": {}",
                        planned.name,
                        result.message.clone().unwrap_or_default()
                    ),
                ));
                result.at = place(sc, planned);
                on_step(&result);
                steps.push(result);
                continue;
            }
        };
        let (result, end_reusable) = run_retried(
            pool,
            env,
            sc,
            &step,
            deadline,
            cancel,
            &mut stdout_spans,
            &mut captured,
        )
        .await;
        let mut result = result;
        if let Some(spec) = &planned.snapshot
            && result.status == Status::Passed
        {
            compare_snapshot(spec, &mut result);
            result.tolerated = result.status == Status::Failed && planned.continue_on_failure;
        }
        reusable &= end_reusable;
        if result.status != Status::Passed && !result.tolerated {
            let reason = result.reason.unwrap_or(Reason::ExitCode);
            let message = format!(
                "step \"{}\": {}",
                result.name,
                result.message.clone().unwrap_or_default()
            );
            failure = Some((reason, message));
        }
        if result.status != Status::Passed {
            result.at = place(sc, planned);
        }
        on_step(&result);
        steps.push(result);
    }
    // A service that was to keep running and exited is why the scenario failed,
    // whatever its steps saw (an engine error, exit 137).
    if !matches!(failure, Some((Reason::Interrupted, _))) {
        let step = steps
            .iter()
            .find(|s| matches!(s.status, Status::Failed | Status::Error))
            .or(steps.iter().rfind(|s| s.status != Status::Skipped))
            .map(|s| s.name.as_str());
        if let Some(why) = super::services::exited(pool, &mut *env, step).await {
            failure = Some((Reason::ServiceExited, captured.masker.mask(&why)));
            reusable = false;
        }
    }
    StepsRan {
        steps,
        failure,
        reusable,
        stdout_spans,
        masker: captured.masker,
    }
}

/// Where `step` of `sc` is written.
fn place(sc: &Steps<'_>, step: &PlannedStep) -> Option<crate::expect::Position> {
    Some(sc.source?.at(step.span?))
}

fn not_run(masker: &Masker, step: &PlannedStep) -> StepResult {
    StepResult {
        name: step.name.clone(),
        service: step.service.clone(),
        command: display_command(masker, step),
        exit_code: None,
        status: Status::Skipped,
        reason: Some(Reason::EarlierStep),
        message: Some("not run: an earlier step failed".into()),
        duration: Duration::ZERO,
        stdout: String::new(),
        stderr: String::new(),
        tolerated: false,
        container: String::new(),
        attempts: 0,
        http_status: None,
        snapshot: None,
        at: None,
    }
}

/// Runs `step`, and again while it fails and its `retry` allows: only a command that
/// ended with the wrong exit code or output is run again (a timeout, an OOM kill or an
/// engine error leaves nothing to retry in). Its `timeout_ms` bounds each run; the
/// scenario's timeout bounds them all.
#[allow(clippy::too_many_arguments, reason = "a step's whole context")]
async fn run_retried<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    sc: &Steps<'_>,
    step: &PlannedStep,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
    spans: &mut Vec<SpanRecord>,
    captured: &mut Captured,
) -> (StepResult, bool) {
    let started = Instant::now();
    let mut attempts = 1;
    loop {
        let (mut result, mut reusable) =
            run_step(pool, env, sc, step, deadline, cancel, spans, captured).await;
        let again = step.retry.filter(|r| {
            attempts < r.attempts
                && reusable
                && result.status == Status::Failed
                && matches!(
                    result.reason,
                    Some(
                        Reason::ExitCode
                            | Reason::Regex
                            | Reason::Capture
                            | Reason::Status
                            | Reason::Json
                    )
                )
                && deadline.is_none_or(|d| Instant::now() + r.interval < d)
        });
        if let Some(retry) = again {
            tokio::select! {
                () = tokio::time::sleep(retry.interval) => {
                    attempts += 1;
                    continue;
                }
                () = cancel.cancelled() => {
                    fail(&mut result, Reason::Interrupted, "interrupted".into());
                    reusable = false;
                }
            }
        }
        result.attempts = attempts;
        result.duration = started.elapsed();
        if attempts > 1
            && result.status != Status::Passed
            && let Some(message) = &mut result.message
        {
            message.push_str(&format!(" (after {attempts} attempts)"));
        }
        return (result, reusable);
    }
}

fn display_command(masker: &Masker, step: &PlannedStep) -> String {
    let words: Vec<String> = step.argv.iter().map(|a| quote_for_display(a)).collect();
    masker.mask(&words.join(" "))
}

#[allow(clippy::too_many_arguments, reason = "a step's whole context")]
async fn run_step<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    sc: &Steps<'_>,
    step: &PlannedStep,
    scenario_deadline: Option<Instant>,
    cancel: &CancellationToken,
    spans: &mut Vec<SpanRecord>,
    captured: &mut Captured,
) -> (StepResult, bool) {
    let started = Instant::now();
    let step_deadline = step.timeout.map(|t| started + t);
    let deadline = match (step_deadline, scenario_deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut result = StepResult {
        name: step.name.clone(),
        service: step.service.clone(),
        command: display_command(&captured.masker, step),
        exit_code: None,
        status: Status::Passed,
        reason: None,
        message: None,
        duration: Duration::ZERO,
        stdout: String::new(),
        stderr: String::new(),
        tolerated: false,
        container: String::new(),
        attempts: 1,
        http_status: None,
        snapshot: None,
        at: None,
    };
    if let Some(http) = &step.http {
        let ctx = super::http::HttpCtx {
            scenario: sc.id,
            deadline,
            started,
            cancel,
        };
        return super::http::run(env, step, http, &ctx, captured, spans, result).await;
    }
    if let Some(grpc) = &step.grpc {
        let ctx = super::http::HttpCtx {
            scenario: sc.id,
            deadline,
            started,
            cancel,
        };
        return super::grpc::run(env, step, grpc, &ctx, captured, spans, result).await;
    }
    let Some(member) = env.member(&step.service) else {
        result.status = Status::Error;
        result.reason = Some(Reason::Engine);
        result.message = Some(format!("service \"{}\" has no container", step.service));
        return (result, false);
    };
    let container = member.container.clone();
    result.container = container.chars().take(12).collect();
    let mut step_env = step.env.clone();
    if let (Some(settings), Some(receiver)) = (&sc.env.otlp, pool.receiver()) {
        let vars = otel_env(settings, receiver, &step.service, Some(sc.id));
        // What the service's and the step's own `env` set wins (the process would
        // otherwise get clnrm's values over its container's).
        let mut own: Vec<(String, String)> = sc
            .env
            .services
            .iter()
            .find(|s| s.id == step.service)
            .map(|s| s.env.clone())
            .unwrap_or_default();
        own.append(&mut step_env);
        step_env = merged(&own, vars, true);
        with_token(&mut step_env, receiver);
    }
    let end = {
        let run = run_in(
            pool.engine(),
            member,
            &step.argv,
            &step_env,
            step.workdir.as_deref(),
        );
        let limit = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = run => match r {
                Ok(out) => StepEnd::Done(out),
                Err(e) => StepEnd::Broken(e),
            },
            () = limit => StepEnd::Timeout(deadline.map_or(Duration::ZERO, |d| d - started)),
            () = cancel.cancelled() => StepEnd::Interrupted,
            e = pool.engine().stalled() => StepEnd::Stalled(e.to_string()),
        }
    };
    result.duration = started.elapsed();
    let reusable = match end {
        StepEnd::Done(out) => {
            if sc.intake == Intake::Stdout {
                spans.extend(spans_in_output(&String::from_utf8_lossy(&out.stdout)));
            }
            result.exit_code = Some(out.exit_code);
            judge(pool, env, step, &out, &mut result).await;
            if result.status == Status::Passed
                && let Err(why) = captured.take(step, &out)
            {
                fail(&mut result, Reason::Capture, why.to_string());
            }
            // Masked after the captures: a secret one is hidden in its own output too.
            let mask = |b: &[u8]| captured.masker.mask(&String::from_utf8_lossy(b));
            result.stdout = mask(&out.stdout);
            result.stderr = mask(&out.stderr);
            result.command = captured.masker.mask(&result.command);
            true
        }
        StepEnd::Timeout(after) => {
            match pool.kill(&container).await {
                Ok(()) => fail(
                    &mut result,
                    Reason::Timeout,
                    format!("timed out after {} ms; container killed", after.as_millis()),
                ),
                Err(e) => {
                    result.status = Status::Error;
                    result.reason = Some(Reason::Engine);
                    result.message = Some(format!(
                        "timed out after {} ms, and the container could not be killed: {e}",
                        after.as_millis()
                    ));
                }
            }
            false
        }
        StepEnd::Stalled(e) => {
            result.status = Status::Error;
            result.reason = Some(Reason::Engine);
            result.message = Some(e);
            false
        }
        StepEnd::Interrupted => {
            fail(&mut result, Reason::Interrupted, "interrupted".into());
            false
        }
        StepEnd::Broken(e) => {
            let state = pool.engine().inspect(&container).await.ok();
            if state.as_ref().is_some_and(|s| s.oom_killed) {
                fail(
                    &mut result,
                    Reason::Oom,
                    "OOM kill: the container's main process ran out of memory".into(),
                );
            } else {
                result.status = Status::Error;
                result.reason = Some(Reason::Engine);
                result.message = Some(captured.masker.mask(&e.to_string()));
            }
            false
        }
    };
    if result.status == Status::Failed && step.continue_on_failure && reusable {
        result.tolerated = true;
    }
    (result, reusable)
}

/// Compares a passing step's output with its snapshot; a missing or different one
/// fails the step.
fn compare_snapshot(spec: &crate::snapshots::SnapshotSpec, result: &mut StepResult) {
    use crate::snapshots::Outcome;
    match spec.check(&result.stdout) {
        Ok(outcome) => {
            let message = match &outcome {
                Outcome::Matched | Outcome::Written => None,
                Outcome::New { pending } => Some(format!(
                    "no snapshot yet; the output is in {pending} (accept it with `clnrm snapshots review --accept`, or run with --update-snapshots)"
                )),
                Outcome::Changed { pending, .. } => Some(format!(
                    "output differs from its snapshot {}; the new output is in {pending} (see the diff; `clnrm snapshots review`)",
                    spec.display
                )),
            };
            if let Some(m) = message {
                fail(result, Reason::Snapshot, m);
            }
            result.snapshot = Some(outcome);
        }
        Err(e) => fail(result, Reason::Snapshot, format!("snapshot: {e}")),
    }
}

async fn judge<E: ContainerEngine>(
    pool: &Pool<E>,
    env: &mut Env,
    step: &PlannedStep,
    out: &ExecOutput,
    result: &mut StepResult,
) {
    if out.exit_code != step.expected_exit_code {
        let oom = if out.exit_code == SIGKILL_EXIT {
            match env.member(&step.service) {
                Some(m) => oom_kills(pool.engine(), m).await.unwrap_or(0) > 0,
                None => false,
            }
        } else {
            false
        };
        if oom {
            fail(
                result,
                Reason::Oom,
                "OOM kill: the kernel killed the command for lack of memory (exit 137)".into(),
            );
        } else {
            fail(
                result,
                Reason::ExitCode,
                format!(
                    "exit code {}, expected {}",
                    out.exit_code, step.expected_exit_code
                ),
            );
        }
        return;
    }
    if let Some(re) = &step.expected_output_regex {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !re.is_match(&stdout) && !re.is_match(&stderr) {
            fail(
                result,
                Reason::Regex,
                format!("output does not match /{}/", re.as_str()),
            );
        }
    }
}
