//! Execution: a priority queue of planned scenarios feeding `workers` workers, each
//! taking a warm environment from the [`pool`], running the scenario's steps in it
//! and giving it back. Emits [`Event`]s; reporters consume them. Cancellation (Ctrl-C)
//! stops dispatching, interrupts running steps, then removes every container of the
//! run; `--fail-fast` only stops dispatching.

pub mod agent;
pub mod events;
mod otel_env;
pub mod pool;
pub mod reaper;
mod scenario;
mod spans;

pub use events::{Event, Reason, ScenarioDiff, ScenarioResult, Status, StepResult};
pub use reaper::{RUN_LABEL, RunOwner, reap};

use crate::backend::{ContainerEngine, EngineError};
use crate::cache::{Cache, Lookup};
use crate::diff::BaselineCheck;
use crate::otel::{Receiver, ReceiverConfig, SpanBudget};
use crate::plan::{NotSelected, Plan, PlannedScenario};
use pool::{AgentShell, Pool, PoolConfig, agent_shell};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// After a scenario's commands end, its spans are in once none arrived for this long…
pub const SPAN_QUIET: Duration = Duration::from_millis(300);
/// …or this long has passed (without `wait_for_span`).
pub const SPAN_WAIT_MAX: Duration = Duration::from_secs(5);

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenarios at once.
    pub workers: usize,
    /// Stop dispatching after the first failure.
    pub fail_fast: bool,
    /// Containers alive at once, at most.
    pub max_containers: usize,
    /// Who owns the run's containers.
    pub owner: RunOwner,
    /// Keep warm environments (off: a cold container per scenario, on its critical path).
    pub warm_pool: bool,
    /// Where collected spans are saved (`.clnrm/artifacts`).
    pub artifacts: Option<std::path::PathBuf>,
    /// Compare each scenario that has a baseline entry with it.
    pub baseline: Option<Arc<BaselineCheck>>,
    /// Skip scenarios unchanged since their last passing run, and record this run.
    pub cache: Option<Arc<Mutex<Cache>>>,
    /// Run everything, whatever the cache says (it is still updated).
    pub force: bool,
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

