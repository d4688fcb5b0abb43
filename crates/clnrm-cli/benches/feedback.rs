//! Fast-feedback figures of README's performance table, whole process, real engine:
//! 1. a fully cached `clnrm run` of a 20-scenario file against `clnrm validate` of the
//!    same file (target ≤ 1.5×);
//! 2. the same for the project's examples (`examples/`, the orders app's source in
//!    `images/orders-app/` and the baseline in `.clnrm/`, copied; a PostgreSQL
//!    fixture, apps with the OpenTelemetry SDK built from source, bind mounts,
//!    templates), their keys covering what they mount and build (target ≤ 1.5×);
//! 3. `clnrm watch --debounce 100`: from saving a file to its scenario having written
//!    into a bind-mounted directory (target: median ≤ 250 ms).
//!
//! Run with `cargo bench -p clnrm-cli --bench feedback`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{copy_dir, remove_built};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "clnrm/busybox:latest";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The medians of `n` runs each of `a` and `b` in `dir`, taken in turn, so that what
/// else the machine does in the meantime weighs on both alike.
fn medians(dir: &Path, a: &[&str], b: &[&str], n: usize) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..n {
        ta.push(whole(dir, a));
        tb.push(whole(dir, b));
    }
    (median(ta), median(tb))
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
    assert!(status.success(), "clnrm {args:?} failed");
    start.elapsed()
}

fn cached_vs_validate(dir: &Path) {
    let mut text =
        format!("[meta]\nname = \"c\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n");
    for i in 0..20 {
        text.push_str(&format!(
            "\n[[scenario]]\nname = \"s{i}\"\nrun = \"echo {i}\"\n"
        ));
    }
    std::fs::create_dir_all(dir.join(".clnrm")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    std::fs::write(dir.join("tests/c.clnrm.toml"), text).expect("write");
    whole(dir, &["run", "tests"]);
    let (validate, cached) = medians(dir, &["validate", "tests"], &["run", "tests"], 61);
    println!(
        "fully cached run of 20 scenarios: {:.1} ms; validate of the same file: {:.1} ms; ratio {:.2} (target <= 1.5)",
        cached.as_secs_f64() * 1e3,
        validate.as_secs_f64() * 1e3,
        cached.as_secs_f64() / validate.as_secs_f64()
    );
}

fn examples_cached_vs_validate(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    copy_dir(&repo.join("examples"), &dir.join("examples"));
    copy_dir(
        &repo.join("images/orders-app"),
        &dir.join("images/orders-app"),
    );
    std::fs::create_dir_all(dir.join(".clnrm")).expect("mkdir");
    std::fs::copy(
        repo.join(".clnrm/trace.json"),
        dir.join(".clnrm/trace.json"),
    )
    .expect("baseline");
    // The first run makes what the later ones find unchanged (the fixture snapshot too).
    whole(dir, &["run", "examples"]);
    whole(dir, &["run", "examples"]);
    let (validate, cached) = medians(dir, &["validate", "examples"], &["run", "examples"], 61);
    println!(
        "fully cached run of the examples: {:.1} ms; validate of them: {:.1} ms; ratio {:.2} (target <= 1.5)",
        cached.as_secs_f64() * 1e3,
        validate.as_secs_f64() * 1e3,
        cached.as_secs_f64() / validate.as_secs_f64()
    );
    remove_built(dir);
}

fn watch_file(out: &Path, token: &str) -> String {
    format!(
        "[meta]\nname = \"w\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nvolumes = [{{ host_path = \"{}\", container_path = \"/out\" }}]\n\n[[scenario]]\nname = \"write\"\nrun = \"sh -c 'echo {token} > /out/token'\"\n",
        out.display()
    )
}

fn wait_token(path: &Path, token: &str, limit: Duration) -> Option<Instant> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(path).is_ok_and(|t| t.trim() == token) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn watch_latency(dir: &Path) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::create_dir_all(dir.join(".clnrm")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    let file = dir.join("tests/w.clnrm.toml");
    std::fs::write(&file, watch_file(&out, "t0")).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["watch", "--debounce", "100", "tests"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_token(&out.join("token"), "t0", Duration::from_secs(60)).expect("first cycle");
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = Vec::new();
    for i in 1..=9 {
        let token = format!("t{i}");
        let saved = Instant::now();
        std::fs::write(&file, watch_file(&out, &token)).expect("save");
        let done = wait_token(&out.join("token"), &token, Duration::from_secs(30)).expect("cycle");
        samples.push(done - saved);
        std::thread::sleep(Duration::from_millis(400));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let ms: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "watch --debounce 100, save -> scenario wrote its file: median {:.0} ms (target <= 250; samples {})",
        median(samples).as_secs_f64() * 1e3,
        ms.join(", ")
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let a = tempfile::tempdir().expect("tempdir");
    cached_vs_validate(a.path());
    let e = tempfile::tempdir().expect("tempdir");
    examples_cached_vs_validate(e.path());
    let b = tempfile::tempdir().expect("tempdir");
    watch_latency(b.path());
}
