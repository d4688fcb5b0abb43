//! The one entry point of a run: [`run`] takes prepared (valid) files, one resolved
//! [`RunConfig`] and a [`Sink`], and owns the rest: plan, the fully cached fast path,
//! execution in a session (the caller's, or one of its own started only when
//! something must run), conclusion (cache, outcomes, baseline, report files).
//! `clnrm run`, `watch`, `diff`, `bench` and the runs service's worker all call it.

use super::Prepared;
use super::conclude::{Concluded, conclude};
use super::error::PipelineError;
use super::plan::{Planned, plan_run};
use super::prefetch::{Prefetch, image_ids};
use crate::backend::ContainerEngine;
use crate::cache::Cache;
use crate::config::RunConfig;
use crate::exec::{Event, RunOwner, Session, SessionOptions, Stop};
use crate::report::RunReport;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a run's events go (the human report, progress, clnrm's own telemetry, a
/// server's event stream). `event` and `finish` are called on a blocking thread of
/// the runtime, in order, so they may block (and reach the runtime through
/// `tokio::runtime::Handle::current()`); `warning` is called from the run's task and
/// must not block.
pub trait Sink: Send + 'static {
    /// One event of the run.
    fn event(&mut self, event: &Event);
    /// The run ended; its report.
    fn finish(&mut self, _report: &RunReport) {}
    /// Something the user should know about how the run was made (an unusable cache
    /// file, a receiver listening on every interface, containers left behind).
    fn warning(&mut self, text: &str) {
        eprintln!("warning: {text}");
    }
    /// What the run is about to do, when it is not what its paths and flags alone
    /// select (`--failed`); like `warning`, from the run's task.
    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
    /// Whether `event` and `finish` may wait (a store, an export): they are then
    /// called on a blocking thread. A sink that only writes to the terminal says
    /// `false`, and a fully cached run tells it everything from the run's task.
    fn blocks(&self) -> bool {
        true
    }
}

/// Where a run executes.
pub enum Host<'s, E> {
    /// In a session the caller keeps across runs (`watch`'s cycles, `bench`'s rounds,
    /// a worker of the runs service).
    Session(&'s Session<E>),
    /// In a session of its own on this engine (which need not have answered yet: it
    /// is asked only when something must run), ended (every container removed) with
    /// the run.
    Engine(Arc<E>),
    /// As [`Host::Engine`], the ids of the images the project's cache names already asked
    /// for, before the files were read (`clnrm run`).
    Prefetched(Arc<E>, Prefetch),
}

/// A run that was made.
#[derive(Debug)]
pub struct Ran {
    /// Its report.
    pub report: RunReport,
    /// What concluding it did (the baseline recorded, the inputs it wrote to).
    pub concluded: Concluded,
    /// Why it could not be concluded in full (the report stands).
    pub error: Option<PipelineError>,
}

/// How long removing a run's containers may take after an interrupt.
const TEARDOWN_AFTER_INTERRUPT: Duration = Duration::from_secs(10);

