//! The dispatcher, the pool's accounting and the engine deadlines, against the
//! in-memory engine: scheduling, fail-fast, interrupts, a second interrupt, reuse
//! and removal of every container.

use super::*;
use crate::backend::fake::FakeEngine;
use crate::backend::{ContainerEngine, Deadlines, EngineError};

/// A plan of the scenarios `body` adds to a file with one agent service.
fn plan_of(body: &str) -> Plan {
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\n\n{body}"
    );
    crate::plan::tests_support::planned(&text)
}

/// `n` scenarios `s0`…, each running `run`, priorities falling in file order.
fn scenarios(n: usize, run: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[scenario]]\nname = \"s{i}\"\npriority = {}\nrun = \"{}\"\n\n",
                n - i,
                run(i)
            )
        })
        .collect()
}

fn options(workers: usize, fail_fast: bool) -> RunOptions {
    RunOptions {
        workers,
        fail_fast,
        owner: RunOwner::current(),
        artifacts: None,
        baseline: None,
        inputs: None,
        force: false,
        retries: 0,
    }
}

/// The options of a session for runs with `opts`: 20 containers, a warm pool.
fn session_options(opts: &RunOptions) -> SessionOptions {
    SessionOptions {
        workers: opts.workers,
        max_containers: 20,
        owner: opts.owner.clone(),
        warm_pool: true,
    }
}

/// Runs `plan` in a fresh session of `engine`, stopping as `stop` says (driven by
/// `during`, which sees the events); the outcome, after the session is shut down.
async fn run_with<E: crate::backend::ContainerEngine>(
    engine: Arc<E>,
    plan: Plan,
    opts: &RunOptions,
    stop: Stop,
    during: impl FnOnce(tokio::sync::mpsc::UnboundedReceiver<Event>) -> tokio::task::JoinHandle<()>,
) -> RunOutcome {
    let session = Session::start(engine, &session_options(opts), false, false).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = during(rx);
    let outcome = session.run(plan, opts, None, tx, stop).await;
    let _ = watcher.await;
    session.shutdown().await;
    outcome
}

/// Reads the events to their end.
fn drain(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while rx.recv().await.is_some() {} })
}

/// Cancels `token` once a scenario has started.
fn on_start(
    token: CancellationToken,
) -> impl FnOnce(tokio::sync::mpsc::UnboundedReceiver<Event>) -> tokio::task::JoinHandle<()> {
    move |mut rx| {
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if matches!(e, Event::ScenarioStarted { .. }) {
                    token.cancel();
                }
            }
        })
    }
}

fn statuses(outcome: &RunOutcome) -> Vec<(String, Status, Option<Reason>)> {
    outcome
        .results
        .iter()
        .map(|r| (r.name.clone(), r.status, r.reason))
        .collect()
}

#[tokio::test]
async fn every_scenario_gets_one_result_in_plan_order() {
    let engine = Arc::new(FakeEngine::new());
    let plan = plan_of(&scenarios(10, |i| format!("echo {i}")));
    let outcome = run_with(
        engine.clone(),
        plan,
        &options(3, false),
        Stop::default(),
        drain,
    )
    .await;
    let names: Vec<String> = outcome.results.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert!(
        outcome.results.iter().all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&outcome)
    );
    assert_eq!(outcome.results[4].steps[0].stdout, "4\n");
    assert!(!outcome.interrupted);
}

/// Runs three scenarios of a file with two services (a network of the scenario's
/// own) in a session of `engine` where clnrm runs in container `cccc…`; the session,
/// not shut down yet.
async fn run_in_a_container(engine: &Arc<FakeEngine>, keep_warm: bool) -> Session<FakeEngine> {
    let me = crate::backend::ContainerView {
        id: "c".repeat(64),
        networks: vec!["bridge".into()],
        ..Default::default()
    };
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\n\n\
         [service.db]\nimage = \"img\"\n\n{}",
        scenarios(3, |i| format!("echo {i}"))
    );
    let plan = crate::plan::tests_support::planned(&text);
    let opts = options(2, false);
    let vantage = super::vantage::Vantage::inside(me);
    let session = Session::start_at(
        engine.clone(),
        &session_options(&opts),
        false,
        keep_warm,
        vantage,
    )
    .await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = drain(rx);
    let outcome = session.run(plan, &opts, None, tx, Stop::default()).await;
    let _ = watcher.await;
    assert!(
        outcome.results.iter().all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&outcome)
    );
    session
}