impl RunOptions {
    /// The options of a session for this run.
    pub fn session(&self) -> SessionOptions {
        SessionOptions {
            workers: self.workers,
            max_containers: self.max_containers,
            owner: self.owner.clone(),
            warm_pool: self.warm_pool,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// Every scenario of the plan, in plan order.
    pub results: Vec<ScenarioResult>,
    /// Ctrl-C or SIGTERM stopped it.
    pub interrupted: bool,
    /// Wall time.
    pub duration: Duration,
}

struct Shared<E> {
    plan: Plan,
    pool: Pool<E>,
    queue: Mutex<Queue>,
    file_locks: Vec<Arc<RwLock<()>>>,
    failed: AtomicBool,
    fail_fast: bool,
    events: UnboundedSender<Event>,
    cancel: CancellationToken,
    results: Mutex<Vec<Option<ScenarioResult>>>,
    /// Why scenarios using an image cannot run.
    image_errors: HashMap<String, String>,
    /// Why scenarios exporting over OTLP cannot run (no receiver), if they cannot.
    otlp_error: Option<String>,
    receiver: Option<Arc<Receiver>>,
    lookahead: usize,
    started: Instant,
    artifacts: Option<std::path::PathBuf>,
    baseline: Option<Arc<BaselineCheck>>,
    cache: Option<Arc<Mutex<Cache>>>,
    /// Cache key of each scenario of the plan.
    keys: Vec<String>,
    run_id: String,
}

/// Runs the selected scenarios of `plan` in a session of their own.
pub async fn execute<E: ContainerEngine>(
    engine: Arc<E>,
    plan: Plan,
    opts: &RunOptions,
    events: UnboundedSender<Event>,
    cancel: CancellationToken,
) -> RunOutcome {
    let otlp = plan.selected().any(|s| s.env.otlp.is_some());
    let session = Session::start(engine, &opts.session(), otlp, false).await;
    let stop = Stop {
        interrupt: cancel,
        force: CancellationToken::new(),
    };
    let outcome = session.run(plan, opts, events, stop).await;
    session.shutdown().await;
    outcome
}

/// The pool and the OTLP receiver, which may outlive one run: `watch` keeps one
/// session for all its cycles, so that a warm container waits for the next save.
pub struct Session<E> {
    engine: Arc<E>,
    pool: Pool<E>,
    receiver: Option<Arc<Receiver>>,
    /// Why there is no receiver, when one was asked for.
    receiver_error: Option<String>,
    warnings: Vec<String>,
}

impl<E: ContainerEngine> Session<E> {
    /// Starts the receiver (when `otlp`) and an empty pool; `keep_warm` keeps one clean
    /// environment per key between runs.
    pub async fn start(engine: Arc<E>, opts: &SessionOptions, otlp: bool, keep_warm: bool) -> Self {
        let (mut receiver, mut receiver_error, mut warnings) = (None, None, Vec::new());
        if otlp {
            match start_receiver(&*engine).await {
                Ok(started) => {
                    receiver = Some(started.receiver);
                    warnings.extend(started.warning);
                }
                Err(e) => receiver_error = Some(e),
            }
        }
        let config = PoolConfig {
            max_containers: opts.max_containers,
            parallel: opts.workers.max(2),
            warm: opts.warm_pool,
            keep_warm,
        };
        let pool = Pool::new(engine.clone(), opts.owner.clone(), config, receiver.clone());
        Self {
            engine,
            pool,
            receiver,
            receiver_error,
            warnings,
        }
    }

    /// What the user should know about how the session was set up.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Kills and removes every container and network of the session; returns what
    /// could not be removed (the next run reaps it).
    pub async fn shutdown(&self) -> pool::Leftovers {
        self.pool.shutdown().await
    }

    /// What the session has not removed (yet).
    pub fn leftovers(&self) -> pool::Leftovers {
        self.pool.leftovers()
    }

    /// Runs the selected scenarios of `plan`. `stop.interrupt` stops dispatching and
    /// interrupts running scenarios; `stop.force` (a second interrupt) stops waiting
    /// for them at all.
    pub async fn run(
        &self,
        plan: Plan,
        opts: &RunOptions,
        events: UnboundedSender<Event>,
        stop: Stop,
    ) -> RunOutcome {
        let cancel = stop.interrupt;
        let engine = &self.engine;
        let started = Instant::now();
        let workers = opts.workers.max(1);
        let total = plan.selected().count();
        let _ = events.send(Event::RunStarted {
            run_id: opts.owner.run_id.clone(),
            total,
            workers,
        });
        let Images {
            shells,
            errors: image_errors,
            ids: image_ids,
        } = tokio::select! {
            images = resolve_images(&**engine, &plan) => images,
            // Interrupted while the engine is asked (a slow pull, a stalled engine).
            () = cancel.cancelled() => Images::default(),
        };
        self.pool.set_agent_shells(shells);
        let keys = cache_keys(&plan, &image_ids, opts.baseline.as_deref());
        let otlp_error = match (&self.receiver, &self.receiver_error) {
            (Some(_), _) => None,
            (None, Some(why)) => Some(why.clone()),
            (None, None) => Some(
                "this session has no OTLP receiver (the file began exporting over OTLP after it started)".to_owned(),
            ),
        };
        let receiver = self.receiver.clone();
        let pool = self.pool.clone();
        let (order, hits) = queue_order(&plan, &keys, opts);
        // What dead runs left is removed before this run starts containers (a run that
        // starts none, all cached, does not wait for it).
        let reaped = async {
            if order.is_empty() {
                return None;
            }
            tokio::select! {
                r = reap(&**engine, &opts.owner) => r.ok(),
                () = cancel.cancelled() => None,
            }
        };
        if let Some((containers, networks)) = reaped.await
            && containers + networks > 0
        {
            let _ = events.send(Event::Reaped {
                containers,
                networks,
            });
        }
        let plan_keys: Vec<String> = plan.scenarios.iter().map(|s| s.env.key.clone()).collect();
        let shared = Arc::new(Shared {
            file_locks: (0..plan.files.len())
                .map(|_| Arc::new(RwLock::new(())))
                .collect(),
            results: Mutex::new(vec![None; plan.scenarios.len()]),
            plan,
            pool: pool.clone(),
            queue: Mutex::new(Queue::new(order, &plan_keys)),
            failed: AtomicBool::new(false),
            fail_fast: opts.fail_fast,
            events,
            cancel,
            image_errors,
            otlp_error,
            receiver,
            lookahead: workers,
            started,
            artifacts: opts.artifacts.clone(),
            baseline: opts.baseline.clone(),
            cache: opts.cache.clone(),
            keys,
            run_id: opts.owner.run_id.clone(),
        });
        for &i in &hits {
            let sc = &shared.plan.scenarios[i];
            let mut r = skipped(
                sc,
                &shared.plan,
                Reason::Cached,
                "unchanged since its last passing run",
            );
            r.status = Status::Cached;
            shared.finish(i, r);
        }
        for (i, sc) in shared
            .plan
            .scenarios
            .iter()
            .enumerate()
            .filter(|(_, s)| s.not_selected.is_some())
        {
            let reason = match sc.not_selected {
                Some(NotSelected::OtherPartition) => "not run: in another partition",
                _ => "not run: filtered out",
            };
            shared.finish(i, skipped(sc, &shared.plan, Reason::Filtered, reason));
        }
        let handles: Vec<_> = (0..workers)
            .map(|_| tokio::spawn(worker(shared.clone())))
            .collect();
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        let forced = tokio::select! {
            _ = futures_util::future::join_all(handles) => false,
            () = stop.force.cancelled() => {
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
                true
            }
        };
        let interrupted = shared.cancel.is_cancelled() || forced;
        let leftover: Vec<usize> = lock(&shared.queue).drain();
        for i in leftover {
            let sc = &shared.plan.scenarios[i];
            let (reason, text) = if interrupted {
                (Reason::Interrupted, "not run: interrupted")
            } else {
                (Reason::FailFast, "not run: --fail-fast after a failure")
            };
            shared.finish(i, skipped(sc, &shared.plan, reason, text));
        }
        // Scenarios dispatched but without a result: cut short by a second interrupt,
        // or their worker failed (a bug). Every scenario of the plan is reported.
        let missing: Vec<usize> = lock(&shared.results)
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| i)
            .collect();
        for i in missing {
            let sc = &shared.plan.scenarios[i];
            let r = if forced {
                skipped(
                    sc,
                    &shared.plan,
                    Reason::Interrupted,
                    "cut short by a second interrupt",
                )
            } else {
                ScenarioResult {
                    status: Status::Error,
                    ..skipped(
                        sc,
                        &shared.plan,
                        Reason::Engine,
                        "clnrm failed while running it (a bug; please report it)",
                    )
                }
            };
            shared.finish(i, r);
        }
        let duration = started.elapsed();
        let _ = shared.events.send(Event::RunFinished {
            duration,
            interrupted,
        });
        let results = lock(&shared.results).iter().flatten().cloned().collect();
        RunOutcome {
            results,
            interrupted,
            duration,
        }
    }
}

/// Each scenario's cache key: its fingerprint, the ids of its images, its baseline.
fn cache_keys(
    plan: &Plan,
    image_ids: &HashMap<String, String>,
    baseline: Option<&BaselineCheck>,
) -> Vec<String> {
    plan.scenarios
        .iter()
        .map(|sc| {
            let mut parts = vec![sc.fingerprint.clone()];
            parts.extend(
                sc.env
                    .services
                    .iter()
                    .map(|s| image_ids.get(&s.image).cloned().unwrap_or_default()),
            );
            let recorded = baseline
                .and_then(|b| b.baseline.scenarios.get(&sc.id.0))
                .and_then(|t| serde_json::to_string(t).ok())
                .unwrap_or_default();
            parts.push(recorded);
            crate::cache::key(parts.iter().map(String::as_str))
        })
        .collect()
}

/// The dispatch order (priority, then the longest last duration, then file order)
/// and the scenarios the cache lets skip.
fn queue_order(plan: &Plan, keys: &[String], opts: &RunOptions) -> (Vec<usize>, Vec<usize>) {
    let mut order = Vec::new();
    let mut hits = Vec::new();
    let mut durations = HashMap::new();
    for sc in plan.selected() {
        let i = sc.order;
        if let Some(cache) = &opts.cache {
            let mut c = lock(cache);
            if opts.force {
                c.forced();
            } else if c.lookup(&sc.id.0, &keys[i]) == Lookup::Hit {
                hits.push(i);
                continue;
            }
            durations.insert(i, c.last_duration(&sc.id.0).unwrap_or_default());
        }
        order.push(i);
    }
    order.sort_by_key(|&i| {
        let d = durations.get(&i).copied().unwrap_or_default();
        (
            std::cmp::Reverse(plan.scenarios[i].priority),
            std::cmp::Reverse(d),
            i,
        )
    });
    (order, hits)
}

/// A started receiver and what the user should know about it.
struct Started {
    receiver: Arc<Receiver>,
    warning: Option<String>,
}

/// Starts the OTLP receiver with a fresh token on loopback and the engine's bridge
/// gateway (where containers reach this host). When that gateway is no address of this
/// host (a remote or rootless engine), it listens on every interface, still behind
/// the token, and says so.
async fn start_receiver<E: ContainerEngine>(engine: &E) -> Result<Started, String> {
    let token = ReceiverConfig::random_token()
        .map_err(|e| format!("no random source for the run token: {e}"))?;
    let local: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let gateway = engine.bridge_gateway().await.ok().flatten();
    let mut why = "the engine did not name its bridge gateway".to_owned();
    if let Some(gw) = gateway {
        let config = ReceiverConfig {
            listen: vec![local, gw],
            token: Some(token.clone()),
            advertise: Some(gw),
        };
        match Receiver::start(config).await {
            Ok(r) => {
                return Ok(Started {
                    receiver: Arc::new(r),
                    warning: None,
                });
            }
            Err(e) => why = format!("cannot listen on its bridge gateway {gw} ({e})"),
        }
    }
    let config = ReceiverConfig {
        listen: vec![std::net::Ipv4Addr::UNSPECIFIED.into()],
        token: Some(token),
        advertise: None,
    };
    let receiver = Receiver::start(config)
        .await
        .map_err(|e| format!("could not start the OTLP receiver: {e}"))?;
    Ok(Started {
        receiver: Arc::new(receiver),
        warning: Some(format!(
            "the OTLP receiver listens on every interface, behind the run's token: {why} (a remote or rootless engine?)"
        )),
    })
}

/// Inspects every image once; pulls what is missing. Returns the agent shell of each
/// image and, for images that cannot be had, why.
async fn resolve_images<E: ContainerEngine>(engine: &E, plan: &Plan) -> Images {
    let images: BTreeSet<String> = plan
        .selected()
        .flat_map(|s| s.env.services.iter().map(|v| v.image.clone()))
        .collect();
    let mut shells = HashMap::new();
    let mut errors = HashMap::new();
    let mut ids = HashMap::new();
    for image in images {
        let mut found = engine.image(&image).await;
        if matches!(found, Ok(None)) {
            found = match engine.pull(&image).await {
                Ok(()) => engine.image(&image).await,
                Err(e) => Err(e),
            };
        }
        match found {
            Ok(Some(info)) => {
                let shell = agent_shell(&info.cmd, &info.entrypoint).map(|program| AgentShell {
                    program,
                    as_root: matches!(info.user.split(':').next(), None | Some("" | "root" | "0")),
                });
                shells.insert(image.clone(), shell);
                ids.insert(image, info.id);
            }
            Ok(None) => {
                let e = EngineError::ImageMissing {
                    image: image.clone(),
                    reason: "the pull reported success but the image is not there".into(),
                };
                errors.insert(image, e.to_string());
            }
            Err(e) => {
                errors.insert(image, e.to_string());
            }
        }
    }
    Images {
        shells,
        errors,
        ids,
    }
}

/// What the run knows about its images.
#[derive(Default)]
struct Images {
    /// Image → the shell to use as agent.
    shells: HashMap<String, Option<AgentShell>>,
    /// Image → why it cannot be had.
    errors: HashMap<String, String>,
    /// Image → its id.
    ids: HashMap<String, String>,
}

/// When every selected scenario of `plan` is unchanged since its last passing run (a
/// fully cached run), their results, without touching the engine beyond the image ids
/// the caller read; `None` when anything must run.
pub fn all_cached(
    plan: &Plan,
    image_ids: &HashMap<String, String>,
    opts: &RunOptions,
) -> Option<Vec<ScenarioResult>> {
    let cache = opts.cache.as_ref()?;
    if opts.force {
        return None;
    }
    let keys = cache_keys(plan, image_ids, opts.baseline.as_deref());
    let mut c = lock(cache);
    if plan
        .selected()
        .any(|s| c.peek(&s.id.0, &keys[s.order]) == Lookup::Miss)
    {
        return None;
    }
    let results = plan
        .scenarios
        .iter()
        .map(|sc| match sc.not_selected {
            None => {
                c.lookup(&sc.id.0, &keys[sc.order]);
                let mut r = skipped(
                    sc,
                    plan,
                    Reason::Cached,
                    "unchanged since its last passing run",
                );
                r.status = Status::Cached;
                r
            }
            Some(NotSelected::OtherPartition) => {
                skipped(sc, plan, Reason::Filtered, "not run: in another partition")
            }
            Some(NotSelected::Filtered) => {
                skipped(sc, plan, Reason::Filtered, "not run: filtered out")
            }
        })
        .collect();
    Some(results)
}

fn skipped(sc: &PlannedScenario, plan: &Plan, reason: Reason, message: &str) -> ScenarioResult {
    ScenarioResult {
        id: sc.id.clone(),
        file_index: sc.file,
        file: plan.files[sc.file].display.clone(),
        name: sc.name.clone(),
        status: Status::Skipped,
        reason: Some(reason),
        message: Some(message.to_owned()),
        start: Duration::ZERO,
        duration: Duration::ZERO,
        steps: Vec::new(),
        spans: 0,
        unmet: Vec::new(),
        diff: None,
    }
}

impl<E: ContainerEngine> Shared<E> {
    /// Reports the result of scenario `i` of the plan.
    fn finish(&self, i: usize, result: ScenarioResult) {
        let _ = self.events.send(Event::ScenarioFinished(result.clone()));
        lock(&self.results)[i] = Some(result);
    }

    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || (self.fail_fast && self.failed.load(Ordering::SeqCst))
    }

