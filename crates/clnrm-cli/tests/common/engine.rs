//! Helpers for tests that watch a run from outside: its containers through the
//! `docker` command, its process through signals and `/proc`. Each test binary that
//! includes it uses a part.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The project's test image (built by `scripts/setup.sh`).
pub const IMAGE: &str = "clnrm/busybox:latest";

/// Ids of the containers (running or not) carrying `label` (`key=value`).
pub fn containers(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .unwrap_or_else(|e| panic!("docker ps: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// What `docker ARGS` prints (trimmed), failing the test when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Ids of the networks carrying `label` (`key=value`).
pub fn networks(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &format!("label={label}")])
        .output()
        .unwrap_or_else(|e| panic!("docker network ls: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The environment of container `id`, `KEY=VALUE` each.
pub fn container_env(id: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .Config.Env}}{{println .}}{{end}}",
            id,
        ])
        .output()
        .unwrap_or_else(|e| panic!("docker inspect: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits for `cond`, checking every 50 ms; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to exit; kills it and fails the test after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("clnrm did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `clnrm run ARGS` in `dir`, its output discarded.
pub fn spawn_run(dir: &Path, args: &[&str]) -> Child {
    spawn_run_with(dir, args, &[])
}

/// Starts `clnrm run ARGS` in `dir` with extra environment, its output discarded.
pub fn spawn_run_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("clnrm"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .arg("run")
        .args(args)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("clnrm.stderr"))
                .map_or_else(|_| Stdio::null(), Stdio::from),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Sends `sig` (`-INT`, `-TERM`, `-KILL`) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// The peak resident memory of process `pid` so far, in MiB (`VmHWM`), if it lives.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Whether `pid` has a signal pending that it has not handled yet.
pub fn signal_pending(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|mask| u64::from_str_radix(mask, 16).is_ok_and(|m| m != 0))
}

/// `docker build -t tag dir` (the Dockerfile and what it copies are in `dir`); panics
/// with the builder's message when it fails.
pub fn docker_build(tag: &str, dir: &Path) {
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("docker build: {e}"));
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `clnrm-test/tiny-http`: `tests/fixtures/tiny-http.c` built static, alone in a
/// `FROM scratch` image (no shell, no HTTP client); built once per process.
pub fn tiny_http_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    const TAG: &str = "clnrm-test/tiny-http:latest";
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-http.c");
        let cc = std::process::Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(dir.path().join("tiny-http"))
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("cc: {e}"));
        assert!(
            cc.status.success(),
            "cc: {}",
            String::from_utf8_lossy(&cc.stderr)
        );
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY tiny-http /tiny-http\nCMD [\"/tiny-http\"]\n",
        )
        .unwrap_or_else(|e| panic!("Dockerfile: {e}"));
        docker_build(TAG, dir.path());
    });
    TAG
}
