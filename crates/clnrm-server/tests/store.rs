//! The store's behaviour, the same suite against real SQLite (a temporary file) and a
//! real PostgreSQL server (`scripts/postgres.sh`, started by `scripts/setup.sh`; each
//! test makes a database of its own): tokens, the queue with its leases, cancels,
//! events, history, counts and pages.

use clnrm_server::sql::Sql;
use clnrm_server::store::{
    Finished, Idempotency, Inserted, Renewal, ScenarioOutcome, Scope, Store,
};
use sqlx::{Connection, Executor};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A new, empty PostgreSQL database on the test server.
async fn postgres() -> String {
    let base = std::env::var("CLNRM_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into());
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} does not answer ({e}); start it with scripts/postgres.sh")
        });
    let name = format!("clnrm_test_{}", clnrm_server::random_hex(6));
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

async fn sqlite(dir: &tempfile::TempDir) -> Sql {
    Sql::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap()
}

fn finished(status: &str, scenario: &str) -> Finished {
    Finished {
        status: status.into(),
        summary: serde_json::json!({"passed": 1}),
        report: "{}".into(),
        scenarios: vec![ScenarioOutcome {
            scenario_id: scenario.into(),
            run_id: String::new(),
            status: "flaky".into(),
            duration_ms: 12,
            finished_ms: 0,
        }],
        spans: vec![(scenario.into(), "[{\"name\": \"x\"}]".into())],
        baseline: Some("{}".into()),
    }
}

async fn tokens_and_queue(db: Sql) {
    db.create_token("t", Scope::Run, "h1").await.unwrap();
    assert_eq!(db.token_scope("h1").await.unwrap(), Some(Scope::Run));
    assert_eq!(db.token_scope("h2").await.unwrap(), None);

    let opts = serde_json::json!({"workers": 2});
    for id in ["r1", "r2", "r3"] {
        db.insert_run(id, &opts, b"bundle", None).await.unwrap();
    }
    // Oldest first, one worker each.
    let a = db.claim("w1", 60_000).await.unwrap().unwrap();
    assert_eq!((a.id.as_str(), a.attempt, a.next_event), ("r1", 1, 1));
    assert_eq!(a.bundle, b"bundle");
    assert_eq!(a.options, opts);
    let held = |cancel| Renewal::Held { cancel };
    assert_eq!(db.renew("r1", "w1", 1, 60_000).await.unwrap(), held(false));
    assert_eq!(
        db.renew("r1", "w2", 1, 60_000).await.unwrap(),
        Renewal::Lost
    );
    let b = db.claim("w2", 1).await.unwrap().unwrap();
    assert_eq!(b.id, "r2");
    let first = db
        .append_event("r2", ("w2", 1), b.next_event, "{\"event\":\"run_started\"}")
        .await
        .unwrap();
    assert!(first);
    // A queued run cancels at once; a running one is asked to stop.
    let cancelled = |s: &str, changed| Some((s.to_owned(), changed));
    assert_eq!(db.cancel("r3").await.unwrap(), cancelled("cancelled", true));
    assert_eq!(
        db.cancel("r3").await.unwrap(),
        cancelled("cancelled", false)
    );
    assert_eq!(db.cancel("r1").await.unwrap(), cancelled("running", false));
    assert_eq!(db.renew("r1", "w1", 1, 60_000).await.unwrap(), held(true));
    assert_eq!(db.cancel("nope").await.unwrap(), None);
    // r2's lease ran out: another worker takes it over, events continue after the
    // first attempt's, and the first worker can neither renew nor finish it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let c = db.claim("w3", 60_000).await.unwrap().unwrap();
    assert_eq!((c.id.as_str(), c.attempt, c.next_event), ("r2", 2, 2));
    assert_eq!(
        db.renew("r2", "w2", 1, 60_000).await.unwrap(),
        Renewal::Lost
    );
    // The lost claim can store no more events, even with a free number.
    let late = db.append_event("r2", ("w2", 1), 9, "{}").await.unwrap();
    assert!(!late, "a lost claim stored an event");
    // The same worker name with an older attempt is not the holder either.
    let done = |w: &'static str, a: i64, status: &'static str| {
        let db = db.clone();
        async move {
            db.finish("r2", (w, a), &finished(status, "s"))
                .await
                .unwrap()
        }
    };
    assert!(!done("w3", 1, "passed").await);
    assert!(!done("w2", 1, "passed").await);
    assert!(done("w3", 2, "passed").await);
    let again = done("w3", 2, "failed").await;
    assert!(!again, "a run is finished once");
    assert!(
        db.claim("w4", 60_000).await.unwrap().is_none(),
        "r1 is held, r3 cancelled"
    );
    let r2 = db.run("r2").await.unwrap().unwrap();
    assert_eq!(
        (r2.status.as_str(), r2.attempts, r2.worker.as_deref()),
        ("passed", 2, Some("w3"))
    );
    assert_eq!(db.report("r2").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(db.report("r1").await.unwrap(), None);
    let h = db.history("s", 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].run_id.as_str(), h[0].status.as_str()),
        ("r2", "flaky")
    );
    let spans = db.spans("r2", "s").await.unwrap();
    assert_eq!(spans.as_deref(), Some("[{\"name\": \"x\"}]"));
    assert_eq!(db.spans("r2", "other").await.unwrap(), None);
    assert_eq!(db.baseline("r2").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(db.baseline("r1").await.unwrap(), None);
    let ev = db.events("r2", 0, 10).await.unwrap();
    assert_eq!(ev, vec![(1, "{\"event\":\"run_started\"}".to_owned())]);
    // A released run goes back to the queue.
    db.release("r1", "w1").await.unwrap();
    assert_eq!(db.claim("w5", 60_000).await.unwrap().unwrap().id, "r1");
    let counts = db.counts().await.unwrap();
    let want: Vec<(String, i64)> = vec![
        ("cancelled".into(), 1),
        ("passed".into(), 1),
        ("running".into(), 1),
    ];
    assert_eq!(counts, want);
    // Newest first, by pages.
    let page = db.runs(None, 2, None).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r3", "r2"]);
    let next = db.runs(None, 2, Some(page[1].seq)).await.unwrap();
    let ids: Vec<&str> = next.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1"]);
    assert_eq!(db.runs(Some("passed"), 10, None).await.unwrap().len(), 1);
    // Heartbeats and the duration histogram of /metrics.
    db.heartbeat("w1").await.unwrap();
    db.heartbeat("w1").await.unwrap();
    db.heartbeat("w2").await.unwrap();
    let now = clnrm_server::now_ms();
    assert_eq!(db.workers_alive(now - 60_000).await.unwrap(), 2);
    assert_eq!(db.workers_alive(now + 60_000).await.unwrap(), 0);
    assert_eq!(db.durations(&[10, 20]).await.unwrap(), (vec![0, 1], 1, 12));
}

