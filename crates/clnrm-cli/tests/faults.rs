//! Fault injection against the real engine: a proxy in front of the engine socket
//! that the test owns (stall, slow, cut mid-response, hold a kind of request),
//! Ctrl-C and kill -9 at each phase of a run. Whatever happens, a run ends (with
//! the exit code of the fault), writes its report, never passes or caches what it
//! did not finish, and what it leaves behind is removed by the next run.

mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/proxy.rs"]
mod proxy;

use common::{clnrm, project};
use engine::{IMAGE, containers, signal, signal_pending, spawn_run_with, wait_exit, wait_until};
use proxy::{EngineProxy, Mode};
use serde_json::Value;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A project whose engine calls have `engine_ms` deadlines and whose one scenario
/// `work` runs `script` in a busybox agent with `gate` mounted at `/gate`.
fn gated(gate: &Path, engine_ms: u64, script: &str) -> tempfile::TempDir {
    let file = format!(
        "[meta]\nname = \"f\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nvolumes = [{{ host_path = \"{}\", container_path = \"/gate\" }}]\n\n[[scenario]]\nname = \"work\"\ntimeout_ms = 8000\n\n[[scenario.steps]]\nname = \"step\"\ncommand = [\"sh\", \"-c\", '''{script}''']\n",
        gate.display()
    );
    let config = format!("[executor]\nengine_timeout_ms = {engine_ms}\n");
    project(&[
        ("tests/f.clnrm.toml", &file),
        (".clnrm/config.toml", &config),
    ])
}

/// `clnrm run --report-dir out` in `dir` through `proxy`.
fn run_through(proxy: &EngineProxy, dir: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--report-dir", "out"];
    args.extend_from_slice(extra);
    spawn_run_with(dir, &args, &[("DOCKER_HOST", &proxy.docker_host())])
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("out/report.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report.json ({e}): {text:?}"))
}

fn work(report: &Value) -> &Value {
    &report["scenarios"][0]
}

