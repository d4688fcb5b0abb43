//! Environments as fast as a template database (issue 30): the same 10-test workload on
//! every side, 2 workers, whole process timed. Each test is the orders example's
//! "create then fetch an order" with a fresh PostgreSQL holding the 500,000-product
//! seed, the migration applied, the app, two HTTP requests and a row check.
//!
//! clnrm's side is `clnrm run --force --workers 2` of a file with 10 such scenarios:
//! cold (no fixture snapshot: `clnrm cache clear` first) and warm (the snapshot made
//! by an earlier run). With `-- --peers` the three peers of
//! `benches/environments/peers.sh` (testcontainers-python per test and with a template
//! database, a shared Compose stack) run too, one round each, interleaved with clnrm's.
//! Medians of `ROUNDS` rounds (`-- --rounds N`). The migration is a `fixture = true`
//! one-shot (run once into the database's fixture); `-- --plain` runs it in every
//! scenario instead, as the orders example does.
//!
//! Needs `clnrm/postgres:15` (scripts/example-images.sh) and builds
//! `clnrm/orders-app:bench` from `images/orders-app` once (the image every side uses).
//! Run with `cargo bench -p clnrm-cli --bench environments [-- --peers] [-- --rounds N] [-- --plain]`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PG: &str = "clnrm/postgres:15";
const APP: &str = "clnrm/orders-app:bench";
const TESTS: usize = 10;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workload as a clnrm file: the orders example's services, 10 scenarios.
fn workload(fixture: bool) -> String {
    let one_shot = if fixture {
        "# Run once into db's fixture snapshot: scenarios start db migrated.\nfixture = true\n"
    } else {
        ""
    };
    let mut text = format!(
        r#"[meta]
name = "orders-10"
version = "1"

[otel]
exporter = "otlp"

[service.db]
image = "{PG}"
env = {{ POSTGRES_DB = "orders" }}
health_check = {{ postgres = "postgres://postgres@db:5432/orders", interval_ms = 100, retries = 300 }}

[[service.db.setup]]
name = "seed products"
command = ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", "postgres", "-d", "orders", "-f", "/seed.sql"]

[service.migrate]
image = "{APP}"
args = ["python3", "-u", "/app/migrate.py"]
depends_on = {{ db = "healthy" }}
{one_shot}
[service.app]
image = "{APP}"
env = {{ OTEL_SERVICE_NAME = "orders-api" }}
depends_on = {{ db = "healthy", migrate = "completed" }}
health_check = {{ http = "http://app:8080/healthz", interval_ms = 100, retries = 200 }}
"#
    );
    for i in 0..TESTS {
        text.push_str(&format!(
            r#"
[[scenario]]
name = "order {i}"
service = "app"

[[scenario.steps]]
name = "create"
http = {{ method = "POST", url = "http://app:8080/orders", json = {{ product_id = 7, quantity = 3 }} }}
expected_status = 201
expected_json = {{ "$.id" = 1, "$.total_cents" = 2400, "$.quantity" = 3 }}
capture = {{ order_id = {{ json = "$.id" }} }}

[[scenario.steps]]
name = "fetch"
http = {{ url = "http://app:8080/orders/${{order_id}}" }}
expected_json = {{ "$.id" = 1 }}

[[scenario.steps]]
name = "stored"
service = "db"
command = ["psql", "-U", "postgres", "-d", "orders", "-tAc", "SELECT quantity, total_cents FROM orders WHERE id = ${{order_id}}"]
expected_output_regex = '^3\|2400$'
"#
        ));
    }
    text
}

fn clnrm(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("spawn clnrm")
}

/// `clnrm run --force --workers 2`: its wall time; every scenario must pass.
fn run(dir: &Path) -> Duration {
    let start = Instant::now();
    let out = clnrm(
        dir,
        &["run", "--force", "--workers", "2", "--format", "json"],
    );
    let took = start.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let passed = report["scenarios"]
        .as_array()
        .is_some_and(|s| s.len() == TESTS && s.iter().all(|s| s["status"] == "passed"));
    assert!(
        out.status.success() && passed,
        "clnrm run failed in {}: {report:#}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// One round of a peer side through peers.sh: its whole-process time.
fn peer(side: &str) -> Duration {
    let out = Command::new("bash")
        .arg(root().join("crates/clnrm-cli/benches/environments/peers.sh"))
        .args(["1", side])
        .output()
        .expect("spawn peers.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "peers.sh {side} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ms = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("round 1: {side} "))?
                .strip_suffix(" ms")
        })
        .and_then(|ms| ms.parse().ok())
        .expect("a round's time");
    Duration::from_millis(ms)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let peers = args.iter().any(|a| a == "--peers");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3usize);
    let present = |image: &str| {
        Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        present(PG),
        "{PG} is missing: run scripts/example-images.sh"
    );
    if !present(APP) {
        let built = Command::new("docker")
            .args(["build", "-q", "-t", APP])
            .arg(root().join("images/orders-app"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(built, "building {APP} from images/orders-app failed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path();
    std::fs::create_dir_all(project.join(".clnrm")).expect("project dir");
    std::fs::create_dir_all(project.join("tests")).expect("tests dir");
    let plain = args.iter().any(|a| a == "--plain");
    std::fs::write(project.join("tests/orders.clnrm.toml"), workload(!plain)).expect("test file");

    let mut took: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 1..=rounds {
        let cleared = clnrm(project, &["cache", "clear"]);
        assert!(cleared.status.success(), "clnrm cache clear failed");
        let mut sides: Vec<(&str, Duration)> = vec![("clnrm cold", run(project))];
        sides.push(("clnrm warm", run(project)));
        if peers {
            for side in ["per-test", "template", "compose"] {
                sides.push((side, peer(side)));
            }
        }
        for (side, time) in sides {
            println!("round {round}: {side} {} ms", time.as_millis());
            took.entry(side).or_default().push(time);
        }
    }
    let _ = clnrm(project, &["cache", "clear"]);
    let times: BTreeMap<&str, Duration> = took.into_iter().map(|(k, v)| (k, median(v))).collect();
    for (side, time) in &times {
        println!(
            "{side}: median {} ms over {rounds} rounds",
            time.as_millis()
        );
    }
    if let Some(template) = times.get("template") {
        let ratio = |side: &str| times[side].as_secs_f64() / template.as_secs_f64();
        println!(
            "clnrm warm / template database {:.2} (target <= 0.7); cold / template {:.2} (target <= 1.0)",
            ratio("clnrm warm"),
            ratio("clnrm cold")
        );
        let compose = times["compose"].as_secs_f64();
        println!(
            "clnrm warm / shared Compose stack {:.2} (target <= 1.0)",
            times["clnrm warm"].as_secs_f64() / compose
        );
    }
}