    /// Asks the pool for environments for the next scenarios in the queue; once the
    /// queue is empty, lets it drop the ready ones nobody will claim.
    fn prewarm(&self) {
        let queue = lock(&self.queue);
        if queue.order.is_empty() {
            self.pool.trim();
            return;
        }
        let mut want: HashMap<&str, (usize, &Arc<crate::plan::EnvSpec>)> = HashMap::new();
        for &i in queue.order.iter().take(self.lookahead) {
            let env = &self.plan.scenarios[i].env;
            if env
                .services
                .iter()
                .any(|s| self.image_errors.contains_key(&s.image))
            {
                continue;
            }
            want.entry(env.key.as_str()).or_insert((0, env)).0 += 1;
        }
        for (count, env) in want.values() {
            self.pool.prewarm(env, *count);
        }
    }
}

async fn worker<E: ContainerEngine>(shared: Arc<Shared<E>>) {
    loop {
        if shared.stopped() {
            return;
        }
        let Some(i) = lock(&shared.queue).pop() else {
            return;
        };
        let result = run_one(&shared, i).await;
        if matches!(result.status, Status::Failed | Status::Error) {
            shared.failed.store(true, Ordering::SeqCst);
        }
        if let Some(cache) = &shared.cache
            && matches!(
                result.status,
                Status::Passed | Status::Failed | Status::Error
            )
        {
            let passed = result.status == Status::Passed;
            lock(cache).record(&result.id.0, &shared.keys[i], passed, result.duration);
        }
        shared.finish(i, result);
    }
}

