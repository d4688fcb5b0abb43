//! Execution figures of README's performance table, whole process, against the real
//! engine and the project's image `clnrm/busybox:latest`:
//! 1. 20 one-line echo scenarios on 1 worker, pooled and `--no-pool`, against 20 plain
//!    `docker run --rm` of the same image (target: pooled ≤ 0.25×);
//! 2. 16 scenarios of `sleep 1` on 8 workers against 1 worker, pooled and `--no-pool`
//!    (target: ≥ 6.5×);
//! 3. 200 one-step echo scenarios on 1 worker against 200 plain `docker run --rm`
//!    (target ≤ 0.02×), with a 1-scenario run for the fixed cost of a run, so that
//!    the cost of one more scenario shows.
//!
//! Run with `cargo bench -p clnrm-cli --bench run_pool`. Medians of `ROUNDS` rounds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "clnrm/busybox:latest";
const ROUNDS: usize = 3;

fn write_project(dir: &Path, name: &str, count: usize, run: &str) {
    let mut text = format!(
        "[meta]\nname = \"{name}\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n"
    );
    for i in 0..count {
        text.push_str(&format!(
            "\n[[scenario]]\nname = \"{name}-{i}\"\nrun = \"{}\"\n",
            run.replace("{i}", &i.to_string())
        ));
    }
    std::fs::create_dir_all(dir.join(".clnrm")).expect("project dir");
    std::fs::create_dir_all(dir.join("tests")).expect("tests dir");
    std::fs::write(dir.join("tests").join(format!("{name}.clnrm.toml")), text).expect("test file");
}

fn time(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed()
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..ROUNDS).map(|_| f()).collect();
    v.sort();
    v[ROUNDS / 2]
}

fn clnrm(dir: &Path, args: &[&str]) -> Duration {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clnrm"));
    // --force: every round runs every scenario (else the cache skips the unchanged).
    cmd.current_dir(dir).args(["run", "--force"]).args(args);
    time(cmd)
}

fn docker_runs(count: usize) -> Duration {
    let start = Instant::now();
    for i in 0..count {
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", IMAGE, "echo", &format!("hello {i}")]);
        time(cmd);
    }
    start.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = dir.path().join("echo");
    let sleep = dir.path().join("sleep");
    write_project(&echo, "echo", 20, "echo hello {i}");
    write_project(&sleep, "sleep", 16, "sleep 1");

    let docker = median(|| docker_runs(20));
    let pooled = median(|| clnrm(&echo, &["--workers", "1"]));
    let cold = median(|| clnrm(&echo, &["--workers", "1", "--no-pool"]));
    println!("20 echo scenarios, 1 worker:");
    println!(
        "  20 x docker run --rm      {:>7.0} ms",
        docker.as_secs_f64() * 1e3
    );
    println!(
        "  clnrm (pooled)            {:>7.0} ms  = {:.2}x docker run (target <= 0.25x)",
        pooled.as_secs_f64() * 1e3,
        pooled.as_secs_f64() / docker.as_secs_f64()
    );
    println!(
        "  clnrm --no-pool           {:>7.0} ms  = {:.2}x docker run",
        cold.as_secs_f64() * 1e3,
        cold.as_secs_f64() / docker.as_secs_f64()
    );

    let many = dir.path().join("many");
    let single = dir.path().join("single");
    write_project(&many, "many", 200, "echo {i}");
    write_project(&single, "single", 1, "echo 0");
    let docker200 = docker_runs(200);
    let clnrm200 = median(|| clnrm(&many, &["--workers", "1"]));
    let clnrm1 = median(|| clnrm(&single, &["--workers", "1"]));
    println!("200 echo scenarios, 1 worker:");
    println!(
        "  200 x docker run --rm     {:>7.0} ms",
        docker200.as_secs_f64() * 1e3
    );
    println!(
        "  clnrm (pooled)            {:>7.0} ms  = {:.3}x docker run (target <= 0.02x)",
        clnrm200.as_secs_f64() * 1e3,
        clnrm200.as_secs_f64() / docker200.as_secs_f64()
    );
    println!(
        "  of which a run's fixed cost (1 scenario) {:.0} ms; each more scenario {:.1} ms",
        clnrm1.as_secs_f64() * 1e3,
        (clnrm200.as_secs_f64() - clnrm1.as_secs_f64()) * 1e3 / 199.0
    );

    let one = clnrm(&sleep, &["--workers", "1"]);
    let eight = median(|| clnrm(&sleep, &["--workers", "8"]));
    let one_cold = clnrm(&sleep, &["--workers", "1", "--no-pool"]);
    let eight_cold = median(|| clnrm(&sleep, &["--workers", "8", "--no-pool"]));
    println!("16 x sleep 1:");
    println!(
        "  pooled:  1 worker {:>6.0} ms, 8 workers {:>6.0} ms = {:.2}x speed-up (target >= 6.5x)",
        one.as_secs_f64() * 1e3,
        eight.as_secs_f64() * 1e3,
        one.as_secs_f64() / eight.as_secs_f64()
    );
    println!(
        "  no pool: 1 worker {:>6.0} ms, 8 workers {:>6.0} ms = {:.2}x speed-up",
        one_cold.as_secs_f64() * 1e3,
        eight_cold.as_secs_f64() * 1e3,
        one_cold.as_secs_f64() / eight_cold.as_secs_f64()
    );
}
