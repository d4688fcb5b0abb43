//! The end-to-end run on Podman: `clnrm run` against Podman's Docker-compatible API
//! (`podman system service`, Debian's Podman 4.3, started by `scripts/podman.sh`, which
//! the set-up command runs) instead of Docker. Every example whose images Podman has
//! (all but the orders, develop and gRPC examples, whose images build on `clnrm/bookworm`,
//! which only Docker's storage holds), the OTLP example's spans included (the
//! receiver's address must work on either engine), and an imported Compose stack with
//! a one-shot, a health check and an entrypoint; no container is left behind.
//! `CLNRM_TEST_PODMAN` names another socket.
mod common;

use common::{clnrm, copy_dir};
use serde_json::Value;
use std::path::Path;

fn podman_host() -> String {
    std::env::var("CLNRM_TEST_PODMAN")
        .unwrap_or_else(|_| "unix:///tmp/clnrm-podman/podman.sock".to_owned())
}

/// Containers Podman has with `label` (running or not).
fn containers(host: &str, label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "-H",
            host,
            "ps",
            "-aq",
            "--filter",
            &format!("label={label}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("docker -H {host} ps: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `clnrm run --format json ARGS` in `dir` on Podman; the report, after checking that
/// it passed and left no container.
fn run_on_podman(dir: &Path, args: &[&str]) -> Value {
    let host = podman_host();
    let out = clnrm(dir)
        .env("DOCKER_HOST", &host)
        .args(["run", "--format", "json", "--workers", "2"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{stderr}");
    let run_id = report["run_id"].as_str().unwrap_or_default();
    assert_eq!(
        containers(&host, &format!("clnrm.run={run_id}")),
        Vec::<String>::new(),
        "run {run_id} left containers on Podman"
    );
    report
}

#[test]
fn the_examples_and_an_imported_stack_pass_on_podman() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::project(&[]);
    copy_dir(&root.join("../../examples"), &dir.path().join("examples"));
    // The examples built from source run in their own test (the traces one is the
    // orders app again, with trace assertions that ask nothing of the engine).
    for example in [
        "orders-postgres.clnrm.toml",
        "web-develop.clnrm.toml",
        "orders-traces.clnrm.toml",
        "grpc-greeter.clnrm.toml",
    ] {
        std::fs::remove_file(dir.path().join("examples").join(example))
            .unwrap_or_else(|e| panic!("{example}: {e}"));
    }
    let report = run_on_podman(dir.path(), &["examples"]);
    let scenarios = report["scenarios"].as_array().cloned().unwrap_or_default();
    assert!(scenarios.len() >= 8, "{report:#}");
    for sc in &scenarios {
        assert_eq!(sc["status"], "passed", "{sc:#}");
    }
    // The OTLP example's container reached the receiver and its spans were checked.
    let otlp = scenarios
        .iter()
        .find(|s| s["file"] == "examples/otlp-payments.clnrm.toml")
        .unwrap_or_else(|| panic!("no OTLP example in {report:#}"));
    assert!(otlp["spans"].as_u64().unwrap_or(0) >= 2, "{otlp:#}");

    // A Compose stack imported and run on Podman.
    let stack = dir.path().join("stack");
    copy_dir(&root.join("tests/fixtures/compose/static-site"), &stack);
    let out = clnrm(dir.path())
        .args([
            "import",
            "stack/compose.yaml",
            "-o",
            "stack/site.clnrm.toml",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = run_on_podman(dir.path(), &["stack/site.clnrm.toml"]);
    let passed = report["summary"]["passed"].as_u64();
    assert_eq!(passed, Some(2), "{report:#}");
}
