//! The app-plus-database example (`examples/orders-postgres.clnrm.toml`) end to end,
//! as a user runs it: the real PostgreSQL image, the Python app traced by the official
//! OpenTelemetry SDK with its default batch settings, the migration one-shot, the
//! fixture snapshot of the seeded database, HTTP steps (create → the id captured by
//! JSONPath → fetch by id → `${order_id}` in a query in the database container), the
//! app's spans joined to clnrm's by `traceparent` (its expectations say
//! `parent = "clnrm.http create"`), and the baseline committed in `.clnrm/trace.json`
//! (images from `scripts/example-images.sh`, which the set-up command runs).
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use runs::{run_json, scenario};

const EXAMPLE: &str = "examples/orders-postgres.clnrm.toml";

#[test]
fn the_orders_example_passes_against_postgres_and_the_sdk_and_its_baseline() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let baseline = read(".clnrm/trace.json");
    let dir = project(&[(EXAMPLE, &read(EXAMPLE)), (".clnrm/trace.json", &baseline)]);
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
