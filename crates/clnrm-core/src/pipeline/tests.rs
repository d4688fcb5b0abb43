//! The entry point against the in-memory engine: the fully cached fast path, a
//! cancelled run, a failed fixture set-up, `--failed`.

use super::*;
use crate::backend::fake::FakeEngine;
use crate::config::{RunConfig, RunFlags};
use crate::exec::{Event, Reason, Status, Stop};
use crate::report::RunReport;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What a sink saw.
#[derive(Clone, Default)]
struct Seen {
    events: Arc<Mutex<Vec<Event>>>,
    warnings: Arc<Mutex<Vec<String>>>,
    notes: Arc<Mutex<Vec<String>>>,
    finished: Arc<Mutex<bool>>,
    /// Cancelled once a scenario starts, when set.
    cancel_on_start: Option<tokio_util::sync::CancellationToken>,
}

impl Sink for Seen {
    fn event(&mut self, event: &Event) {
        if matches!(event, Event::ScenarioStarted { .. })
            && let Some(t) = &self.cancel_on_start
        {
            t.cancel();
        }
        lock(&self.events).push(event.clone());
    }
    fn finish(&mut self, _report: &RunReport) {
        *lock(&self.finished) = true;
    }
    fn warning(&mut self, text: &str) {
        lock(&self.warnings).push(text.to_owned());
    }
    fn note(&mut self, text: &str) {
        lock(&self.notes).push(text.to_owned());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A project in a temporary directory with `t.clnrm.toml` holding `body` after a
/// file header and one service `app`.
fn project(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\n\n{body}"
    );
    std::fs::write(dir.path().join("t.clnrm.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn prepared(root: &Path) -> Prepared {
    let p = prepare_with(root, &[root.to_path_buf()], &[], true);
    assert!(!p.has_errors(), "{:?}", p.diagnostics());
    p
}

fn config(prepared: &Prepared, flags: &RunFlags) -> RunConfig {
    RunConfig::resolve(flags, &prepared.project).unwrap_or_else(|e| panic!("{e}"))
}

/// One run of the project at `root` on `engine`, stopped by `stop`; what the sink saw.
async fn run_once(
    root: &Path,
    flags: &RunFlags,
    engine: &Arc<FakeEngine>,
    stop: Stop,
    cancel_on_start: bool,
) -> (Ran, Seen) {
    let prepared = prepared(root);
    let config = config(&prepared, flags);
    let seen = Seen {
        cancel_on_start: cancel_on_start.then(|| stop.interrupt.clone()),
        ..Seen::default()
    };
    let ran = run(
        &prepared,
        &config,
        Host::Engine(engine.clone()),
        seen.clone(),
        stop,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (ran, seen)
}

fn statuses(report: &RunReport) -> Vec<(String, Status, Option<Reason>)> {
    report
        .results
        .iter()
        .map(|r| (r.name.clone(), r.status, r.reason))
        .collect()
}

/// Scenarios `a` and `b` of [`TWO`], both answered from the cache.
fn both_cached() -> Vec<(String, Status, Option<Reason>)> {
    ["a", "b"]
        .map(|n| (n.to_owned(), Status::Cached, Some(Reason::Cached)))
        .to_vec()
}

const TWO: &str = "[[scenario]]\nname = \"a\"\nrun = \"echo a\"\n\n[[scenario]]\nname = \"b\"\nrun = \"echo b\"\n";

#[tokio::test]
async fn an_unchanged_suite_is_answered_from_the_cache_without_a_container() {
    let dir = project(TWO);
    let engine = Arc::new(FakeEngine::new());
    let flags = RunFlags::default();
    let (first, _) = run_once(dir.path(), &flags, &engine, Stop::default(), false).await;
    assert!(
        first
            .report
            .results
            .iter()
            .all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&first.report)
    );
    let created = engine.created();
    assert!(created > 0);
    assert_eq!(engine.live(), 0, "the run's own session is ended");

    let pings = engine.pings();
    assert!(pings > 0, "a run that must run asks the engine first");
    let (second, seen) = run_once(dir.path(), &flags, &engine, Stop::default(), false).await;
    assert_eq!(
        engine.pings(),
        pings,
        "no session is started for a cached run"
    );
    assert_eq!(statuses(&second.report), both_cached());
    assert_eq!(engine.created(), created, "no container for a cached run");
    // The sink saw the run as it would a slow one: started, each result, the end.
    let events = lock(&seen.events).clone();
    assert!(matches!(
        events.first(),
        Some(Event::RunStarted { total: 2, .. })
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ScenarioFinished(r) if r.status == Status::Cached))
            .count(),
        2
    );
    assert!(*lock(&seen.finished));

    // --force runs them again, whatever the cache says.
    let forced = RunFlags {
        force: true,
        ..RunFlags::default()
    };
    let (third, _) = run_once(dir.path(), &forced, &engine, Stop::default(), false).await;
    assert!(
        third
            .report
            .results
            .iter()
            .all(|r| r.status == Status::Passed)
    );
    assert!(engine.created() > created);
}

/// A run of `root` on `engine` as `clnrm run` makes it: the last run's images asked
/// for before the files are read.
async fn run_prefetched(root: &Path, engine: &Arc<FakeEngine>) -> Ran {
    run_prefetched_with(root, engine, &RunFlags::default()).await
}

async fn run_prefetched_with(root: &Path, engine: &Arc<FakeEngine>, flags: &RunFlags) -> Ran {
    let (project, general) = crate::project::Project::discover(root);
    let prefetch = Prefetch::start(engine.clone(), &project.layout());
    let prepared = prepare_in(project, general, &[root.to_path_buf()], &[], true);
    let config = config(&prepared, flags);
    run(
        &prepared,
        &config,
        Host::Prefetched(engine.clone(), prefetch),
        Seen::default(),
        Stop::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_prefetched_run_is_answered_from_the_cache_until_an_image_is_rebuilt() {
    let dir = project(TWO);
    let engine = Arc::new(FakeEngine::new());
    // Nothing cached yet: the prefetch asks for nothing, the run for its image.
    let first = run_prefetched(dir.path(), &engine).await;
    assert!(
        first
            .report
            .results
            .iter()
            .all(|r| r.status == Status::Passed)
    );
    let (pings, created) = (engine.pings(), engine.created());

    let asked = engine.images_asked();
    let second = run_prefetched(dir.path(), &engine).await;
    assert_eq!(statuses(&second.report), both_cached());
    assert_eq!(
        engine.pings(),
        pings,
        "no session is started for a cached run"
    );
    assert_eq!(
        engine.images_asked(),
        asked + 1,
        "the image the cache names is asked for once, before the run"
    );

    // A rebuilt image is a new id: the prefetched answer is today's, not the cache's.
    engine.rebuild("img");
    let third = run_prefetched(dir.path(), &engine).await;
    assert!(
        third
            .report
            .results
            .iter()
            .all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&third.report)
    );
    assert!(engine.created() > created);

    // --force does not use it: everything runs.
    let forced = RunFlags {
        force: true,
        ..RunFlags::default()
    };
    let created = engine.created();
    let ran = run_prefetched_with(dir.path(), &engine, &forced).await;
    assert!(
        ran.report
            .results
            .iter()
            .all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&ran.report)
    );
    assert!(engine.created() > created);
}

#[tokio::test]
async fn images_the_cache_does_not_name_are_asked_for_by_the_run_itself() {
    let dir = project(TWO);
    let engine = Arc::new(FakeEngine::new());
    let first = run_prefetched(dir.path(), &engine).await;
    assert!(
        first
            .report
            .results
            .iter()
            .all(|r| r.status == Status::Passed)
    );
    // A cache file whose entries name no image (an older clnrm wrote no parts).
    let cache_dir = dir.path().join(".clnrm/cache");
    assert!(!crate::cache::images_named(&cache_dir).is_empty());
    let file = cache_dir.join("hashes.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    for entry in doc["entries"]
        .as_object_mut()
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        if let Some(e) = entry.as_object_mut() {
            e.remove("parts");
        }
    }
    std::fs::write(&file, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::cache::images_named(&cache_dir).is_empty(),
        "the prefetch asks for none"
    );
    let asked = engine.images_asked();
    let second = run_prefetched(dir.path(), &engine).await;
    assert_eq!(statuses(&second.report), both_cached());
    assert_eq!(
        engine.images_asked(),
        asked + 1,
        "the run asked for its image"
    );
}

#[tokio::test]
async fn a_cancelled_run_is_interrupted_removes_its_containers_and_keeps_no_outcome() {
    let dir = project("[[scenario]]\nname = \"slow\"\nrun = \"sleep 30\"\n");
    let engine = Arc::new(FakeEngine::new());
    let stop = Stop::default();
    let (ran, _) = run_once(dir.path(), &RunFlags::default(), &engine, stop, true).await;
    assert!(ran.report.interrupted);
    assert_eq!(ran.report.results.len(), 1);
    assert_ne!(ran.report.results[0].status, Status::Passed);
    assert_eq!(engine.live(), 0, "every container of the run is removed");
    // An interrupted scenario came to no outcome: `--failed` does not pick it.
    let recorded =
        outcomes::load(&dir.path().join(".clnrm/outcomes.json")).unwrap_or_else(|e| panic!("{e}"));
    assert!(recorded.is_empty(), "{recorded:?}");
    // Nor is its cut-short run a cached pass.
    let engine = Arc::new(FakeEngine::new());
    let flags = RunFlags::default();
    let (again, _) = run_once(dir.path(), &flags, &engine, Stop::default(), true).await;
    assert_ne!(again.report.results[0].status, Status::Cached);
}

#[tokio::test]
async fn a_failed_fixture_set_up_is_an_error_of_each_scenario_using_it() {
    let dir = project(
        "[[service.app.setup]]\nname = \"seed\"\ncommand = [\"false\"]\n\n\
         [[scenario]]\nname = \"uses it\"\nservice = \"app\"\nrun = \"echo hi\"\n",
    );
    let engine = Arc::new(FakeEngine::new());
    let (ran, _) = run_once(
        dir.path(),
        &RunFlags::default(),
        &engine,
        Stop::default(),
        false,
    )
    .await;
    let r = &ran.report.results[0];
    assert!(
        matches!(r.status, Status::Error | Status::Failed),
        "{:?}",
        statuses(&ran.report)
    );
    let said = format!("{:?} {:?}", r.message, r.steps);
    assert!(
        said.contains("seed"),
        "the failed set-up step is named: {said}"
    );
    assert_eq!(engine.live(), 0);
    // It failed: it is what `--failed` runs next.
    let recorded =
        outcomes::load(&dir.path().join(".clnrm/outcomes.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(recorded.get(&r.id.0), Some(&outcomes::Outcome::Passed));
    assert!(recorded.contains_key(&r.id.0));
}

#[tokio::test]
async fn failed_runs_only_the_scenarios_whose_last_outcome_failed() {
    let body = "[[scenario]]\nname = \"good\"\nrun = \"echo ok\"\n\n\
                [[scenario]]\nname = \"bad\"\nrun = \"false\"\n";
    let dir = project(body);
    let engine = Arc::new(FakeEngine::new());
    let (first, _) = run_once(
        dir.path(),
        &RunFlags::default(),
        &engine,
        Stop::default(),
        false,
    )
    .await;
    assert_eq!(
        statuses(&first.report)
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect::<Vec<_>>(),
        vec![
            ("good".to_owned(), Status::Passed),
            ("bad".to_owned(), Status::Failed)
        ]
    );
    let failed = RunFlags {
        failed: true,
        ..RunFlags::default()
    };
    let (rerun, _) = run_once(dir.path(), &failed, &engine, Stop::default(), false).await;
    let ran: Vec<(String, Status)> = rerun
        .report
        .results
        .iter()
        .filter(|r| !r.is_unselected())
        .map(|r| (r.name.clone(), r.status))
        .collect();
    assert_eq!(ran, vec![("bad".to_owned(), Status::Failed)]);

    // Fixed: it passes, and then nothing is left to run.
    let fixed = body.replace("run = \"false\"", "run = \"echo fixed\"");
    std::fs::write(
        dir.path().join("t.clnrm.toml"),
        format!(
            "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\n\n{fixed}"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (passing, _) = run_once(dir.path(), &failed, &engine, Stop::default(), false).await;
    let ran: Vec<(String, Status)> = passing
        .report
        .results
        .iter()
        .filter(|r| !r.is_unselected())
        .map(|r| (r.name.clone(), r.status))
        .collect();
    assert_eq!(ran, vec![("bad".to_owned(), Status::Passed)]);
    let created = engine.created();
    let (nothing, seen) = run_once(dir.path(), &failed, &engine, Stop::default(), false).await;
    assert!(nothing.report.results.iter().all(|r| r.is_unselected()));
    assert_eq!(engine.created(), created, "nothing to run starts nothing");
    assert!(
        lock(&seen.notes)
            .iter()
            .any(|w| w.contains("--failed") && w.contains("nothing runs")),
        "{:?}",
        lock(&seen.notes)
    );
}

/// The environment key of the first scenario of the project at `root`, planned as
/// `flags` say, in a run of its own.
fn env_key(root: &Path, flags: &RunFlags) -> String {
    let prepared = prepared(root);
    let config = config(&prepared, flags);
    let planned = plan::plan_run(&prepared, &config, crate::exec::RunOwner::current())
        .unwrap_or_else(|e| panic!("{e}"));
    planned.plan.scenarios[0].env.key.clone()
}

#[test]
fn environments_are_keyed_by_what_they_mount_with_the_cache_off_and_never_reused_when_unknowable() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    std::fs::create_dir_all(root.join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join("conf")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("conf/nginx.conf"), "a").unwrap_or_else(|e| panic!("{e}"));
    let file = |mount: &str| {
        format!(
            "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\nvolumes = [{{ host_path = \"{mount}\", container_path = \"/m\", read_only = true }}]\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n"
        )
    };
    std::fs::write(root.join("t.clnrm.toml"), file("conf")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        root.join(".clnrm/config.toml"),
        "[cache]\nenabled = false\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let flags = RunFlags::default();
    let before = env_key(root, &flags);
    assert_eq!(
        env_key(root, &flags),
        before,
        "the same content, the same key"
    );
    std::fs::write(root.join("conf/nginx.conf"), "b").unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        env_key(root, &flags),
        before,
        "the cache off, content still counts"
    );
    // A path whose content cannot be read (a link to itself): each run its own key.
    std::os::unix::fs::symlink(root.join("loop"), root.join("loop"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("t.clnrm.toml"), file("loop")).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(env_key(root, &flags), env_key(root, &flags));
}

#[tokio::test]
async fn a_fixture_mounting_what_cannot_be_read_is_snapshotted_for_its_run_only() {
    let dir = project(
        "[[service.app.setup]]\nname = \"seed\"\ncommand = [\"true\"]\n\n\
         [[scenario]]\nname = \"uses it\"\nservice = \"app\"\nrun = \"echo hi\"\n",
    );
    let engine = Arc::new(FakeEngine::new());
    let flags = RunFlags {
        force: true,
        ..RunFlags::default()
    };
    let (ran, _) = run_once(dir.path(), &flags, &engine, Stop::default(), false).await;
    assert_eq!(ran.report.results[0].status, Status::Passed);
    assert_eq!(
        engine.snapshot_images(),
        1,
        "a snapshot is kept for later runs"
    );
    // Now it mounts a link to itself, whose content cannot be read.
    let path = dir.path().join("t.clnrm.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(dir.path().join("loop"), dir.path().join("loop"))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = text.replace(
        "image = \"img\"\n",
        "image = \"img\"\nvolumes = [{ host_path = \"loop\", container_path = \"/m\", read_only = true }]\n",
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..2 {
        let (ran, _) = run_once(dir.path(), &flags, &engine, Stop::default(), false).await;
        assert_eq!(ran.report.results[0].status, Status::Passed);
        assert_eq!(
            engine.snapshot_images(),
            1,
            "the run's own snapshot is removed with its session"
        );
    }
}
