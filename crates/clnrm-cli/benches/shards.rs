//! Timing-balanced shards (SPEC §8; target: the slowest of 4 `duration` shards ≤ 1.1×
//! the mean shard time), against the real engine: a suite of 40 `sleep` scenarios
//! whose durations follow a skewed (Pareto, α = 1.2) distribution, recorded once with
//! `run --save-timings`, then run as 4 shards of each kind one after another, each
//! shard a whole `clnrm run --workers 1 --partition …` process (as one CI machine
//! would run it). Prints each shard's wall time, the slowest over the mean, and checks
//! that every scenario ran in exactly one shard and that `clnrm report merge` of the
//! duration shards gives the unsharded run's ids and statuses.
//!
//! Run with `cargo bench -p clnrm-cli --bench shards` (about 2 minutes).

#[path = "../tests/common/engine.rs"]
mod engine;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SCENARIOS: usize = 40;
const SHARDS: usize = 4;

/// Sleep times in ms: Pareto(α = 1.2) from a fixed generator, scaled to a 32 s total,
/// none above 4 s (a shard cannot be shorter than its longest scenario).
fn durations() -> Vec<u64> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let raw: Vec<f64> = (0..SCENARIOS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = ((state >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            u.powf(-1.0 / 1.2)
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter()
        .map(|x| ((x / total * 32_000.0) as u64).min(4000))
        .collect()
}

fn clnrm(dir: &Path, args: &[&str]) -> (Duration, Value) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["run", "--force", "--format", "json"])
        .args(args)
        .output()
        .expect("clnrm");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "clnrm run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, serde_json::from_slice(&out.stdout).expect("JSON"))
}

fn ran(v: &Value) -> Vec<(String, String)> {
    v["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["reason"] != "partition")
        .map(|s| {
            (
                s["id"].as_str().unwrap_or("").to_owned(),
                s["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Runs the 4 shards of `mode`; their wall times in ms, and each one's report.
fn shards(dir: &Path, mode: &str) -> (Vec<f64>, Vec<std::path::PathBuf>) {
    let mut times = Vec::new();
    let mut reports = Vec::new();
    for k in 1..=SHARDS {
        let out = dir.join(format!("{}-{k}", mode.trim_end_matches(':')));
        let partition = format!("{mode}{k}/{SHARDS}");
        let (took, _) = clnrm(
            dir,
            &[
                "--workers",
                "1",
                "--partition",
                &partition,
                "--report-dir",
                out.to_str().expect("path"),
            ],
        );
        times.push(took.as_secs_f64() * 1000.0);
        reports.push(out.join("report.json"));
    }
    (times, reports)
}

fn say(name: &str, times: &[f64]) -> f64 {
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let max = times.iter().copied().fold(0.0, f64::max);
    let shown: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "{name:<12} shards {} ms; slowest {max:.0} ms / mean {mean:.0} ms = {:.3}×",
        shown.join(", "),
        max / mean
    );
    max / mean
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".clnrm")).expect(".clnrm");
    std::fs::create_dir_all(dir.path().join("tests")).expect("tests");
    let ds = durations();
    let mut text = format!(
        "[meta]\nname = \"skew\"\nversion = \"1\"\n\n[service.app]\nimage = \"{}\"\n",
        engine::IMAGE
    );
    for (i, ms) in ds.iter().enumerate() {
        text.push_str(&format!(
            "\n[[scenario]]\nname = \"s{i:02}\"\nrun = \"sleep {}\"\n",
            *ms as f64 / 1000.0
        ));
    }
    std::fs::write(dir.path().join("tests/skew.clnrm.toml"), text).expect("file");
    let mut sorted = ds.clone();
    sorted.sort_unstable();
    println!(
        "40 scenarios: {} ms of sleep in all; shortest {} ms, median {} ms, longest {} ms",
        ds.iter().sum::<u64>(),
        sorted[0],
        sorted[SCENARIOS / 2],
        sorted[SCENARIOS - 1]
    );
    let (whole_time, whole) = clnrm(dir.path(), &["--workers", "2", "--save-timings"]);
    println!(
        "unsharded at 2 workers (recording timings): {:.0} ms",
        whole_time.as_secs_f64() * 1000.0
    );

    let (rr, _) = shards(dir.path(), "");
    let (hash, _) = shards(dir.path(), "hash:");
    let (dur, reports) = shards(dir.path(), "duration:");
    say("round-robin", &rr);
    say("hash", &hash);
    let ratio = say("duration", &dur);

    let merged = dir.path().join("merged");
    let out = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir.path())
        .args(["report", "merge", "--out", merged.to_str().expect("path")])
        .args(&reports)
        .output()
        .expect("merge");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("report.json")).expect("merged"))
            .expect("JSON");
    assert_eq!(ran(&merged), ran(&whole), "merged ≠ unsharded");
    println!(
        "merged duration shards: the unsharded run's {} ids and statuses, each in one shard",
        ran(&whole).len()
    );
    println!(
        "target: duration slowest / mean ≤ 1.1 — {}",
        if ratio <= 1.1 { "met" } else { "NOT met" }
    );
}