async fn run_one<E: ContainerEngine>(shared: &Shared<E>, i: usize) -> ScenarioResult {
    let sc = &shared.plan.scenarios[i];
    let file = shared.plan.files[sc.file].display.clone();
    let error = |reason: Reason, message: String| ScenarioResult {
        status: Status::Error,
        reason: Some(reason),
        message: Some(sc.masker.mask(&message)),
        ..skipped(sc, &shared.plan, reason, "")
    };
    if let Some(e) = sc
        .env
        .services
        .iter()
        .find_map(|s| shared.image_errors.get(&s.image))
    {
        return error(Reason::Image, e.clone());
    }
    if let (Some(e), Some(_)) = (&shared.otlp_error, &sc.env.otlp) {
        return error(Reason::Engine, e.clone());
    }
    let file_lock = shared.file_locks[sc.file].clone();
    let _guard = if sc.exclusive {
        Guard::Write(file_lock.write_owned().await)
    } else {
        Guard::Read(file_lock.read_owned().await)
    };
    let claim = shared.pool.claim(&sc.env);
    shared.prewarm();
    let acquired = tokio::select! {
        e = claim.ready() => e,
        () = shared.cancel.cancelled() => {
            return skipped(sc, &shared.plan, Reason::Interrupted, "not run: interrupted");
        }
    };
    let mut env = match acquired {
        Ok(env) => env,
        Err(e @ (pool::PoolError::Unhealthy { .. } | pool::PoolError::NoReadySpan { .. })) => {
            return ScenarioResult {
                status: Status::Failed,
                ..error(Reason::Unhealthy, e.to_string())
            };
        }
        Err(pool::PoolError::Stopped) => {
            return skipped(
                sc,
                &shared.plan,
                Reason::Interrupted,
                "not run: interrupted",
            );
        }
        Err(e) => return error(Reason::Engine, e.to_string()),
    };
    let _ = shared
        .events
        .send(Event::ScenarioStarted { id: sc.id.clone() });
    let ran_start = Instant::now();
    let otlp = shared.receiver.as_ref().filter(|_| sc.env.otlp.is_some());
    let ips = env.ips();
    if let Some(r) = otlp {
        r.open(&sc.id.0, &ips, sc.span_limits);
    }
    let mut ran = scenario::run_scenario(
        &shared.pool,
        &mut env,
        sc,
        &file,
        &shared.events,
        &shared.cancel,
    )
    .await;
    ran.result.start = ran_start.saturating_duration_since(shared.started);
    let mut collected = SpanBudget::new(sc.span_limits);
    collected.extend(std::mem::take(&mut ran.stdout_spans));
    let mut settled = true;
    let mut dropped_by_receiver = crate::otel::Overflow {
        kept: 0,
        dropped: 0,
        unread: 0,
        limits: sc.span_limits,
    };
    if let Some(r) = otlp {
        let settle_start = Instant::now();
        let wait_for = sc
            .env
            .services
            .iter()
            .find_map(|s| s.wait_for_span.as_ref());
        let wait_for = wait_for.map(|(name, t)| (name.as_str(), *t));
        settled = tokio::select! {
            () = r.settle(&sc.id.0, wait_for, SPAN_QUIET, SPAN_WAIT_MAX) => true,
            () = shared.cancel.cancelled() => false,
        };
        ran.result.duration += settle_start.elapsed();
        let received = r.close(&sc.id.0, &ips);
        if let Some(o) = received.overflow {
            dropped_by_receiver = o;
        }
        collected.extend(received.spans);
    }
    if !settled && ran.result.status == Status::Passed {
        // Cut short while its spans were coming in: no verdict on part of them.
        ran.result.status = Status::Skipped;
        ran.result.reason = Some(Reason::Interrupted);
        ran.result.message = Some("interrupted while waiting for its spans".into());
        ran.reusable = false;
    }
    if ran.result.status == Status::Skipped {
        let queued = lock(&shared.queue).queued(&sc.env.key);
        shared.pool.release(env, false, queued);
        return ran.result;
    }
    let (collected, mut overflow) = collected.into_parts();
    if dropped_by_receiver.dropped + dropped_by_receiver.unread > 0 {
        let mut o = overflow.unwrap_or(crate::otel::Overflow {
            kept: collected.len(),
            dropped: 0,
            unread: 0,
            limits: sc.span_limits,
        });
        o.dropped += dropped_by_receiver.dropped;
        o.unread += dropped_by_receiver.unread;
        overflow = Some(o);
    }
    spans::conclude(
        sc,
        &mut ran.result,
        &collected,
        overflow,
        shared.artifacts.as_deref(),
        &shared.run_id,
        shared.baseline.as_deref(),
    );
    // An environment nobody will need again is removed now, not at the end of the run.
    let queued = lock(&shared.queue).queued(&sc.env.key);
    shared.pool.release(env, ran.reusable, queued);
    ran.result
}