/// Many workers claiming at once, each with a connection pool of its own (as separate
/// processes would be): every run once, none twice.
async fn claims_race(url: String) {
    let db = Arc::new(Sql::open(&url).await.unwrap());
    for i in 0..40 {
        db.insert_run(&format!("run{i:02}"), &serde_json::json!({}), b"x", None)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = Sql::open(&url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = db.claim(&format!("w{w}"), 60_000).await.unwrap() {
                mine.push(c.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 40, "{all:?}");
    assert_eq!(distinct.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_tokens_and_queue() {
    let dir = tempfile::tempdir().unwrap();
    tokens_and_queue(sqlite(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_tokens_and_queue() {
    tokens_and_queue(Sql::open(&postgres().await).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claims_race() {
    let dir = tempfile::tempdir().unwrap();
    claims_race(format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_race() {
    claims_race(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_database_is_migrated_once_by_processes_opening_it_at_once() {
    let url = postgres().await;
    let (a, b) = tokio::join!(Sql::open(&url), Sql::open(&url));
    a.unwrap()
        .create_token("x", Scope::Admin, "h")
        .await
        .unwrap();
    b.unwrap();
    let again = Sql::open(&url).await.unwrap();
    assert_eq!(again.token_scope("h").await.unwrap(), Some(Scope::Admin));
}

/// Keys: one run per key, however many submissions race with it; runs without a key
/// never collide; the queue's length.
async fn idempotency_keys(url: String) {
    let db = Arc::new(Sql::open(&url).await.unwrap());
    let key = Idempotency {
        key: "k".into(),
        request: "r1".into(),
    };
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (db, key) = (db.clone(), key.clone());
            tokio::spawn(async move {
                db.insert_run(&format!("run{i}"), &serde_json::json!({}), b"x", Some(&key))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut new, mut answered) = (Vec::new(), Vec::new());
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Inserted::New => new.push(format!("run{i}")),
            Inserted::Existing { id, request } => {
                assert_eq!(request, "r1");
                answered.push(id);
            }
        }
    }
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(answered.len(), 7);
    assert!(answered.iter().all(|id| *id == new[0]), "{answered:?}");
    assert_eq!(
        db.run_by_key("k").await.unwrap(),
        Some((new[0].clone(), "r1".to_owned()))
    );
    assert_eq!(db.run_by_key("other").await.unwrap(), None);
    for id in ["plain1", "plain2"] {
        let stored = db.insert_run(id, &serde_json::json!({}), b"x", None).await;
        assert_eq!(stored.unwrap(), Inserted::New);
    }
    assert_eq!(db.queued().await.unwrap(), 3);
    let run = db.claim("w", 60_000).await.unwrap().unwrap();
    assert_eq!(db.queued().await.unwrap(), 2);

    // An event sent again (its answer lost) is stored once; other data at its
    // number, or a claim that does not hold the run, is refused.
    let holder = ("w", run.attempt);
    assert!(db.append_event(&run.id, holder, 1, "a").await.unwrap());
    assert!(db.append_event(&run.id, holder, 1, "a").await.unwrap());
    assert!(!db.append_event(&run.id, holder, 1, "b").await.unwrap());
    assert!(
        !db.append_event(&run.id, ("x", run.attempt), 2, "c")
            .await
            .unwrap()
    );
    assert!(
        !db.append_event(&run.id, ("w", run.attempt + 1), 2, "c")
            .await
            .unwrap()
    );
    assert_eq!(
        db.events(&run.id, 0, 10).await.unwrap(),
        [(1, "a".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    idempotency_keys(format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_idempotency_keys() {
    idempotency_keys(postgres().await).await;
}