/// Runs a plain scenario directly on the engine (no proxy): the next run, which
/// removes what dead runs left; returns its JSON report.
fn next_run(dir: &Path) -> Value {
    let out = clnrm(dir)
        .args(["run", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("cache"),
        "the cache was not valid: {stderr}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)))
}

/// Waits until the containers of the dead run with `pid` are gone, running a run
/// (which reaps them) while any is left: a request the proxy held may create one
/// after the run died.
fn assert_reaped(dir: &Path, pid: u32) {
    let label = format!("clnrm.pid={pid}");
    wait_until(
        &format!("the containers of run {pid} reaped"),
        Duration::from_secs(60),
        || {
            if containers(&label).is_empty() {
                return true;
            }
            let _ = clnrm(dir)
                .args(["run", "--force", "--format", "json"])
                .output();
            false
        },
    );
}

const STARTED: &str = "touch /gate/started";

/// A run whose engine stalls while its step runs.
struct Stalled {
    _gate: tempfile::TempDir,
    dir: tempfile::TempDir,
    proxy: EngineProxy,
    child: Child,
}

/// Starts a run with `engine_ms` call deadlines through a proxy, and stalls the
/// proxy once the step runs.
fn stall_mid_step(engine_ms: u64) -> Stalled {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = gated(gate.path(), engine_ms, &format!("{STARTED}; sleep 30"));
    let proxy = EngineProxy::start();
    let child = run_through(&proxy, dir.path(), &[]);
    wait_until("the step", Duration::from_secs(60), || {
        gate.path().join("started").exists()
    });
    proxy.set(Mode::Stall);
    Stalled {
        _gate: gate,
        dir,
        proxy,
        child,
    }
}

impl Stalled {
    /// Waits (at most `limit`) for the run to end; its exit code and report.
    fn end(&mut self, limit: Duration) -> (Option<i32>, Value) {
        let code = wait_exit(&mut self.child, limit);
        (code, report(self.dir.path()))
    }

    /// Lets the engine answer again, and checks that the next run reaps the rest.
    fn recover(self) {
        self.proxy.set(Mode::Pass);
        drop(self.proxy);
        assert_reaped(self.dir.path(), self.child.id());
    }
}

#[test]
fn a_stalled_engine_ends_the_run_with_exit_3_naming_the_call_and_the_next_run_reaps() {
    let mut run = stall_mid_step(2000);
    let (code, report) = run.end(Duration::from_secs(90));
    assert_eq!(code, Some(3), "{report:#}");
    let w = work(&report);
    assert_eq!(w["status"], "error", "{report:#}");
    assert_eq!(w["reason"], "engine", "{report:#}");
    let message = w["message"].as_str().unwrap_or("");
    assert!(
        message.contains("did not answer `"),
        "names the call: {message}"
    );
    run.recover();
}

#[test]
fn ctrl_c_is_honoured_during_a_stall_and_the_report_is_written() {
    let mut run = stall_mid_step(30_000);
    signal(run.child.id(), "-INT");
    let sent = Instant::now();
    let (code, report) = run.end(Duration::from_secs(60));
    assert_eq!(code, Some(130), "{report:#}");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(report["interrupted"], true, "{report:#}");
    assert_eq!(work(&report)["status"], "skipped", "{report:#}");
    assert_eq!(work(&report)["reason"], "interrupted", "{report:#}");
    run.recover();
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_still_writes_the_report() {
    let mut run = stall_mid_step(30_000);
    let pid = run.child.id();
    signal(pid, "-INT");
    // Two signals of one kind that are both pending are one.
    wait_until("the first signal handled", Duration::from_secs(10), || {
        !signal_pending(pid)
    });
    signal(pid, "-INT");
    let sent = Instant::now();
    let (code, report) = run.end(Duration::from_secs(30));
    assert_eq!(code, Some(130), "{report:#}");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(report["interrupted"], true, "{report:#}");
    assert_ne!(work(&report)["status"], "passed", "{report:#}");
    run.recover();
}

#[test]
fn a_slow_engine_is_only_slow() {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = gated(gate.path(), 30_000, "echo slow but fine");
    let proxy = EngineProxy::start();
    proxy.set(Mode::Slow(Duration::from_millis(20)));
    let mut child = run_through(&proxy, dir.path(), &[]);
    let code = wait_exit(&mut child, Duration::from_secs(120));
    let report = report(dir.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(work(&report)["status"], "passed");
    drop(proxy);
    assert_reaped(dir.path(), child.id());
}

#[test]
fn an_answer_cut_mid_response_is_an_engine_error_not_a_crash() {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = gated(gate.path(), 5000, &format!("{STARTED}; sleep 2; echo done"));
    let proxy = EngineProxy::start();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("clnrm"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", proxy.docker_host())
        .args(["run", "--report-dir", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.id();
    wait_until("the step", Duration::from_secs(60), || {
        gate.path().join("started").exists()
    });
    // Every answer from now on, the step's stream too, is cut after 10 bytes.
    proxy.set(Mode::Cut(10));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = report(dir.path());
    assert_eq!(out.status.code(), Some(3), "{report:#}\n{stderr}");
    assert_eq!(work(&report)["status"], "error", "{report:#}");
    proxy.set(Mode::Pass);
    drop(proxy);
    assert_reaped(dir.path(), pid);
}

/// Where in a run a signal lands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// While the engine creates the scenario's container.
    StartUp,
    /// While a step runs.
    Steps,
    /// While the used environment is being removed, after the scenario passed.
    Teardown,
}

/// Starts a forced run of `dir` through `proxy` and returns once it is in `phase`.
fn run_into(phase: Phase, proxy: &EngineProxy, dir: &Path, gate: &Path) -> Child {
    let hold = Duration::from_secs(30);
    if let Phase::StartUp = phase {
        proxy.set(Mode::Hold("/containers/create".into(), hold));
    }
    let child = run_through(proxy, dir, &["--force"]);
    match phase {
        Phase::StartUp => wait_until("a create", Duration::from_secs(60), || {
            proxy.seen("/containers/create") > 0
        }),
        Phase::Steps => wait_until("the step", Duration::from_secs(60), || {
            gate.join("started").exists()
        }),
        Phase::Teardown => {
            wait_until("the step", Duration::from_secs(60), || {
                gate.join("started").exists()
            });
            let before = proxy.seen("DELETE");
            proxy.set(Mode::Hold("DELETE".into(), hold));
            wait_until("a removal", Duration::from_secs(60), || {
                proxy.seen("DELETE") > before
            });
        }
    }
    child
}

/// A project whose scenario passes after `sleep` seconds, and is cached once it did.
fn passing_after(gate: &Path, sleep: &str) -> tempfile::TempDir {
    let dir = gated(gate, 30_000, &format!("{STARTED}; sleep {sleep}"));
    let first = next_run(dir.path());
    assert_eq!(work(&first)["status"], "passed", "{first:#}");
    let _ = std::fs::remove_file(gate.join("started"));
    dir
}

#[test]
fn ctrl_c_at_each_phase_never_passes_or_caches_what_did_not_finish() {
    for phase in [Phase::StartUp, Phase::Steps, Phase::Teardown] {
        let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sleep = if let Phase::Steps = phase { "3" } else { "0.5" };
        let dir = gated(gate.path(), 30_000, &format!("{STARTED}; sleep {sleep}"));
        let proxy = EngineProxy::start();
        let mut child = run_into(phase, &proxy, dir.path(), gate.path());
        signal(child.id(), "-INT");
        let sent = Instant::now();
        assert_eq!(
            wait_exit(&mut child, Duration::from_secs(60)),
            Some(130),
            "{phase:?}"
        );
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "{phase:?}: took {:?}",
            sent.elapsed()
        );
        let report = report(dir.path());
        assert_eq!(report["interrupted"], true, "{phase:?}: {report:#}");
        let status = work(&report)["status"].clone();
        proxy.set(Mode::Pass);
        drop(proxy);
        if let Phase::StartUp = phase {
            // The held create goes through now, for a run that is gone.
            let label = format!("clnrm.pid={}", child.id());
            wait_until("the held create to land", Duration::from_secs(60), || {
                !containers(&label).is_empty()
            });
        }
        // The gate is a host path the scenario mounts, so part of its key: as it was.
        let _ = std::fs::remove_file(gate.path().join("started"));
        let next = next_run(dir.path());
        match phase {
            // It finished before the interrupt: passed, and cached for the next run.
            Phase::Teardown => {
                assert_eq!(status, "passed", "{phase:?}: {report:#}");
                assert_eq!(work(&next)["status"], "cached", "{phase:?}: {next:#}");
            }
            _ => {
                assert_eq!(status, "skipped", "{phase:?}: {report:#}");
                assert_eq!(work(&report)["reason"], "interrupted", "{phase:?}");
                assert_eq!(work(&next)["status"], "passed", "{phase:?}: {next:#}");
            }
        }
        assert_reaped(dir.path(), child.id());
    }
}

#[test]
fn kill_9_at_each_phase_leaves_nothing_the_next_run_does_not_reap_and_the_cache_valid() {
    for phase in [Phase::StartUp, Phase::Steps, Phase::Teardown] {
        let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sleep = if let Phase::Steps = phase { "3" } else { "0.5" };
        // A first run passes and is cached; the killed run must not spoil that.
        let dir = passing_after(gate.path(), sleep);
        let proxy = EngineProxy::start();
        let mut child = run_into(phase, &proxy, dir.path(), gate.path());
        signal(child.id(), "-KILL");
        let _ = wait_exit(&mut child, Duration::from_secs(10));
        proxy.set(Mode::Pass);
        drop(proxy);
        // The gate is a host path the scenario mounts, so part of its key: as it was.
        let _ = std::fs::remove_file(gate.path().join("started"));
        let next = next_run(dir.path());
        assert_eq!(work(&next)["status"], "cached", "{phase:?}: {next:#}");
        // A cached run starts no container, so it reaps nothing; one that does, does.
        assert_reaped(dir.path(), child.id());
    }
}
