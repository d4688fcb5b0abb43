//! The examples whose apps clnrm builds from source, end to end, as a user runs them
//! (each copied into a project of its own with the directories it builds from; base
//! images and wheels from `scripts/example-images.sh`, which the set-up command runs):
//! - the app-plus-database example (`examples/orders-postgres.clnrm.toml`): the real
//!   PostgreSQL image, the Python app (built from `images/orders-app`) traced by the
//!   official OpenTelemetry SDK with its default batch settings, the migration
//!   one-shot, the fixture snapshot of the seeded database, HTTP steps (create → the
//!   id captured by JSONPath → fetch by id → `${order_id}` in a query in the database
//!   container), the app's spans joined to clnrm's by `traceparent` (its expectations
//!   say `parent = "clnrm.http create"`), and the baseline committed in
//!   `.clnrm/trace.json`;
//! - the develop example (`examples/web-develop.clnrm.toml`): a Python app behind
//!   nginx, both built from source, reached through the proxy; in `clnrm watch`, a
//!   one-line change of the app's code is synced into its image, not built.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;
#[path = "common/watching.rs"]
mod watching;

use common::{RemoveBuilt, clnrm, copy_context, project, repo_root};
use runs::{run_json, scenario};
use watching::Watching;

const EXAMPLE: &str = "examples/orders-postgres.clnrm.toml";
const DEVELOP: &str = "examples/web-develop.clnrm.toml";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_orders_example_passes_against_postgres_and_the_sdk_and_its_baseline() {
    let baseline = read(".clnrm/trace.json");
    let dir = project(&[(EXAMPLE, &read(EXAMPLE)), (".clnrm/trace.json", &baseline)]);
    copy_context("images/orders-app", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", EXAMPLE]);
    run.assert_passed();
    for name in [
        "create then fetch an order",
        "an unknown order is not found",
    ] {
        let sc = scenario(&run, name);
        assert_eq!(sc["status"], "passed", "{sc:#}");
        assert!(
            sc["spans"].as_u64().unwrap_or(0) >= 3,
            "the SDK's spans arrived: {sc:#}"
        );
    }
    // One snapshot of the seeded database served both scenarios.
    let stats = clnrm(dir.path()).args(["cache", "stats"]).output().unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    assert!(
        stats.contains("snapshots:  1") && stats.contains("service \"db\" from clnrm/postgres:15"),
        "{stats}"
    );

    // The baseline is compared: one that remembers another status code fails the run.
    let changed = baseline.replacen(
        "\"http.response.status_code\": 201",
        "\"http.response.status_code\": 200",
        1,
    );
    assert_ne!(changed, baseline, "the baseline holds the create span");
    std::fs::write(dir.path().join(".clnrm/trace.json"), changed).unwrap();
    let run = run_json(dir.path(), &["--workers", "2", "--force", EXAMPLE]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let sc = scenario(&run, "create then fetch an order");
    assert_eq!(sc["reason"], "diff", "{sc:#}");
    assert_eq!(
        scenario(&run, "an unknown order is not found")["status"],
        "passed"
    );

    let cleared = clnrm(dir.path()).args(["cache", "clear"]).output().unwrap();
    assert_eq!(cleared.status.code(), Some(0));
}

#[test]
fn the_develop_example_passes_through_its_proxy_and_a_change_of_its_code_is_synced_in_watch() {
    let dir = project(&[(DEVELOP, &read(DEVELOP))]);
    copy_context("examples/web-develop/app", dir.path());
    copy_context("examples/web-develop/proxy", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", DEVELOP]);
    run.assert_passed();
    for name in ["greets through the proxy", "a missing name is refused"] {
        let sc = scenario(&run, name);
        assert_eq!(sc["status"], "passed", "{sc:#}");
        assert!(
            sc["spans"].as_u64().unwrap_or(0) >= 2,
            "the app's spans arrived: {sc:#}"
        );
    }

    // The first cycle runs what the run left cached, so that the first change has an
    // image of a cycle to go into: a change of the cache's key.
    let w = Watching::start(dir.path(), &["--force", DEVELOP]);
    w.wait_for("watching for changes", 1);
    assert_eq!(w.text().matches("   PASS [").count(), 2, "{}", w.text());
    // One line of the app's code: copied into the last image, no build; the greeting
    // the scenario expects is no longer the one it gets.
    let code = dir.path().join("examples/web-develop/app/src/app.py");
    let text = std::fs::read_to_string(&code).unwrap_or_else(|e| panic!("{e}"));
    let changed = text.replacen("GREETING = \"Hello\"", "GREETING = \"Howdy\"", 1);
    assert_ne!(changed, text, "the app sets its greeting in one line");
    std::fs::write(&code, changed).unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 2);
    let cycle = w.last_cycle();
    assert!(cycle.contains("Synced 1 file into clnrm-build/"), "{cycle}");
    assert!(!cycle.contains("Built "), "{cycle}");
    assert!(cycle.contains("\"Howdy, clnrm!\""), "{cycle}");
    assert_eq!(cycle.matches("   FAIL [").count(), 1, "{cycle}");
    // Mended: it passes again.
    std::fs::write(&code, text).unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 3);
    let cycle = w.last_cycle();
    assert_eq!(cycle.matches("   PASS [").count(), 2, "{cycle}");
}
