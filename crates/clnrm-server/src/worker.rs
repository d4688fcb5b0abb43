//! Workers: each claims the oldest queued run with a lease, renews the lease while it
//! runs the run through the clnrm pipeline (in a session of its own, kept between
//! runs so that its warm environments serve the next run too), stores each event as
//! it happens, and stores the report, only while it still holds the lease, so that a
//! run another worker took over is never completed twice. A cancel reaches the run at
//! the next renewal; losing the lease stops it at once.

use crate::job::{RunOptions, confined, paths};
use crate::store::{Claimed, Finished, Renewal, ScenarioOutcome, Store, StoreError};
use crate::upload::Bundle;
use crate::{App, HEARTBEAT};
use clnrm_core::backend::{ContainerEngine, Deadlines, Docker, Engine};
use clnrm_core::config::{RunConfig, RunFlags};
use clnrm_core::exec::{Event, RunOwner, Session, SessionOptions, Status, Stop};
use clnrm_core::pipeline::{self, Host, Sink};
use clnrm_core::report::{RunReport, Summary, Verdict};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// This machine's name and this process's id.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}

/// Starts `app.options.workers` workers; they stop claiming when `stop` is cancelled
/// and end after the run they hold.
pub fn spawn_all<S: Store>(app: Arc<App<S>>, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    (0..app.options.workers)
        .map(|n| tokio::spawn(work(app.clone(), n, stop.clone())))
        .collect()
}

async fn work<S: Store>(app: Arc<App<S>>, n: usize, stop: CancellationToken) {
    let name = format!("{}#{n}", app.options.name);
    let beating = tokio::spawn(heartbeat(app.clone(), name.clone()));
    // The session starts before the first claim, and what dead runs left on the
    // engine (a worker killed mid-run and started again here) is removed then, not
    // only when a run comes.
    let mut session: Option<Session<Engine>> = start_session().await;
    if let Some(s) = &session
        && let Err(e) = s.reap(&RunOwner::current()).await
    {
        eprintln!("worker {name}: removing what dead runs left: {e}");
    }
    while !stop.is_cancelled() {
        // The lease runs from before the claim was asked for: the database counts it
        // from when it answered, never earlier.
        let asked = std::time::Instant::now();
        let claimed = match app.store.claim(&name, lease_ms(&app)).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("worker {name}: {e}");
                None
            }
        };
        let Some(run) = claimed else {
            tokio::select! {
                () = app.queued.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => {}
            }
            continue;
        };
        // The lease is renewed from the claim on, while the session starts too.
        let stop = Stop::default();
        let lost = CancellationToken::new();
        let renewing = AbortOnDrop(tokio::spawn(renew(
            app.clone(),
            run.id.clone(),
            (name.clone(), run.attempt),
            asked,
            (stop.clone(), lost.clone()),
        )));
        if session.is_none() {
            session = start_session().await;
        }
        match &session {
            Some(s) => {
                execute(&app, (&name, run.attempt), s, run, stop, lost.clone()).await;
                // A run lost on the way (the lease gone: cut off from the database,
                // stopped too long) may have left its environments half way: none of
                // them serves another run. The session goes with its containers; the
                // next claim starts a new one.
                if lost.is_cancelled()
                    && let Some(s) = session.take()
                {
                    s.shutdown().await;
                }
            }
            None => {
                // No engine: give the run back for a worker that has one.
                let _ = app.store.release(&run.id, &name).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        drop(renewing);
    }
    beating.abort();
    if let Some(s) = session {
        s.shutdown().await;
    }
}

