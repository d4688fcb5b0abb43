//! Issue 29's figures for README's performance table, whole process, real engine:
//! 1. what a run in which no source changed costs per service built from a context of
//!    1,000 files (target ≤ 10 ms): a fully cached `clnrm run` of K built services
//!    against the same file with the image named instead, and `clnrm build` (every key
//!    taken, every tag asked of the engine, nothing built) against `clnrm validate`;
//! 2. `clnrm watch --debounce 100` on the web-develop example (a Python app traced by
//!    the OpenTelemetry SDK behind nginx, both built from source): save (a one-line
//!    change of the app) → the cycle's summary, with the app's `develop` rule `sync`
//!    (target ≤ 2 s) and `rebuild` (target: the engine's own rebuild of the changed
//!    layer + ≤ 0.5 s), beside that rebuild (`docker build`, classic builder, of a copy
//!    of the context, after each cycle of watch) and the
//!    loop a user runs without clnrm's builds: `docker build` of the app, then
//!    `clnrm run` of the file naming the image.
//!
//! Needs the example images and wheels (`scripts/setup.sh`). Run with
//! `cargo bench -p clnrm-cli --bench from_source` (`-- watch` for part 2 only,
//! `-- nochange` for part 1 only).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{copy_dir, remove_built};
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if only.as_deref() != Some("watch") {
        no_change();
    }
    if only.as_deref() != Some("nochange") {
        watch_loop();
    }
}

fn no_change() {
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

const EDITS: usize = 5;

/// The example in a project of its own: `web-develop.clnrm.toml` and `web-develop/`.
fn example(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::create_dir_all(dir.join(".clnrm")).expect("mkdir");
    copy_dir(&repo.join("examples/web-develop"), &dir.join("web-develop"));
    std::fs::copy(
        repo.join("examples/web-develop.clnrm.toml"),
        dir.join("web-develop.clnrm.toml"),
    )
    .expect("copy");
    assert!(
        dir.join("web-develop/app/wheels").is_dir(),
        "the example's wheels are missing: run scripts/example-images.sh"
    );
}

/// A one-line change of the app: its last line, a comment, says `n` and this run's
/// nonce (content no earlier run of the bench made, which the engine's layer cache
/// would answer).
fn edit(dir: &Path, n: usize) {
    static NONCE: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let path = dir.join("web-develop/app/src/app.py");
    let text = std::fs::read_to_string(&path).expect("read app.py");
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.last().is_some_and(|l| l.starts_with("# edit ")) {
        lines.pop();
    }
    let edited = format!("{}\n# edit {n} {nonce}\n", lines.join("\n"));
    std::fs::write(&path, edited).expect("write app.py");
}

/// `clnrm watch --debounce 100` of the example in `dir`; each save's time to its
/// cycle's summary line, and the lines that say how the image was had.
fn watch_saves(
    dir: &Path,
    start: usize,
    mut between: impl FnMut(usize),
) -> (Vec<Duration>, Vec<String>) {
    let log = dir.join("watch.log");
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["watch", "--debounce", "100", "web-develop.clnrm.toml"])
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn watch");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait = |n: usize| {
        let started = Instant::now();
        while text().matches("Summary [").count() < n {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "no summary {n}:\n{}",
                text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        started.elapsed()
    };
    wait(1);
    // Let the first cycle's environments made ahead settle, as between edits.
    std::thread::sleep(Duration::from_secs(3));
    let mut times = Vec::new();
    for i in 0..EDITS {
        edit(dir, start + i);
        times.push(wait(i + 2));
        std::thread::sleep(Duration::from_secs(3));
        between(i);
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let how = text()
        .lines()
        .filter(|l| l.starts_with("Synced ") || l.starts_with("Built "))
        .map(str::to_owned)
        .collect();
    assert!(
        text().matches("2 passed").count() >= EDITS,
        "every cycle passes:\n{}",
        text()
    );
    (times, how)
}

fn docker_build(tag: &str, context: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(context)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("docker build");
    assert!(status.success(), "docker build {}", context.display());
    started.elapsed()
}

fn watch_loop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().canonicalize().expect("canonical");
    example(&dir);
    // The images as a first run builds them (with the engine's layer cache).
    whole(&dir, &["run", "--force", "web-develop.clnrm.toml"]);

    let (sync, how_sync) = watch_saves(&dir, 0, |_| {});
    let file = dir.join("web-develop.clnrm.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace("action = \"sync\"", "action = \"rebuild\""),
    )
    .expect("write");
    // The engine's own rebuild after the same one-line change, of a copy of the
    // context (which watch does not see), each right after a cycle of watch: the
    // pairs are measured within seconds of each other on a machine whose disk speed
    // drifts.
    let tag = "clnrm-bench/greeter:latest";
    let apart = tmp.path().join("apart");
    copy_dir(&dir.join("web-develop"), &apart.join("web-develop"));
    docker_build(tag, &apart.join("web-develop/app"));
    let mut engine = Vec::new();
    let (rebuild, how_rebuild) = watch_saves(&dir, 100, |i| {
        edit(&apart, 200 + i);
        engine.push(docker_build(tag, &apart.join("web-develop/app")));
        std::thread::sleep(Duration::from_secs(2));
    });
    // The loop without clnrm's builds: docker build, then clnrm run naming the image.
    std::fs::write(
        &file,
        text.replace("build = \"web-develop/app\"", &format!("image = \"{tag}\"")),
    )
    .expect("write");
    let text = std::fs::read_to_string(&file).expect("read");
    let start = text
        .find("[service.greeter.develop]")
        .expect("develop table");
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |e| start + e + 2);
    std::fs::write(&file, format!("{}{}", &text[..start], &text[end..])).expect("write");
    let mut by_hand = Vec::new();
    for i in 0..EDITS {
        edit(&dir, 300 + i);
        let started = Instant::now();
        docker_build(tag, &dir.join("web-develop/app"));
        whole(&dir, &["run", "web-develop.clnrm.toml"]);
        by_hand.push(started.elapsed());
    }
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
    remove_built(&dir);

    let list = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let med = |v: &[Duration]| median(v.to_vec()).as_secs_f64();
    println!(
        "web-develop (Python app behind nginx), {EDITS} one-line edits of the app each, save -> the cycle's summary:"
    );
    println!(
        "  watch, develop sync:    median {:.2} s ({}) (target <= 2 s)",
        med(&sync),
        list(&sync)
    );
    for l in &how_sync {
        println!("    {l}");
    }
    println!(
        "  watch, develop rebuild: median {:.2} s ({})",
        med(&rebuild),
        list(&rebuild)
    );
    for l in &how_rebuild {
        println!("    {l}");
    }
    println!(
        "  docker build of the app after the same edit (classic builder): median {:.2} s ({}); rebuild - it = {:.2} s (target <= 0.5 s)",
        med(&engine),
        list(&engine),
        med(&rebuild) - med(&engine)
    );
    let pairs: Vec<f64> = rebuild
        .iter()
        .zip(&engine)
        .map(|(r, e)| r.as_secs_f64() - e.as_secs_f64())
        .collect();
    let mut sorted = pairs.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  each rebuild save - the engine's rebuild right after it: median {:.2} s ({})",
        sorted[sorted.len() / 2],
        pairs
            .iter()
            .map(|d| format!("{d:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  docker build + clnrm run (the image named): median {:.2} s ({})",
        med(&by_hand),
        list(&by_hand)
    );
}
