//! What one more step of a kind costs clnrm over the bare call it makes (the `http`
//! and `grpc` step benches): `ROUNDS` rounds of `STEPS` bare calls in this process,
//! then whole-process `clnrm run`s of a project with one such step and of one with
//! `STEPS`; prints the bare call's mean and median, the runs, and the difference.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `clnrm run --force` in project `dir`: its wall time; it must pass.
pub fn clnrm(dir: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["run", "--force", "--format", "json"])
        .output()
        .expect("clnrm");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "clnrm run failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The bare call's mean and median over `rounds` rounds of `steps` calls (medians
/// of the rounds').
pub fn bare_cost(
    rounds: usize,
    steps: usize,
    mut bare: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let mut bare_rounds = Vec::new();
    let mut bare_medians = Vec::new();
    for _ in 0..rounds {
        let times: Vec<Duration> = (0..steps).map(|_| bare()).collect();
        bare_rounds.push(times.iter().sum::<Duration>() / steps as u32);
        bare_medians.push(median(times));
    }
    (median(bare_rounds), median(bare_medians))
}

/// Times the runs of `one` and `many` and prints the figures (`kind`: "http" or
/// "grpc"; `call`: what a bare call is named).
pub fn report(
    (kind, call): (&str, &str),
    (bare_mean, bare_median): (Duration, Duration),
    (rounds, steps): (usize, usize),
    (one, many): (&Path, &Path),
) {
    let t1 = median((0..rounds).map(|_| clnrm(one)).collect());
    let tn = median((0..rounds).map(|_| clnrm(many)).collect());
    let per_step = tn.saturating_sub(t1) / (steps as u32 - 1);
    println!(
        "the {call} alone: mean {:.3} ms, median {:.3} ms ({steps} sequential {call}s, fresh connection each)",
        bare_mean.as_secs_f64() * 1e3,
        bare_median.as_secs_f64() * 1e3
    );
    println!(
        "clnrm run: 1 step {} ms, {steps} steps {} ms: {:.3} ms per step",
        t1.as_millis(),
        tn.as_millis(),
        per_step.as_secs_f64() * 1e3
    );
    println!(
        "clnrm's overhead per {kind} step: {:.3} ms (target <= 2 ms)",
        (per_step.as_secs_f64() - bare_mean.as_secs_f64()) * 1e3
    );
}