async fn heartbeat<S: Store>(app: Arc<App<S>>, name: String) {
    loop {
        if let Err(e) = app.store.heartbeat(&name).await {
            eprintln!("worker {name}: {e}");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

fn lease_ms<S>(app: &App<S>) -> i64 {
    app.options.lease.as_millis() as i64
}

async fn start_session() -> Option<Session<Engine>> {
    let executor = clnrm_core::project::ExecutorConfig::default();
    let engine = match Docker::connect().await {
        Ok(d) => Arc::new(Deadlines::new(
            d,
            executor.engine_timeout(),
            executor.pull_timeout(),
        )),
        Err(e) => {
            eprintln!("worker: no container engine: {e}");
            return None;
        }
    };
    let opts = SessionOptions {
        workers: clnrm_core::cpus().max(1),
        max_containers: executor.max_concurrent_containers as usize,
        owner: RunOwner::current(),
        warm_pool: true,
    };
    Some(Session::start(engine, &opts, true, true).await)
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stores a run's events as they happen and wakes the streams that follow it.
struct StoreSink<S> {
    app: Arc<App<S>>,
    id: String,
    /// The claim that holds the run (worker, attempt).
    holder: (String, i64),
    /// The run was lost to another worker: nothing more is stored.
    lost: bool,
    /// Cancelled when the lease is lost: a write being sent again stops.
    gone: CancellationToken,
    seq: i64,
    handle: tokio::runtime::Handle,
    /// What else sees the run (clnrm's own spans).
    also: Option<Box<dyn Sink>>,
}

impl<S: Store> Sink for StoreSink<S> {
    fn finish(&mut self, report: &RunReport) {
        if let Some(also) = &mut self.also {
            also.finish(report);
        }
    }

    fn event(&mut self, event: &Event) {
        if let Some(also) = &mut self.also {
            also.event(event);
        }
        // When the run emitted it, for clients that measure how late they learn it.
        let mut value = serde_json::to_value(event).unwrap_or_default();
        value["at_ms"] = serde_json::json!(crate::now_ms());
        let data = value.to_string();
        // A run whose lease is gone stores nothing more (the claim that holds it now
        // would refuse it), and does not wait on a database it may not reach.
        if self.lost || self.gone.is_cancelled() {
            return;
        }
        let holder = (self.holder.0.as_str(), self.holder.1);
        let stored = self
            .handle
            .block_on(retried(self.app.options.lease, &self.gone, || {
                self.app
                    .store
                    .append_event(&self.id, holder, self.seq, &data)
            }));
        match stored {
            Ok(true) => {
                self.seq += 1;
                let _ = self.app.appended.send(self.id.clone());
            }
            Ok(false) => self.lost = true,
            Err(e) => {
                // It may have been stored with its answer lost: its number is not
                // used again (a gap is harmless to readers, a number twice is not).
                self.seq += 1;
                eprintln!("run {}: an event was not stored: {e}", self.id);
            }
        }
    }
}

async fn execute<S: Store>(
    app: &Arc<App<S>>,
    worker: (&str, i64),
    session: &Session<Engine>,
    run: Claimed,
    stop: Stop,
    lost: CancellationToken,
) {
    let id = run.id.clone();
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return fail(
                app,
                worker,
                &id,
                &format!("no temporary directory: {e}"),
                &lost,
            )
            .await;
        }
    };
    // Stored by the API, which checked them; unreadable here only when a newer
    // clnrm stored them (a worker of before an upgrade): run nothing rather than run
    // without its filters.
    let options: RunOptions = match serde_json::from_value(run.options.clone()) {
        Ok(o) => o,
        Err(e) => {
            let why = format!("the run's options cannot be read by this worker ({e}); upgrade it");
            return fail(app, worker, &id, &why, &lost).await;
        }
    };
    let written = Bundle::unpack(&run.bundle)
        .map_err(UnpackError::from)
        .and_then(|b| Ok(b.write_to(dir.path())?));
    if let Err(e) = written {
        return fail(
            app,
            worker,
            &id,
            &format!("the project could not be unpacked: {e}"),
            &lost,
        )
        .await;
    }
    let root = dir.path().to_path_buf();
    let vars = options.assignments();
    let prepared = match tokio::task::spawn_blocking(move || {
        pipeline::prepare_with(&root, &paths(&root), &vars, true)
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return fail(app, worker, &id, &e.to_string(), &lost).await,
    };
    // Confinement first: what validation says of a path outside the project is not
    // the client's to hear.
    if let Err(e) = confined(&prepared) {
        return fail(app, worker, &id, &e.to_string(), &lost).await;
    }
    if prepared.has_errors() {
        return fail(app, worker, &id, "the project does not validate", &lost).await;
    }
    let flags = RunFlags {
        workers: options.workers,
        force: options.force,
        filter: options.filter.clone().into_iter().collect(),
        tags: options.tags.clone(),
        retries: options.retries,
        update_baseline: options.update_baseline,
        only: options.scenarios.clone(),
        ..RunFlags::default()
    };
    let config = match RunConfig::resolve(&flags, &prepared.project) {
        // The project is a fresh copy: no cache to read, none worth keeping.
        Ok(c) => RunConfig { cache: false, ..c },
        Err(e) => return fail(app, worker, &id, &e.to_string(), &lost).await,
    };
    // The record of what clnrm built is this run's to write, not the upload's.
    let _ = std::fs::remove_file(clnrm_core::build::record_path(&prepared.project.root));
    let sink = StoreSink {
        app: app.clone(),
        id: id.clone(),
        holder: (worker.0.to_owned(), worker.1),
        lost: false,
        gone: lost.clone(),
        seq: run.next_event,
        handle: tokio::runtime::Handle::current(),
        also: app.options.observer.as_ref().map(|o| (o.0)()),
    };
    let host = Host::Session(session);
    let ran = pipeline::run(&prepared, &config, host, sink, stop.clone()).await;
    // The images this run built belong to its copy of the project, gone with it: none
    // outlives the run (the engine's layer cache makes the next build of the same
    // sources quick).
    remove_built(session.engine(), &prepared.project.root).await;
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => return fail(app, worker, &id, &e.to_string(), &lost).await,
    };
    if lost.is_cancelled() {
        eprintln!("run {id}: another worker took it over; this attempt's result is dropped");
        return;
    }
    let report = &ran.report;
    let cancelled = stop.interrupt.is_cancelled();
    let status = match report.verdict(false) {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Environment => "error",
        Verdict::Interrupted if cancelled => "cancelled",
        Verdict::Interrupted => "error",
    };
    let mut finished = finished(status, report);
    let project = &prepared.project;
    if let Some(e) = &ran.error {
        eprintln!("run {id}: not concluded in full: {e}");
    }
    if config.update_baseline && !report.interrupted && ran.concluded.recorded.is_some() {
        // Recorded in the run's copy of the project, then kept to be downloaded.
        finished.baseline = std::fs::read_to_string(project.layout().baseline()).ok();
    }
    finished.spans = collected_spans(&project.layout().artifacts(), report);
    store_outcome(app, worker, &id, &finished, &lost).await;
    let _ = app.appended.send(id);
}

/// `call` again, with backoff, while it fails as a database restart or a lost
/// connection makes it fail, for at most `within` in all (each call at most that
/// long: a cut-off database answers nothing) and not once the run is `lost`: what
/// it answers then. Only for writes that the claim fences and that are idempotent
/// (an event at its number, the outcome).
async fn retried<T, F, Fut>(
    within: Duration,
    lost: &CancellationToken,
    mut call: F,
) -> crate::store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<T>>,
{
    let end = std::time::Instant::now() + within;
    let mut pause = Duration::from_millis(100);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        // The run lost while a call is on its way ends the wait too.
        let answer = tokio::select! {
            answer = tokio::time::timeout(left, call()) => {
                answer.unwrap_or_else(|_| Err(StoreError::Timeout("storing what the run did")))
            }
            () = lost.cancelled() => Err(StoreError::Timeout("the run's lease is gone")),
        };
        match answer {
            Err(e)
                if e.is_transient()
                    && !lost.is_cancelled()
                    && std::time::Instant::now() + pause < end =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            answer => return answer,
        }
    }
}

/// Removes the images built for the project at `root`.
async fn remove_built(engine: &std::sync::Arc<Engine>, root: &Path) {
    let root = root.display().to_string();
    match clnrm_core::build::built_images(&**engine, &root).await {
        Ok(images) => {
            for image in images {
                let _ = engine.remove_image(&image.tag).await;
            }
        }
        Err(e) => eprintln!("the images built for {root} were not removed: {e}"),
    }
}

fn finished(status: &str, report: &RunReport) -> Finished {
    let s = Summary::of(&report.results);
    Finished {
        status: status.to_owned(),
        summary: serde_json::json!({
            "passed": s.passed, "flaky": s.flaky, "failed": s.failed, "errors": s.errors,
            "cached": s.cached, "skipped": s.skipped,
            "duration_ms": report.duration.as_millis() as u64,
        }),
        report: format!("{:#}", clnrm_core::report::to_json(report)),
        scenarios: report
            .results
            .iter()
            .filter(|r| !matches!(r.status, Status::Skipped | Status::Cached))
            .map(|r| ScenarioOutcome {
                scenario_id: r.id.0.clone(),
                run_id: String::new(),
                status: r.status.as_str().to_owned(),
                duration_ms: r.duration.as_millis() as i64,
                finished_ms: 0,
            })
            .collect(),
        spans: Vec::new(),
        baseline: None,
    }
}

/// The most span data kept per scenario for the API (the rest stays with the run's
/// report: the count).
const MAX_SPANS_JSON: usize = 8 << 20;

/// The spans each scenario of `report` saved in `dir`, as JSON lists, those within
/// [`MAX_SPANS_JSON`].
fn collected_spans(dir: &Path, report: &RunReport) -> Vec<(String, String)> {
    report
        .results
        .iter()
        .filter(|r| r.spans > 0)
        .filter_map(|r| {
            let saved = clnrm_core::otel::artifacts::load(dir, &r.id.0).ok()??;
            let json = serde_json::to_string(&saved.spans).ok()?;
            (json.len() <= MAX_SPANS_JSON).then(|| (r.id.0.clone(), json))
        })
        .collect()
}

/// Ends a run that could not run, as `error`, saying why.
async fn fail<S: Store>(
    app: &Arc<App<S>>,
    worker: (&str, i64),
    id: &str,
    why: &str,
    lost: &CancellationToken,
) {
    // A run whose lease is gone is another claim's to conclude.
    if lost.is_cancelled() {
        eprintln!("run {id}: {why}; its lease is gone, another worker runs it");
        return;
    }
    let f = Finished {
        status: "error".into(),
        summary: serde_json::json!({"message": why}),
        report: serde_json::json!({"run_id": id, "error": why, "scenarios": []}).to_string(),
        scenarios: Vec::new(),
        spans: Vec::new(),
        baseline: None,
    };
    store_outcome(app, worker, id, &f, lost).await;
    let _ = app.appended.send(id.to_owned());
}

/// Stores a run's outcome as the claim `worker` holds it, sent again while the
/// database is away (for up to a lease); an answer lost with the connection is
/// read back from the run, so that a stored outcome is never taken for a lost run.
async fn store_outcome<S: Store>(
    app: &Arc<App<S>>,
    worker: (&str, i64),
    id: &str,
    finished: &Finished,
    lost: &CancellationToken,
) {
    let stored = retried(app.options.lease, lost, || {
        app.store.finish(id, worker, finished)
    })
    .await;
    let ours = |r: &crate::store::RunRow| {
        crate::store::is_final(&r.status)
            && r.worker.as_deref() == Some(worker.0)
            && r.attempts == worker.1
    };
    match stored {
        Ok(true) => crate::webhook::run_finished(app, id),
        Ok(false) if matches!(app.store.run(id).await, Ok(Some(r)) if ours(&r)) => {
            crate::webhook::run_finished(app, id);
        }
        Ok(false) => eprintln!("run {id}: lost before it was stored; another worker runs it"),
        Err(e) => eprintln!("run {id}: not stored ({e}); it will run again"),
    }
}

/// Renews the lease of the claim `holder` (worker, attempt) on run `id` until
/// aborted: a cancel interrupts the run; a lost lease, or none renewed for a whole
/// lease (the database out of reach), stops it at once.
async fn renew<S: Store>(
    app: Arc<App<S>>,
    id: String,
    holder: (String, i64),
    claimed: std::time::Instant,
    (stop, lost): (Stop, CancellationToken),
) {
    let every = (app.options.lease / 5).max(Duration::from_millis(200));
    // Until when the run is surely this worker's: a lease from the moment a renewal
    // (or the claim) was sent, which is no later than when the database counted it.
    let mut held_until = claimed + app.options.lease;
    loop {
        let left = held_until.saturating_duration_since(std::time::Instant::now());
        tokio::time::sleep(every.min(left)).await;
        let sent = std::time::Instant::now();
        let left = held_until.saturating_duration_since(sent);
        // A database cut off answers nothing (its packets are dropped): the wait for
        // an answer ends when the lease does, or a worker past its lease would go on
        // running a run another worker has taken.
        let answer = if left.is_zero() {
            Err(StoreError::Timeout("renewing the lease"))
        } else {
            tokio::time::timeout(
                left,
                app.store.renew(&id, &holder.0, holder.1, lease_ms(&app)),
            )
            .await
            .unwrap_or_else(|_| Err(StoreError::Timeout("renewing the lease")))
        };
        match answer {
            Ok(Renewal::Held { cancel }) => {
                held_until = sent + app.options.lease;
                if cancel {
                    stop.interrupt.cancel();
                }
            }
            Ok(Renewal::Lost) => break,
            Err(e) if std::time::Instant::now() < held_until => {
                eprintln!("run {id}: lease not renewed: {e}");
            }
            Err(e) => {
                eprintln!(
                    "run {id}: no lease renewed for {:?} ({e}); stopping it",
                    app.options.lease
                );
                break;
            }
        }
    }
    lost.cancel();
    stop.interrupt.cancel();
    stop.force.cancel();
}

/// Why a claimed run's project could not be put on disk.
#[derive(Debug, thiserror::Error)]
enum UnpackError {
    /// The stored bundle is not one the service would have taken.
    #[error(transparent)]
    Bundle(#[from] crate::upload::Refused),
    /// Writing its files failed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}