#[tokio::test]
async fn in_a_container_clnrm_joins_each_private_network_and_leaves_it_before_it_is_removed() {
    // Kept warm: the environment lives until the session ends.
    let engine = Arc::new(FakeEngine::new());
    let session = run_in_a_container(&engine, true).await;
    let joined = engine.connected();
    assert!(
        !joined.is_empty()
            && joined
                .iter()
                .all(|(n, c)| n.starts_with("clnrm-") && *c == "c".repeat(64)),
        "{joined:?}"
    );
    session.shutdown().await;
    // The fake, as an engine, keeps a network something is connected to.
    assert_eq!(engine.connected(), Vec::<(String, String)>::new());
    assert_eq!((engine.live(), engine.networks()), (0, 0));

    // Not kept warm: each environment is removed after its scenarios; its network,
    // empty, serves the next one, and is left before it is removed at the end.
    let engine = Arc::new(FakeEngine::new());
    let session = run_in_a_container(&engine, false).await;
    assert!(engine.joins() > 0);
    session.shutdown().await;
    assert_eq!(engine.connected(), Vec::<(String, String)>::new());
    assert_eq!((engine.live(), engine.networks()), (0, 0));
}

#[tokio::test]
async fn environments_are_reused_and_every_container_is_removed_at_the_end() {
    let engine = Arc::new(FakeEngine::new());
    let plan = plan_of(&scenarios(12, |i| format!("echo {i}")));
    let outcome = run_with(
        engine.clone(),
        plan,
        &options(2, false),
        Stop::default(),
        drain,
    )
    .await;
    assert!(outcome.results.iter().all(|r| r.status == Status::Passed));
    let created = engine.created();
    // Two workers, one spare ahead, and a fresh one while a used one is checked:
    // far fewer than one container per scenario.
    assert!(created <= 6, "{created} containers for 12 scenarios");
    assert_eq!(engine.live(), 0, "the session removed them all");
    assert_eq!(engine.removed(), created);
}

#[tokio::test]
async fn the_network_of_a_removed_environment_serves_the_next_one() {
    // Two services (a network of each environment's own), neither an agent: each
    // environment is removed after its scenario.
    let engine = Arc::new(FakeEngine::new());
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\nargs = [\"serve\"]\n\n\
         [service.db]\nimage = \"img\"\nargs = [\"db\"]\n\n{}",
        scenarios(8, |i| format!("echo {i}"))
    );
    let plan = crate::plan::tests_support::planned(&text);
    let outcome = run_with(
        engine.clone(),
        plan,
        &options(1, false),
        Stop::default(),
        drain,
    )
    .await;
    assert!(
        outcome.results.iter().all(|r| r.status == Status::Passed),
        "{:?}",
        statuses(&outcome)
    );
    // Each scenario had fresh containers (some environments made ahead went
    // unused); far fewer networks were made than environments.
    let environments = engine.created() / 2;
    let made = engine.networks_made();
    assert!(environments >= 8, "{environments} environments");
    assert!(made <= 4, "{made} networks for {environments} environments");
    assert_eq!(
        (engine.live(), engine.networks()),
        (0, 0),
        "all removed at the end"
    );
}

#[tokio::test]
async fn fail_fast_stops_dispatching_and_lets_running_scenarios_finish() {
    let engine = Arc::new(FakeEngine::new());
    let plan = plan_of(&scenarios(5, |i| {
        if i == 0 {
            "false".into()
        } else {
            format!("echo {i}")
        }
    }));
    let outcome = run_with(engine, plan, &options(1, true), Stop::default(), drain).await;
    let s = statuses(&outcome);
    assert_eq!(s[0].1, Status::Failed, "{s:?}");
    assert!(
        s[1..]
            .iter()
            .all(|(_, st, r)| *st == Status::Skipped && *r == Some(Reason::FailFast)),
        "{s:?}"
    );
    assert!(!outcome.interrupted);
}

#[tokio::test]
async fn an_interrupt_skips_what_waits_and_interrupts_what_runs() {
    let engine = Arc::new(FakeEngine::new());
    let plan = plan_of(&scenarios(6, |_| "sleep 30".into()));
    let stop = Stop::default();
    let started = std::time::Instant::now();
    let outcome = run_with(
        engine.clone(),
        plan,
        &options(2, false),
        stop.clone(),
        on_start(stop.interrupt.clone()),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "steps were interrupted"
    );
    assert!(outcome.interrupted);
    assert!(
        outcome
            .results
            .iter()
            .all(|r| r.status == Status::Skipped && r.reason == Some(Reason::Interrupted)),
        "{:?}",
        statuses(&outcome)
    );
    assert_eq!(engine.live(), 0);
}