/// The scenarios not yet dispatched, in order, with how many need each environment key.
struct Queue {
    order: VecDeque<usize>,
    keys: Vec<String>,
    per_key: HashMap<String, usize>,
}

impl Queue {
    fn new(order: Vec<usize>, keys: &[String]) -> Self {
        let mut per_key = HashMap::new();
        for &i in &order {
            *per_key.entry(keys[i].clone()).or_insert(0) += 1;
        }
        Self {
            order: order.into(),
            keys: keys.to_vec(),
            per_key,
        }
    }

    fn pop(&mut self) -> Option<usize> {
        let i = self.order.pop_front()?;
        if let Some(n) = self.per_key.get_mut(&self.keys[i]) {
            *n -= 1;
        }
        Some(i)
    }

    fn drain(&mut self) -> Vec<usize> {
        self.per_key.clear();
        self.order.drain(..).collect()
    }

    fn queued(&self, key: &str) -> usize {
        self.per_key.get(key).copied().unwrap_or(0)
    }
}

enum Guard {
    Read(#[expect(dead_code, reason = "held for its drop")] tokio::sync::OwnedRwLockReadGuard<()>),
    Write(
        #[expect(dead_code, reason = "held for its drop")] tokio::sync::OwnedRwLockWriteGuard<()>,
    ),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