/// Runs the selected scenarios of `prepared` (its files valid) as `config` says, on
/// `host`, the events going to `sink`, stopped as `stop` says. `Err` only when nothing
/// ran: the run could not be planned, or its own engine does not answer.
pub async fn run<E: ContainerEngine, S: Sink>(
    prepared: &Prepared,
    config: &RunConfig,
    host: Host<'_, E>,
    mut sink: S,
    stop: Stop,
) -> Result<Ran, PipelineError> {
    let started = Instant::now();
    let (host, prefetch) = match host {
        Host::Prefetched(e, p) => (Host::Engine(e), Some(p)),
        other => (other, None),
    };
    let engine = match &host {
        Host::Session(s) => s.engine().clone(),
        Host::Engine(e) | Host::Prefetched(e, _) => e.clone(),
    };
    // The ids of the images, asked for while the run is planned (or before the files
    // were read), when the cache may answer the run: what a fully cached run waits for.
    let ids = match (config.cache_may_answer(), prefetch) {
        (false, _) => None,
        (true, Some(p)) => Some(tokio::spawn(p.answer())),
        (true, None) => Some(tokio::spawn(image_ids(engine.clone(), images(prepared)))),
    };
    // Every run has an id of its own, in a session of its caller's too (whose
    // containers carry the session's id: warm ones outlive a run).
    let mut planned = plan_run(prepared, config, RunOwner::current())?;
    // The run owns its cache: the dispatcher records in it, the conclusion saves it.
    let mut cache = planned.cache.take();
    for w in &planned.warnings {
        sink.warning(w);
    }
    for n in &planned.notes {
        sink.note(n);
    }
    // `None`: not asked, or the engine did not answer (it is not asked again here).
    let ids = match ids {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    // A session that remembers builds (watch) learns their images from a run of its
    // own, even one the cache answers in full.
    let learns_builds = matches!(&host, Host::Session(s) if s.remembers_builds())
        && planned
            .plan
            .selected()
            .any(|s| s.env.services.iter().any(|v| v.build.is_some()));
    let cached = if config.update_baseline || learns_builds {
        None
    } else {
        all_cached(&*engine, &planned, cache.as_mut(), ids, started).await
    };
    let report = match (cached, host) {
        (Some(report), _) => {
            let total = planned.plan.selected().count();
            let workers = planned.options.workers;
            let tell = move |mut sink: S| {
                sink.event(&Event::RunStarted {
                    run_id: report.run_id.clone(),
                    total,
                    workers,
                });
                for r in &report.results {
                    sink.event(&Event::ScenarioFinished(r.clone()));
                }
                sink.finish(&report);
                report
            };
            if sink.blocks() {
                tokio::task::spawn_blocking(move || tell(sink))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            } else {
                tell(sink)
            }
        }
        (None, Host::Session(session)) => {
            let (report, _, returned) = execute(session, &planned, cache.take(), sink, stop).await;
            cache = returned;
            report
        }
        (None, Host::Engine(engine) | Host::Prefetched(engine, _)) => {
            engine.ping().await?;
            let otlp = planned.plan.selected().any(|s| s.env.otlp.is_some());
            let options = session_options(config, planned.options.owner.clone());
            let session = Session::start(engine, &options, otlp, false).await;
            for w in session.warnings() {
                sink.warning(w);
            }
            let (mut report, sink, returned) =
                execute(&session, &planned, cache.take(), sink, stop.clone()).await;
            cache = returned;
            let left = end_session(&session, &stop).await;
            match sink {
                Some(mut sink) => left.iter().for_each(|w| sink.warning(w)),
                None => left.iter().for_each(|w| eprintln!("warning: {w}")),
            }
            // An interrupt during the teardown interrupts the run too (the results stand).
            report.interrupted |= stop.interrupt.is_cancelled();
            report
        }
    };
    let (concluded, error) = if config.conclude {
        match conclude(&prepared.project, config, &planned, cache.as_ref(), &report) {
            Ok(c) => (c, None),
            Err(e) => (Concluded::default(), Some(e)),
        }
    } else {
        (Concluded::default(), None)
    };
    Ok(Ran {
        report,
        concluded,
        error,
    })
}

/// The options of a session for runs with `config`, owned by `owner`.
pub fn session_options(config: &RunConfig, owner: RunOwner) -> SessionOptions {
    SessionOptions {
        workers: config.workers,
        max_containers: config.max_containers,
        owner,
        warm_pool: config.warm_pool,
    }
}

/// A session for runs of `prepared` with `config` (its OTLP receiver started when a
/// file exports over OTLP); `keep_warm` keeps a clean environment per key between
/// runs. For callers that run several times in one session.
pub async fn start_session<E: ContainerEngine>(
    engine: Arc<E>,
    prepared: &Prepared,
    config: &RunConfig,
    keep_warm: bool,
) -> Session<E> {
    let otlp = prepared
        .files
        .iter()
        .filter_map(|f| f.file.as_ref())
        .any(|f| matches!(crate::plan::intake(f), crate::plan::Intake::Otlp { .. }));
    let options = session_options(config, RunOwner::current());
    Session::start(engine, &options, otlp, keep_warm).await
}

/// Removes what `session` started: after an interrupt for at most
/// [`TEARDOWN_AFTER_INTERRUPT`], after a second one not at all. What the user should
/// know about what is left (the next run removes it).
pub async fn end_session<E: ContainerEngine>(session: &Session<E>, stop: &Stop) -> Vec<String> {
    // The time left starts when an interrupt comes, during the teardown too.
    let out_of_time = async {
        stop.interrupt.cancelled().await;
        tokio::time::sleep(TEARDOWN_AFTER_INTERRUPT).await;
    };
    let left = tokio::select! {
        left = session.shutdown() => left,
        () = out_of_time => session.leftovers(),
        () = stop.force.cancelled() => {
            return vec!["stopped without removing this run's containers; the next run removes them".to_owned()];
        }
    };
    if left.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} container(s) and {} network(s) could not be removed (the engine did not answer); the next run removes them",
        left.containers, left.networks
    )]
}

