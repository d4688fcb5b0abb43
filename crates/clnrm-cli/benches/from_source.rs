//! Issue 29's figures for README's performance table, whole process, real engine:
//! what a run in which no source changed costs per service built from a context of
//! 1,000 files (target ≤ 10 ms): a fully cached `clnrm run` of K built services
//! against the same file with the image named instead, and `clnrm build` (every key
//! taken, every tag asked of the engine, nothing built) against `clnrm validate`.
//!
//! Run with `cargo bench -p clnrm-cli --bench from_source`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "clnrm/busybox:latest";
const FILES: usize = 1_000;
const FILE_BYTES: usize = 1024;
const ROUNDS: usize = 41;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn whole(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(
        status.success(),
        "clnrm {args:?} failed in {}",
        dir.display()
    );
    start.elapsed()
}

/// The medians of `ROUNDS` runs of each command, taken in turn.
fn medians(runs: &[(&Path, &[&str])]) -> Vec<Duration> {
    let mut times = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for (i, (dir, args)) in runs.iter().enumerate() {
            times[i].push(whole(dir, args));
        }
    }
    times.into_iter().map(median).collect()
}

/// A project of `k` services, each with a scenario of its own; built from contexts of
/// `FILES` files each when `built`, else naming the image.
fn project(dir: &Path, k: usize, built: bool) {
    std::fs::create_dir_all(dir.join(".clnrm")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    let mut text = String::from("[meta]\nname = \"s\"\nversion = \"1\"\n");
    for s in 0..k {
        if built {
            let ctx = dir.join(format!("svc{s}"));
            for i in 0..FILES {
                let sub = ctx.join(format!("src/d{:02}", i % 20));
                std::fs::create_dir_all(&sub).expect("mkdir");
                let body: Vec<u8> = (0..FILE_BYTES)
                    .map(|b| ((b * 31 + i + s) % 251) as u8)
                    .collect();
                std::fs::write(sub.join(format!("f{i:04}.txt")), body).expect("write");
            }
            std::fs::write(
                ctx.join("Dockerfile"),
                format!("FROM {IMAGE}\nCOPY src /src\nCMD [\"sleep\", \"3600\"]\n"),
            )
            .expect("write");
            text.push_str(&format!("\n[service.svc{s}]\nbuild = \"../svc{s}\"\n"));
        } else {
            text.push_str(&format!("\n[service.svc{s}]\nimage = \"{IMAGE}\"\n"));
        }
    }
    for s in 0..k {
        text.push_str(&format!(
            "\n[[scenario]]\nname = \"s{s}\"\nservice = \"svc{s}\"\nservices = [\"svc{s}\"]\nrun = \"echo {s}\"\n"
        ));
    }
    std::fs::write(dir.join("tests/s.clnrm.toml"), text).expect("write");
}

fn remove_built(root: &Path) {
    let out = Command::new("docker")
        .args(["images", "-q", "--no-trunc", "--filter"])
        .arg(format!("label=clnrm.build={}", root.display()))
        .output()
        .expect("docker images");
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("docker").args(["rmi", "-f", id]).output();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for k in [1usize, 4] {
        let built = tmp.path().join(format!("built{k}"));
        let named = tmp.path().join(format!("named{k}"));
        project(&built, k, true);
        project(&named, k, false);
        let built = built.canonicalize().expect("canonical");
        // Past the window in which a just-written file is hashed again.
        std::thread::sleep(Duration::from_millis(300));
        whole(&built, &["run", "tests"]);
        whole(&named, &["run", "tests"]);
        let run: &[&str] = &["run", "tests"];
        let build: &[&str] = &["build", "tests"];
        let validate: &[&str] = &["validate", "tests"];
        let m = medians(&[
            (&built, run),
            (&named, run),
            (&built, build),
            (&built, validate),
        ]);
        let (run_built, run_named, build, validate) = (m[0], m[1], m[2], m[3]);
        println!(
            "{k} built service(s), {FILES} files ({} KB) in each context, median of {ROUNDS}:",
            FILES * FILE_BYTES / 1024
        );
        println!(
            "  fully cached run: {:.1} ms built, {:.1} ms with the image named: {:.2} ms per built service (target <= 10 ms)",
            ms(run_built),
            ms(run_named),
            (ms(run_built) - ms(run_named)) / k as f64
        );
        println!(
            "  clnrm build, nothing to build: {:.1} ms; validate {:.1} ms: {:.2} ms per built service",
            ms(build),
            ms(validate),
            (ms(build) - ms(validate)) / k as f64
        );
        remove_built(&built);
    }
}
