//! Fixture snapshots (SPEC §7.3) against the real engine and the example image
//! `clnrm/postgres:15` (built by `scripts/example-images.sh`), whole process:
//! 1. the time a scenario waits for its environment (its `setup_ms`: until its first
//!    step can run) when PostgreSQL starts from a snapshot of an initialised and
//!    seeded database, against a bare start of the image (initdb included);
//!    target: ≤ 1.5×;
//! 2. 10 such scenarios at 2 workers with the snapshot built, against the same 10
//!    doing the seed in their own first step; target: ≥ 3× faster.
//!
//! Also prints what the set-up costs when it is not snapshotted (the bare start plus
//! the seed step), which must be ≥ 5 s for the comparison to mean something.
//! Run with `cargo bench -p clnrm-cli --bench snapshots`. Medians of `ROUNDS` rounds.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "clnrm/postgres:15";
const ROUNDS: usize = 3;
const SEED: &str = r#"["psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", "postgres", "-d", "orders", "-f", "/seed.sql"]"#;
const COUNT: &str =
    r#"["psql", "-U", "postgres", "-d", "orders", "-tAc", "SELECT count(*) FROM products"]"#;
const CONNECT: &str = r#"["psql", "-U", "postgres", "-d", "orders", "-tAc", "SELECT 1"]"#;

/// How a bench project's database gets its products.
#[derive(Clone, Copy, PartialEq)]
enum Seed {
    /// It does not: a bare start.
    Never,
    /// Once, by `[[service.db.setup]]`: every scenario starts from the snapshot.
    Snapshot,
    /// In each scenario's first step.
    InSteps,
}

/// A project with one file: service `db`, and `count` scenarios that count the
/// products (seeded as `seed` says).
fn project(dir: &Path, seed: Seed, count: usize) {
    let mut text = format!(
        "[meta]\nname = \"db\"\nversion = \"1\"\n\n[service.db]\nimage = \"{IMAGE}\"\nenv = {{ POSTGRES_DB = \"orders\" }}\nhealth_check = {{ cmd = [\"pg_isready\", \"-h\", \"localhost\", \"-U\", \"postgres\", \"-d\", \"orders\"], interval_ms = 100, retries = 600 }}\n"
    );
    if seed == Seed::Snapshot {
        text.push_str(&format!(
            "\n[[service.db.setup]]\nname = \"seed\"\ncommand = {SEED}\n"
        ));
    }
    for i in 0..count {
        text.push_str(&format!("\n[[scenario]]\nname = \"s{i}\"\n"));
        if seed == Seed::InSteps {
            text.push_str(&format!(
                "\n[[scenario.steps]]\nname = \"seed\"\ncommand = {SEED}\n"
            ));
        }
        let (step, command) = match seed {
            Seed::Never => ("connect", CONNECT),
            _ => ("count", COUNT),
        };
        text.push_str(&format!(
            "\n[[scenario.steps]]\nname = \"{step}\"\ncommand = {command}\nexpected_output_regex = '^[1-9][0-9]*$'\n"
        ));
    }
    std::fs::create_dir_all(dir.join(".clnrm")).expect("project dir");
    std::fs::create_dir_all(dir.join("tests")).expect("tests dir");
    std::fs::write(dir.join("tests/db.clnrm.toml"), text).expect("test file");
}

/// `clnrm run --force --format json ARGS` in `dir`: its wall time and report.
fn run(dir: &Path, args: &[&str]) -> (Duration, Value) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["run", "--force", "--format", "json"])
        .args(args)
        .output()
        .expect("spawn clnrm");
    let took = start.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(
        out.status.success(),
        "clnrm run failed in {}: {report:#}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (took, report)
}

fn ms(report: &Value, scenario: usize, key: &str) -> Duration {
    Duration::from_millis(report["scenarios"][scenario][key].as_u64().expect(key))
}

fn step_ms(report: &Value, step: usize) -> Duration {
    Duration::from_millis(
        report["scenarios"][0]["steps"][step]["duration_ms"]
            .as_u64()
            .expect("a step duration"),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(present, "{IMAGE} is missing: run scripts/example-images.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |name: &str, seed: Seed, count: usize| {
        let path = dir.path().join(name);
        project(&path, seed, count);
        path
    };
    let bare1 = at("bare1", Seed::Never, 1);
    let seed1 = at("seed1", Seed::InSteps, 1);
    let snap1 = at("snap1", Seed::Snapshot, 1);
    let snap10 = at("snap10", Seed::Snapshot, 10);
    let steps10 = at("steps10", Seed::InSteps, 10);

    // The set-up as it would cost without a snapshot: a bare start, then the seed.
    let mut seeded = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..ROUNDS {
        let (_, report) = run(&bare1, &["--workers", "1"]);
        bare.push(ms(&report, 0, "setup_ms"));
    }
    for _ in 0..ROUNDS {
        let (_, report) = run(&seed1, &["--workers", "1"]);
        seeded.push(ms(&report, 0, "setup_ms") + step_ms(&report, 0));
    }
    let made = Instant::now();
    run(&snap1, &["--workers", "1"]);
    let first = made.elapsed();
    let mut from_snapshot = Vec::new();
    for _ in 0..ROUNDS {
        let (_, report) = run(&snap1, &["--workers", "1"]);
        from_snapshot.push(ms(&report, 0, "setup_ms"));
    }
    let (bare, seeded, from_snapshot) = (median(bare), median(seeded), median(from_snapshot));
    println!(
        "set-up without a snapshot (bare start + seed step): {} ms",
        seeded.as_millis()
    );
    println!(
        "first run, making the snapshot (whole process): {} ms",
        first.as_millis()
    );
    println!(
        "environment ready: bare start {} ms, from the snapshot {} ms, ratio {:.2} (target <= 1.5)",
        bare.as_millis(),
        from_snapshot.as_millis(),
        from_snapshot.as_secs_f64() / bare.as_secs_f64()
    );

    run(&snap10, &["--workers", "2"]);
    let with: Vec<Duration> = (0..ROUNDS)
        .map(|_| run(&snap10, &["--workers", "2"]).0)
        .collect();
    let without: Vec<Duration> = (0..ROUNDS)
        .map(|_| run(&steps10, &["--workers", "2"]).0)
        .collect();
    let (with, without) = (median(with), median(without));
    println!(
        "10 scenarios, 2 workers: set-up in steps {} ms, from the snapshot {} ms, {:.2}x faster (target >= 3)",
        without.as_millis(),
        with.as_millis(),
        without.as_secs_f64() / with.as_secs_f64()
    );
    // The project's snapshots go with it.
    for project in [&snap1, &snap10] {
        let _ = Command::new(env!("CARGO_BIN_EXE_clnrm"))
            .current_dir(project)
            .args(["cache", "clear"])
            .output();
    }
}