/// Executes `planned` in `session` with `cache`, the events going to `sink` as they
/// happen; the run's report once it ended (or `stop` stopped it), the sink back
/// (unless it panicked) and the cache with what the run recorded.
async fn execute<E: ContainerEngine, S: Sink>(
    session: &Session<E>,
    planned: &Planned,
    cache: Option<Cache>,
    mut sink: S,
    stop: Stop,
) -> (RunReport, Option<S>, Option<Cache>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let events = tokio::task::spawn_blocking(move || {
        while let Some(event) = rx.blocking_recv() {
            sink.event(&event);
        }
        sink
    });
    let outcome = session
        .run(planned.plan.clone(), &planned.options, cache, tx, stop)
        .await;
    let report = RunReport {
        run_id: planned.options.owner.run_id.clone(),
        results: outcome.results,
        duration: outcome.duration,
        interrupted: outcome.interrupted,
    };
    let Ok(mut sink) = events.await else {
        return (report, None, outcome.cache);
    };
    // On a blocking thread too: a sink may wait (an export, a file).
    let shown = report.clone();
    let sink = tokio::task::spawn_blocking(move || {
        sink.finish(&shown);
        sink
    })
    .await
    .ok();
    (report, sink, outcome.cache)
}

/// The report of a run in which every selected scenario is unchanged since its last
/// passing run, from the image `ids` asked for while planning; `None` when something
/// must run or it cannot tell (the cache off or forced, an image missing, the engine
/// not answering).
async fn all_cached<E: ContainerEngine>(
    engine: &E,
    planned: &Planned,
    cache: Option<&mut Cache>,
    ids: Option<HashMap<String, String>>,
    started: Instant,
) -> Option<RunReport> {
    if planned.plan.selected().next().is_none() {
        let results = planned
            .plan
            .scenarios
            .iter()
            .map(|s| crate::exec::ScenarioResult::not_selected(s, &planned.plan))
            .collect();
        return Some(RunReport {
            run_id: planned.options.owner.run_id.clone(),
            results,
            duration: started.elapsed(),
            interrupted: false,
        });
    }
    let mut ids = ids?;
    let images: BTreeSet<&str> = planned
        .plan
        .selected()
        .flat_map(|s| s.env.services.iter().flat_map(|v| v.keyed_images()))
        .collect();
    for image in images {
        if !ids.contains_key(image) {
            let info = engine.image(image).await.ok()??;
            ids.insert(image.to_owned(), info.id);
        }
    }
    let results = crate::exec::all_cached(&planned.plan, &ids, &planned.options, cache?)?;
    Some(RunReport {
        run_id: planned.options.owner.run_id.clone(),
        results,
        duration: started.elapsed(),
        interrupted: false,
    })
}

/// The images of the services of `prepared`'s valid files.
fn images(prepared: &Prepared) -> BTreeSet<String> {
    prepared
        .files
        .iter()
        .filter_map(|f| f.file.as_ref())
        .flat_map(|f| {
            f.services
                .iter()
                .filter_map(|(_, s)| Some(s.image.as_ref()?.value.clone()))
        })
        .collect()
}