#[tokio::test]
async fn a_second_interrupt_stops_waiting_and_still_reports_every_scenario() {
    let engine = Arc::new(FakeEngine::new());
    let plan = plan_of(&scenarios(3, |_| "sleep 30".into()));
    let stop = Stop::default();
    let started = std::time::Instant::now();
    // Force alone: whatever a worker waits for, the dispatcher stops waiting.
    let outcome = run_with(
        engine,
        plan,
        &options(3, false),
        stop.clone(),
        on_start(stop.force.clone()),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(outcome.interrupted);
    assert_eq!(outcome.results.len(), 3);
    assert!(
        outcome
            .results
            .iter()
            .all(|r| r.status == Status::Skipped && r.reason == Some(Reason::Interrupted)),
        "{:?}",
        statuses(&outcome)
    );
}

#[tokio::test]
async fn a_missing_image_is_an_error_for_its_scenarios_only() {
    let engine = Arc::new(FakeEngine::new());
    let body = format!(
        "{}[service.other]\nimage = \"missing-img\"\n\n[[scenario]]\nname = \"needs-missing\"\nservice = \"other\"\nrun = \"echo x\"\n",
        scenarios(2, |i| format!("echo {i}")).replace("run =", "service = \"app\"\nrun =")
    );
    let outcome = run_with(
        engine,
        plan_of(&body),
        &options(2, false),
        Stop::default(),
        drain,
    )
    .await;
    let s = statuses(&outcome);
    // Every service of the file starts for every scenario, so all need the image.
    assert!(
        s.iter()
            .all(|(_, st, r)| *st == Status::Error && *r == Some(Reason::Image)),
        "{s:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_engine_fails_one_call_at_its_deadline_and_the_next_at_once() {
    let fake = FakeEngine::new();
    let engine = Deadlines::new(
        fake.clone(),
        Duration::from_secs(30),
        Duration::from_secs(600),
    );
    assert!(engine.ping().await.is_ok());
    fake.stall(true);
    let first = engine.list("x").await;
    assert!(
        matches!(&first, Err(EngineError::Timeout { call, .. }) if call == "list containers"),
        "{first:?}"
    );
    let at = tokio::time::Instant::now();
    let second = engine.remove("c").await;
    assert!(
        matches!(second, Err(EngineError::Stalled { .. })),
        "{second:?}"
    );
    assert_eq!(at.elapsed(), Duration::ZERO, "no second wait");
    // The engine answers again: the probe notices within a second or two.
    fake.stall(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(engine.ping().await.is_ok());
}

/// A context in a fresh directory whose Dockerfile copies `src/` last, and a file
/// whose service `app` is built from it (with `service`'s lines added) and whose one
/// scenario `s` runs `echo x`.
fn built_from_source(service: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("src")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCMD [\"sh\"]\nCOPY src/ /app/src/\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("src/a.txt"), "1").unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nbuild = \"{}\"\n{service}\n[[scenario]]\nname = \"s\"\nservice = \"app\"\nrun = \"echo x\"\n",
        dir.path().display()
    );
    (dir, text)
}

/// A fake engine, one worker's options, and a session on it that remembers builds
/// (as `clnrm watch`'s does).
async fn watching_session() -> (Arc<FakeEngine>, RunOptions, Session<FakeEngine>) {
    let engine = Arc::new(FakeEngine::new());
    let opts = options(1, false);
    let session = Session::start(engine.clone(), &session_options(&opts), false, false)
        .await
        .remember_builds();
    (engine, opts, session)
}

/// `text` planned with its builds' sources read, its project's root `root` (where
/// what is built is recorded).
fn planned_with_builds(text: &str, root: &std::path::Path) -> Plan {
    let mut p = crate::plan::tests_support::planned(text);
    for sc in &mut p.scenarios {
        for svc in &mut Arc::make_mut(&mut sc.env).services {
            if let Some(b) = svc.build.as_mut() {
                Arc::make_mut(b).root = root.display().to_string();
            }
        }
    }
    let mut index = crate::inputs::StatIndex::in_memory();
    crate::plan::attach_builds(&mut p, &mut index, &[]);
    p
}

/// Runs `plan` in `session` (which remembers builds); the statuses, and each image
/// event as (files synced, whether ahead of a build).
async fn run_built(
    session: &Session<FakeEngine>,
    plan: Plan,
    opts: &RunOptions,
) -> (
    Vec<(String, Status, Option<Reason>)>,
    Vec<(Option<usize>, bool)>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = session.run(plan, opts, None, tx, Stop::default()).await;
    let mut built = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Event::ImageBuilt { synced, ahead, .. } = e {
            built.push((synced, ahead.is_some()));
        }
    }
    (statuses(&outcome), built)
}

/// A watching session's runs of a file whose service is built from source, whose
/// Dockerfile copies `src/` last: the first builds; a change of `src/` then starts
/// the scenario on the last image with the file put in while the build is made, and
/// the verdict waits for that build (its failure is the verdict).
#[tokio::test]
async fn a_rebuild_ahead_of_its_build_waits_for_it_and_a_failed_build_is_the_verdict() {
    let (dir, text) = built_from_source("");
    let write = |rel: &str, body: &str| {
        std::fs::write(dir.path().join(rel), body).unwrap_or_else(|e| panic!("{e}"));
    };
    let plan = || planned_with_builds(&text, dir.path());
    let (engine, opts, session) = watching_session().await;
    let run = |plan: Plan| run_built(&session, plan, &opts);
    let (s, built) = run(plan()).await;
    assert_eq!(s, vec![("s".to_owned(), Status::Passed, None)]);
    assert_eq!(built, vec![(None, false)], "the first run builds");
    assert_eq!(engine.puts(), 0);

    write("src/a.txt", "2");
    let (s, built) = run(plan()).await;
    assert_eq!(s, vec![("s".to_owned(), Status::Passed, None)]);
    assert_eq!(
        built,
        vec![(Some(1), true), (None, false)],
        "put into the last image, then built"
    );
    assert_eq!(engine.builds(), 2);
    assert_eq!(
        engine.puts(),
        1,
        "the file put into the scenario's container"
    );

    // The next save starts from the image just built (one file changed since).
    write("src/b.txt", "new");
    engine.break_builds();
    let (s, built) = run(plan()).await;
    assert_eq!(built, vec![(Some(1), true)], "{built:?}");
    assert_eq!(
        s,
        vec![("s".to_owned(), Status::Error, Some(Reason::Build))]
    );
    session.shutdown().await;
}

/// A scenario whose environment fails to start on an image put ahead of its build
/// still waits for the build: a failed build is its verdict.
#[tokio::test]
async fn a_failed_start_ahead_of_a_failed_build_is_the_build_s_error() {
    let (dir, text) =
        built_from_source("health_check = { cmd = [\"false\"], interval_ms = 10, retries = 1 }\n");
    let (engine, opts, session) = watching_session().await;
    let (s, _) = run_built(&session, planned_with_builds(&text, dir.path()), &opts).await;
    assert_eq!(
        s,
        vec![("s".to_owned(), Status::Failed, Some(Reason::Unhealthy))]
    );
    std::fs::write(dir.path().join("src/a.txt"), "2").unwrap_or_else(|e| panic!("{e}"));
    let (s, built) = run_built(&session, planned_with_builds(&text, dir.path()), &opts).await;
    assert_eq!(built, vec![(Some(1), true), (None, false)]);
    assert_eq!(
        s,
        vec![("s".to_owned(), Status::Failed, Some(Reason::Unhealthy))]
    );
    std::fs::write(dir.path().join("src/a.txt"), "3").unwrap_or_else(|e| panic!("{e}"));
    engine.break_builds();
    let (s, built) = run_built(&session, planned_with_builds(&text, dir.path()), &opts).await;
    assert_eq!(built, vec![(Some(1), true)]);
    assert_eq!(
        s,
        vec![("s".to_owned(), Status::Error, Some(Reason::Build))]
    );
    session.shutdown().await;
}

/// The verdict of a scenario put ahead of its build comes only once the build is made.
#[tokio::test]
async fn a_verdict_ahead_of_its_build_comes_only_once_the_build_is_made() {
    let (dir, text) = built_from_source("");
    let (engine, opts, session) = watching_session().await;
    let (s, _) = run_built(&session, planned_with_builds(&text, dir.path()), &opts).await;
    assert_eq!(s, vec![("s".to_owned(), Status::Passed, None)]);
    std::fs::write(dir.path().join("src/a.txt"), "2").unwrap_or_else(|e| panic!("{e}"));
    engine.hold_builds();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = session.run(
        planned_with_builds(&text, dir.path()),
        &opts,
        None,
        tx,
        Stop::default(),
    );
    let watch = async {
        let mut seen = Vec::new();
        let mut released = false;
        while let Some(e) = rx.recv().await {
            let name = match &e {
                Event::ScenarioStarted { .. } => "started",
                Event::ScenarioFinished(_) => "finished",
                Event::ImageBuilt { ahead: None, .. } => "built",
                _ => continue,
            };
            seen.push(name);
            if name == "started" && !released {
                // Its steps take no time here: were the verdict not waiting for the
                // build, it would come now.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while let Ok(e) = rx.try_recv() {
                    if matches!(e, Event::ScenarioFinished(_)) {
                        seen.push("finished");
                    }
                }
                engine.release_builds();
                released = true;
            }
        }
        seen
    };
    let (outcome, seen) = tokio::join!(run, watch);
    assert_eq!(seen, vec!["started", "built", "finished"]);
    assert_eq!(
        statuses(&outcome),
        vec![("s".to_owned(), Status::Passed, None)]
    );
    session.shutdown().await;
}

/// A session that makes networks ahead (`clnrm watch`) makes them after a run whose
/// environments have networks of their own, so that the next run's first
/// environments (another key: a save changed it) need not wait for theirs; after
/// one whose environments have none, it makes none.
#[tokio::test]
async fn a_session_making_networks_ahead_has_them_ready_for_the_next_run_s_environments() {
    let plan = |services: bool| {
        let extra = if services {
            "[service.db]\nimage = \"img\"\n\n"
        } else {
            ""
        };
        plan_of(&format!(
            "{extra}{}",
            scenarios(1, |i| format!("echo {i}")).replace("run =", "service = \"app\"\nrun =")
        ))
    };
    // Live networks once the run's background work is done (the environment kept
    // warm has one when its services have a network).
    let settled = |ahead: bool, services: bool| async move {
        let engine = Arc::new(FakeEngine::new());
        let opts = options(1, false);
        let mut session =
            Session::start(engine.clone(), &session_options(&opts), false, true).await;
        if ahead {
            session = session.networks_ahead();
        }
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outcome = session
            .run(plan(services), &opts, None, tx, Stop::default())
            .await;
        assert!(
            statuses(&outcome)
                .iter()
                .all(|(_, s, _)| *s == Status::Passed)
        );
        let started = std::time::Instant::now();
        while engine.networks() < 2 && started.elapsed() < Duration::from_millis(500) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let live = engine.networks();
        session.shutdown().await;
        assert_eq!(engine.networks(), 0, "every network removed at shutdown");
        live
    };
    assert_eq!(
        settled(false, true).await,
        1,
        "the warm environment's alone"
    );
    assert!(settled(true, true).await >= 2, "and spare ones");
    assert_eq!(
        settled(true, false).await,
        0,
        "no network needed, none made"
    );
}

#[tokio::test]
async fn once_the_queue_is_empty_a_run_s_networks_go_without_waiting_for_its_end() {
    // Three scenarios one after another, each in an environment with a network of its
    // own (service `db` besides `app`), nothing kept warm.
    let plan = plan_of(&format!(
        "[service.db]\nimage = \"img\"\n\n{}",
        scenarios(3, |i| format!("echo {i}")).replace("run =", "service = \"app\"\nrun =")
    ));
    let engine = Arc::new(FakeEngine::new());
    let opts = options(1, false);
    let session = Session::start(engine.clone(), &session_options(&opts), false, false).await;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = session.run(plan, &opts, None, tx, Stop::default()).await;
    assert!(
        statuses(&outcome)
            .iter()
            .all(|(_, s, _)| *s == Status::Passed)
    );
    assert!(engine.networks_made() >= 1, "the environments had networks");
    // Before the session ends: the spare and the last environment's are removed in
    // the background (they used to wait for shutdown).
    let started = std::time::Instant::now();
    while engine.networks() > 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        engine.networks(),
        0,
        "no network left for shutdown to remove"
    );
    session.shutdown().await;
}

#[tokio::test]
async fn a_panic_while_preparing_is_the_scenario_s_error_not_a_hang() {
    let plan = plan_of(&scenarios(2, |i| format!("echo {i}")));
    let engine = Arc::new(FakeEngine::new());
    engine.panic_on_create();
    let opts = options(2, false);
    let session = Session::start(engine.clone(), &session_options(&opts), false, false).await;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        session.run(plan, &opts, None, tx, Stop::default()),
    )
    .await
    .expect("the run ends");
    for r in &outcome.results {
        assert_eq!(r.status, Status::Error, "{r:?}");
        assert!(
            r.message
                .as_deref()
                .is_some_and(|m| m.contains("a defect in clnrm")),
            "{r:?}"
        );
    }
    session.shutdown().await;
}
