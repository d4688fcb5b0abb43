//! `clnrm run` end to end against the real Docker engine, with the project's own image
//! `clnrm/busybox:latest` (built by `scripts/setup.sh`). Every test checks that its
//! run left no container behind.

mod common;

use common::{clnrm, project};

#[path = "common/engine.rs"]
mod engine;

use engine::{IMAGE, containers, signal, spawn_run, wait_exit, wait_until};

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A test file with one busybox service `app` (agent mode) and the given scenarios.
fn file(body: &str) -> String {
    format!("[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n{body}")
}

struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

/// `clnrm run --format json ARGS` in `dir`; asserts the run left no container.
fn run_json(dir: &Path, args: &[&str]) -> Run {
    let out = clnrm(dir)
        .args(["run", "--format", "json"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let run_id = json["run_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        containers(&format!("clnrm.run={run_id}")),
        Vec::<String>::new(),
        "run {run_id} left containers"
    );
    Run {
        code: out.status.code(),
        json,
        stderr,
    }
}

impl Run {
    /// Asserts exit code 0, showing the report and stderr otherwise.
    fn assert_passed(&self) {
        assert_eq!(self.code, Some(0), "{:#}\n{}", self.json, self.stderr);
    }
}

fn scenario<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.json["scenarios"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no scenario {name} in {:#}", run.json))
}

#[test]
fn a_passing_scenario_runs_in_its_service_and_passes() {
    let dir = project(&[(
        "tests/ok.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "hello"
service = "app"
run = "echo 'hello world'"

[[scenario]]
name = "steps"

[[scenario.steps]]
name = "write"
command = ["sh", "-c", "echo \"$GREETING\" > /tmp/x && pwd"]
env = { GREETING = "hi there" }
workdir = "/tmp"
expected_output_regex = "^/tmp$"

[[scenario.steps]]
name = "read"
command = ["cat", "/tmp/x"]
expected_output_regex = "hi there"
"#,
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    assert_eq!(run.json["summary"]["passed"], 2);
    let hello = scenario(&run, "hello");
    assert_eq!(hello["id"], "tests/ok.clnrm.toml::hello");
    assert_eq!(hello["steps"][0]["stdout"], "hello world\n");
    assert_eq!(hello["steps"][0]["exit_code"], 0);
}

#[test]
fn a_non_zero_exit_fails_with_the_step_command_and_output() {
    let dir = project(&[(
        "tests/bad.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "boom"

[[scenario.steps]]
name = "explode"
command = ["sh", "-c", "echo partial; echo 'it broke' >&2; exit 3"]

[[scenario.steps]]
name = "never"
command = ["true"]

[[scenario]]
name = "expected"

[[scenario.steps]]
name = "three-is-fine"
command = ["sh", "-c", "exit 3"]
expected_exit_code = 3
"#,
        ),
    )]);
    let out = clnrm(dir.path())
        .arg("run")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        text.contains("step \"explode\": exit code 3, expected 0"),
        "{text}"
    );
    assert!(
        text.contains("command: sh -c 'echo partial; echo '\\''it broke'\\'' >&2; exit 3'"),
        "{text}"
    );
    assert!(text.contains("exit:    3"), "{text}");
    assert!(text.contains("| it broke"), "{text}");
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    let run = run_json(dir.path(), &["--force"]);
    let boom = scenario(&run, "boom");
    assert_eq!(boom["reason"], "exit_code");
    assert_eq!(boom["steps"][1]["status"], "skipped");
    assert_eq!(scenario(&run, "expected")["status"], "passed");
}

#[test]
fn a_regex_mismatch_fails_and_continue_on_failure_goes_on() {
    let dir = project(&[(
        "tests/re.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "mismatch"

[[scenario.steps]]
name = "greet"
command = ["echo", "hello"]
expected_output_regex = "^goodbye"

[[scenario]]
name = "tolerated"

[[scenario.steps]]
name = "flaky"
command = ["false"]
continue_on_failure = true

[[scenario.steps]]
name = "after"
command = ["echo", "still here"]
expected_output_regex = "still"
"#,
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1));
    let m = scenario(&run, "mismatch");
    assert_eq!(m["status"], "failed");
    assert_eq!(m["reason"], "regex");
    assert!(
        m["message"].as_str().unwrap_or("").contains("/^goodbye/"),
        "{m:#}"
    );
    let t = scenario(&run, "tolerated");
    assert_eq!(t["status"], "passed", "{t:#}");
    assert_eq!(t["steps"][0]["tolerated"], true);
    assert_eq!(t["steps"][1]["status"], "passed");
}

#[test]
fn step_and_scenario_timeouts_kill_and_report_timeout() {
    let dir = project(&[(
        "tests/slow.clnrm.toml",
        &format!(
            r#"[meta]
name = "slow"
version = "1"

[service.app]
image = "{IMAGE}"

[service.server]
image = "{IMAGE}"
args = ["sleep", "3600"]

[[scenario]]
name = "step-timeout"
service = "app"

[[scenario.steps]]
name = "hang"
command = ["sleep", "60"]
timeout_ms = 300

[[scenario]]
name = "scenario-timeout"
service = "server"
timeout_ms = 500

[[scenario.steps]]
name = "fast"
command = ["true"]

[[scenario.steps]]
name = "hang"
command = ["sleep", "60"]
"#
        ),
    )]);
    let started = Instant::now();
    let run = run_json(dir.path(), &[]);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "timeouts did not cut the sleeps short"
    );
    assert_eq!(run.code, Some(1));
    for name in ["step-timeout", "scenario-timeout"] {
        let s = scenario(&run, name);
        assert_eq!(s["status"], "failed", "{s:#}");
        assert_eq!(s["reason"], "timeout", "{s:#}");
        assert!(
            s["message"]
                .as_str()
                .unwrap_or("")
                .contains("timed out after"),
            "{s:#}"
        );
    }
}

#[test]
fn an_oom_kill_of_a_command_is_reported_as_such_in_both_exec_modes() {
    let dir = project(&[(
        "tests/oom.clnrm.toml",
        &format!(
            r#"[meta]
name = "oom"
version = "1"

[limits]
memory_mb = 24

[service.agent]
image = "{IMAGE}"

[service.execd]
image = "{IMAGE}"
args = ["sleep", "3600"]

[[scenario]]
name = "agent-hog"
service = "agent"

[[scenario.steps]]
name = "hog"
command = ["tail", "/dev/zero"]
timeout_ms = 60000

[[scenario]]
name = "exec-hog"
service = "execd"

[[scenario.steps]]
name = "hog"
command = ["tail", "/dev/zero"]
timeout_ms = 60000
"#
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    for name in ["agent-hog", "exec-hog"] {
        let s = scenario(&run, name);
        assert_eq!(s["reason"], "oom", "{s:#}");
        assert_eq!(s["steps"][0]["exit_code"], 137, "{s:#}");
        assert!(
            s["message"].as_str().unwrap_or("").contains("OOM kill"),
            "{s:#}"
        );
    }
}

#[test]
fn memory_and_cpu_limits_are_visible_inside_the_container() {
    // cgroup v2 first, then v1.
    let dir = project(&[(
        "tests/limits.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "limits"

[[scenario.steps]]
name = "memory"
command = ["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]
expected_output_regex = "^67108864$"

[[scenario.steps]]
name = "cpu"
command = ["sh", "-c", "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"]
expected_output_regex = "^50000 100000$"
"#,
        ),
    )]);
    let run = run_json(dir.path(), &["--memory", "64", "--cpu", "0.5"]);
    run.assert_passed();
    // [limits] in the file applies when no flag overrides it.
    let dir = project(&[(
        "tests/limits.clnrm.toml",
        &file(
            r#"[limits]
memory_mb = 96
cpu_millicores = 250

[[scenario]]
name = "file-limits"

[[scenario.steps]]
name = "memory"
command = ["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]
expected_output_regex = "^100663296$"

[[scenario.steps]]
name = "cpu"
command = ["sh", "-c", "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"]
expected_output_regex = "^25000 100000$"
"#,
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
}

#[test]
fn no_state_leaks_from_one_scenario_to_the_next_while_clean_containers_are_reused() {
    // One worker, priority order: the polluters run first, the checkers after, all with
    // the same service (so the same pool key).
    let mut body = String::from(
        r#"[[scenario]]
name = "pollute-files"
priority = 10
run = "sh -c 'echo x > /tmp/leak; echo y > /dev/shm/leak; chmod 700 /tmp'"

[[scenario]]
name = "pollute-processes"
priority = 9
run = "sh -c 'sleep 300 >/dev/null 2>&1 &'"

[[scenario]]
name = "pollute-bind-mounted-files"
priority = 8
run = "sh -c 'echo 10.9.9.9 leak >> /etc/hosts; echo nameserver 10.9.9.9 >> /etc/resolv.conf'"

[[scenario]]
name = "pollute-by-deleting-an-image-file"
priority = 7
run = "rm /lib/x86_64-linux-gnu/libgcc_s.so.1"

[[scenario]]
name = "pollute-and-tidy-up"
priority = 6
run = "sh -c 'echo x > /tmp/gone; rm /tmp/gone'"
"#,
    );
    for i in 0..6 {
        body.push_str(&format!(
            r#"
[[scenario]]
name = "check-{i}"
priority = 1

[[scenario.steps]]
name = "clean"
command = ["sh", "-c", "test ! -e /tmp/leak && test ! -e /dev/shm/leak && test \"$(stat -c %a /tmp)\" = 1777 && test -z \"$(pgrep sleep)\" && ! grep -q 10.9.9.9 /etc/hosts /etc/resolv.conf && test -e /lib/x86_64-linux-gnu/libgcc_s.so.1 && hostname"]
"#
        ));
    }
    let dir = project(&[("tests/iso.clnrm.toml", &file(&body))]);
    let run = run_json(dir.path(), &["--workers", "1"]);
    run.assert_passed();
    let hosts: std::collections::BTreeSet<String> = (0..6)
        .map(|i| {
            scenario(&run, &format!("check-{i}"))["steps"][0]["stdout"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        hosts.len() < 6,
        "clean containers should be reused: {hosts:?}"
    );
}

#[test]
fn a_scenario_without_network_has_loopback_and_localhost_only() {
    // One service, no ports, no OTLP: the container is started without the engine's
    // network set-up, and the agent writes the localhost names.
    let dir = project(&[(
        "tests/lo.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "loopback"

[[scenario.steps]]
name = "interfaces"
command = ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]
expected_output_regex = "^lo\n?$"

[[scenario.steps]]
name = "localhost"
command = ["sh", "-c", "(nc -l -p 7777 -e echo pong &) ; sleep 0.2; nc localhost 7777 </dev/null"]
expected_output_regex = "pong"
"#,
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
}

#[test]
fn scenarios_run_in_parallel_on_several_workers() {
    let mut body = String::new();
    for i in 0..4 {
        body.push_str(&format!(
            "[[scenario]]\nname = \"sleep-{i}\"\nrun = \"sleep 1\"\n\n"
        ));
    }
    let dir = project(&[("tests/par.clnrm.toml", &file(&body))]);
    let run = run_json(dir.path(), &["--parallel", "--workers", "4"]);
    run.assert_passed();
    let spans = intervals(&run);
    let latest_start = spans.iter().map(|s| s.0).max().unwrap_or(0);
    let earliest_end = spans.iter().map(|s| s.1).min().unwrap_or(0);
    assert!(
        latest_start < earliest_end,
        "all four should overlap: {spans:?}"
    );
}

#[test]
fn ctrl_c_mid_run_removes_every_container_writes_the_report_and_exits_130() {
    let dir = project(&[(
        "tests/long.clnrm.toml",
        &file(
            "[[scenario]]\nname = \"long\"\nrun = \"sleep 120\"\n\n[[scenario]]\nname = \"long2\"\nrun = \"sleep 120\"\n",
        ),
    )]);
    let mut child = spawn_run(dir.path(), &["--report-dir", "out"]);
    let label = format!("clnrm.pid={}", child.id());
    wait_until("the run's containers", Duration::from_secs(60), || {
        containers(&label).len() >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    signal(child.id(), "-INT");
    let code = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(containers(&label), Vec::<String>::new());
    let report = std::fs::read_to_string(dir.path().join("out/report.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["summary"]["passed"], 0);
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let dir = project(&[(
        "tests/long.clnrm.toml",
        &file("[[scenario]]\nname = \"long\"\nrun = \"sleep 120\"\n"),
    )]);
    let mut child = spawn_run(dir.path(), &[]);
    let label = format!("clnrm.pid={}", child.id());
    wait_until("the run's container", Duration::from_secs(60), || {
        !containers(&label).is_empty()
    });
    signal(child.id(), "-TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(130));
    assert_eq!(containers(&label), Vec::<String>::new());
}

#[test]
fn the_containers_of_a_kill_9ed_run_are_reaped_by_the_next_run() {
    let body = "[[scenario]]\nname = \"long\"\nservice = \"app\"\nrun = \"sleep 120\"\n\n[service.srv]\nimage = \"clnrm/busybox:latest\"\nargs = [\"sleep\", \"3600\"]\n\n[[scenario]]\nname = \"long-exec\"\nservice = \"srv\"\nrun = \"sleep 120\"\n";
    let dir = project(&[("tests/long.clnrm.toml", &file(body))]);
    let mut child = spawn_run(dir.path(), &[]);
    let label = format!("clnrm.pid={}", child.id());
    // Two scenarios, each with both services: four containers. (A container whose
    // create request is still in flight at the kill is reaped by a later run.)
    wait_until("the run's containers", Duration::from_secs(60), || {
        containers(&label).len() >= 4
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "-KILL");
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    let other = project(&[(
        "tests/ok.clnrm.toml",
        &file("[[scenario]]\nname = \"ok\"\nrun = \"true\"\n"),
    )]);
    let run = run_json(other.path(), &[]);
    run.assert_passed();
    // A create the engine was still answering at the kill lands after that run's
    // reaping; the run after it removes that one.
    wait_until(
        "the dead run's containers gone",
        Duration::from_secs(60),
        || {
            if containers(&label).is_empty() {
                return true;
            }
            let _ = clnrm(other.path()).args(["run", "--force"]).output();
            false
        },
    );
}

#[test]
fn no_engine_exits_3_with_a_one_line_hint() {
    let dir = project(&[(
        "tests/ok.clnrm.toml",
        &file("[[scenario]]\nname = \"ok\"\nrun = \"true\"\n"),
    )]);
    let out = clnrm(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("run")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no container engine answers at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    assert!(err.contains("DOCKER_HOST"), "{err}");
}

#[test]
fn a_missing_image_is_an_error_naming_the_image_and_exits_3() {
    let dir = project(&[(
        "tests/img.clnrm.toml",
        "[meta]\nname = \"img\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/never-built:nope\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n",
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(3));
    let s = scenario(&run, "s");
    assert_eq!(s["status"], "error");
    assert_eq!(s["reason"], "image");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("clnrm/never-built:nope"),
        "{s:#}"
    );
}

#[test]
fn junit_output_parses_and_counts_right() {
    let dir = project(&[
        (
            "tests/a.clnrm.toml",
            &file(
                "[[scenario]]\nname = \"ok\"\nrun = \"true\"\n\n[[scenario]]\nname = \"bad\"\nrun = \"false\"\n",
            ),
        ),
        (
            "tests/b.clnrm.toml",
            &file("[[scenario]]\nname = \"ok-b\"\nrun = \"echo <&>\"\n"),
        ),
    ]);
    let out = clnrm(dir.path())
        .args(["run", "--format", "junit"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8_lossy(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[0].attribute("name"), Some("tests/a.clnrm.toml"));
    assert_eq!(suites[0].attribute("tests"), Some("2"));
    let bad = suites[0]
        .children()
        .find(|n| n.attribute("name") == Some("bad"))
        .unwrap_or_else(|| panic!("{xml}"));
    let failure = bad
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap_or_else(|| panic!("{xml}"));
    assert_eq!(failure.attribute("type"), Some("exit_code"));
    assert!(xml.contains("&lt;&amp;&gt;"), "{xml}");
}

#[test]
fn fail_fast_stops_dispatching_after_the_first_failure() {
    let dir = project(&[(
        "tests/ff.clnrm.toml",
        &file(
            "[[scenario]]\nname = \"first\"\npriority = 9\nrun = \"false\"\n\n[[scenario]]\nname = \"second\"\nrun = \"true\"\n\n[[scenario]]\nname = \"third\"\nrun = \"true\"\n",
        ),
    )]);
    let run = run_json(dir.path(), &["--workers", "1", "--fail-fast"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(scenario(&run, "first")["status"], "failed");
    for name in ["second", "third"] {
        let s = scenario(&run, name);
        assert_eq!(s["status"], "skipped", "{s:#}");
        assert_eq!(s["reason"], "fail_fast", "{s:#}");
    }
    // Without it, everything runs.
    let run = run_json(dir.path(), &["--workers", "1"]);
    assert_eq!(run.json["summary"]["passed"], 2);
}

#[test]
fn secret_values_are_masked_in_every_report() {
    let dir = project(&[(
        "tests/s.clnrm.toml",
        &format!(
            "[meta]\nname = \"s\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nenv = {{ API_TOKEN = \"tok-12345-secret\" }}\n\n[[scenario]]\nname = \"leaky\"\n\n[[scenario.steps]]\nname = \"print\"\ncommand = [\"sh\", \"-c\", \"echo token=$API_TOKEN >&2; echo tok-12345-secret; exit 1\"]\n"
        ),
    )]);
    for format in ["human", "json", "junit", "markdown"] {
        let out = clnrm(dir.path())
            .args(["run", "--format", format, "--report-dir", "out"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(
            !all.contains("tok-12345-secret"),
            "{format} leaks the secret:\n{all}"
        );
        assert!(all.contains("token=***"), "{format}:\n{all}");
    }
    for f in ["report.json", "junit.xml", "report.md"] {
        let text = std::fs::read_to_string(dir.path().join("out").join(f))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!text.contains("tok-12345-secret"), "{f} leaks the secret");
    }
}

#[test]
fn services_reach_each_other_by_name_after_their_health_check() {
    let dir = project(&[(
        "tests/net.clnrm.toml",
        &format!(
            r#"[meta]
name = "net"
version = "1"

[service.web]
image = "{IMAGE}"
args = ["sh", "-c", "sleep 1; echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
ports = [8080]
health_check = {{ cmd = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"], interval_ms = 200, retries = 50 }}

[service.client]
image = "{IMAGE}"

[[scenario]]
name = "fetch"

[[scenario.steps]]
name = "get"
service = "client"
command = ["wget", "-q", "-O", "-", "http://web:8080/index.html"]
expected_output_regex = "hello-from-web"
"#
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
}

#[test]
fn an_unhealthy_service_fails_the_scenario_with_the_last_probe_output() {
    let dir = project(&[(
        "tests/sick.clnrm.toml",
        &format!(
            "[meta]\nname = \"sick\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nhealth_check = {{ cmd = [\"sh\", \"-c\", \"echo not-yet; exit 1\"], interval_ms = 50, retries = 3 }}\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n"
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1));
    let s = scenario(&run, "s");
    assert_eq!(s["reason"], "unhealthy", "{s:#}");
    assert!(
        s["message"].as_str().unwrap_or("").contains("not-yet"),
        "{s:#}"
    );
}

#[test]
fn invalid_files_are_refused_before_any_container_starts() {
    let dir = project(&[(
        "tests/bad.clnrm.toml",
        &file("[[scenario]]\nname = \"s\"\nservice = \"nope\"\nrun = \"true\"\n"),
    )]);
    let out = clnrm(dir.path())
        .arg("run")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error[E0102]"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
}

#[test]
fn filter_partition_and_per_file_report_paths() {
    let body = "[report]\njson = \"out/r.json\"\njunit = \"out/r.xml\"\ndigest = \"out/r.sha256\"\n\n[[scenario]]\nname = \"alpha\"\nrun = \"true\"\n\n[[scenario]]\nname = \"beta\"\nrun = \"true\"\n\n[[scenario]]\nname = \"gamma\"\nrun = \"true\"\n";
    let dir = project(&[("tests/f.clnrm.toml", &file(body))]);
    let run = run_json(dir.path(), &["--filter", "*::?a*"]);
    run.assert_passed();
    assert_eq!(scenario(&run, "gamma")["status"], "passed");
    assert_eq!(scenario(&run, "alpha")["reason"], "filtered");
    assert_eq!(scenario(&run, "beta")["status"], "skipped");
    let run = run_json(dir.path(), &["--partition", "2/2"]);
    assert_eq!(scenario(&run, "beta")["status"], "passed");
    assert_eq!(scenario(&run, "alpha")["status"], "skipped");
    for f in ["r.json", "r.xml", "r.sha256"] {
        assert!(
            dir.path().join("tests/out").join(f).is_file(),
            "{f} not written next to the test file"
        );
    }
    let out = clnrm(dir.path())
        .args(["run", "--partition", "3/2"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --partition \"3/2\""));
}

fn intervals(run: &Run) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = run.json["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let start = s["start_ms"].as_u64().unwrap_or(0);
            (start, start + s["duration_ms"].as_u64().unwrap_or(0))
        })
        .collect();
    v.sort_unstable();
    v
}

fn disjoint(v: &[(u64, u64)]) -> bool {
    v.windows(2).all(|w| w[0].1 <= w[1].0)
}

#[test]
fn scenarios_that_are_not_concurrent_never_overlap() {
    let body = "[[scenario]]\nname = \"a\"\nconcurrent = false\nrun = \"sleep 0.5\"\n\n[[scenario]]\nname = \"b\"\nconcurrent = false\nrun = \"sleep 0.5\"\n\n[[scenario]]\nname = \"c\"\nconcurrent = false\nrun = \"sleep 0.5\"\n";
    let dir = project(&[("tests/serial.clnrm.toml", &file(body))]);
    let run = run_json(dir.path(), &["--workers", "3"]);
    run.assert_passed();
    assert!(disjoint(&intervals(&run)), "{:?}", intervals(&run));
}

#[test]
fn max_concurrent_containers_bounds_the_run_without_deadlock() {
    let mut body = String::new();
    for i in 0..3 {
        body.push_str(&format!(
            "[[scenario]]\nname = \"s{i}\"\nrun = \"sleep 0.5\"\n\n"
        ));
    }
    let dir = project(&[("tests/bound.clnrm.toml", &file(&body))]);
    std::fs::write(
        dir.path().join(".clnrm/config.toml"),
        "[executor]\nmax_concurrent_containers = 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &["--workers", "3"]);
    run.assert_passed();
    assert!(
        disjoint(&intervals(&run)),
        "one container at a time: {:?}",
        intervals(&run)
    );
}

const OTLP_LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},"scopeSpans":[{"scope":{"name":"shop"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"checkout","kind":2,"startTimeUnixNano":"1000000000","endTimeUnixNano":"1100000000","attributes":[{"key":"http.status_code","value":{"intValue":"200"}}],"status":{"code":1}}]}]}]}"#;
const FLAT_LINE: &str = r#"{"name":"db.query","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"00f067aa0ba902b7","parent_span_id":"b7ad6b7169203331","kind":"client","start_time_unix_nano":1010000000,"end_time_unix_nano":1050000000,"attributes":{"db.system":"postgresql"},"status":"OK"}"#;

/// A scenario printing both span shapes to stdout, plus `expectations`.
fn stdout_spans_file(expectations: &str) -> String {
    let printer = format!("printf '%s\\n%s\\n%s\\n' 'plain log line' '{OTLP_LINE}' '{FLAT_LINE}'");
    format!(
        "[meta]\nname = \"spans\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n[[scenario]]\nname = \"emit\"\n\n[[scenario.steps]]\nname = \"print\"\ncommand = [\"sh\", \"-c\", {}]\n\n{expectations}",
        toml_string(&printer)
    )
}

fn toml_string(s: &str) -> String {
    format!("'''{s}'''")
}

#[test]
fn spans_printed_to_stdout_in_both_shapes_are_checked_and_saved() {
    let dir = project(&[(
        "tests/spans.clnrm.toml",
        &stdout_spans_file(
            "[[expect.span]]\nname = \"checkout\"\nkind = \"server\"\nattrs.all = { \"http.status_code\" = \"200\" }\n\n[[expect.span]]\nname = \"db.query\"\nparent = \"checkout\"\nkind = \"client\"\n\n[expect.counts]\nspans_total = { eq = 2 }\n\n[[expect.window]]\nouter = \"checkout\"\ncontains = [\"db.query\"]\n\n[expect.status]\nall = \"OK\"\n",
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    let s = scenario(&run, "emit");
    assert_eq!(s["spans"], 2);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path().join(".clnrm/artifacts"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .collect();
    assert_eq!(artifacts.len(), 1);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(artifacts[0].path()).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(saved["scenario"], "tests/spans.clnrm.toml::emit");
    assert_eq!(saved["spans"].as_array().map(Vec::len), Some(2));
}

#[test]
fn an_unmet_expectation_fails_the_scenario_with_position_expected_and_found() {
    let dir = project(&[(
        "tests/spans.clnrm.toml",
        &stdout_spans_file(
            "[[expect.span]]\nname = \"checkout\"\nattrs.all = { \"http.status_code\" = 500 }\n",
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1));
    let s = scenario(&run, "emit");
    assert_eq!(s["reason"], "expectation");
    let m = s["message"].as_str().unwrap_or("");
    assert!(
        m.contains("[[expect.span]] \"checkout\" (tests/spans.clnrm.toml:18:1)"),
        "{m}"
    );
    assert!(m.contains("http.status_code is 200"), "{m}");
    // The JSON report gives the unmet expectation as data.
    let u = &s["unmet"][0];
    assert_eq!(u["kind"], "span", "{s:#}");
    assert_eq!(u["file"], "tests/spans.clnrm.toml", "{s:#}");
    assert_eq!(
        (u["line"].as_u64(), u["col"].as_u64()),
        (Some(18), Some(1)),
        "{s:#}"
    );
    assert!(
        u["found"]
            .as_str()
            .unwrap_or("")
            .contains("http.status_code is 200"),
        "{s:#}"
    );
}

#[test]
fn expectations_without_any_spans_fail() {
    let dir = project(&[(
        "tests/quiet.clnrm.toml",
        &file(
            "[[scenario]]\nname = \"quiet\"\nrun = \"echo no spans here\"\n\n[[expect.span]]\nname = \"anything\"\n",
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1));
    let s = scenario(&run, "quiet");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("no spans at all"),
        "{s:#}"
    );
}

/// Shell that sets `$token` to the run's token from `OTEL_EXPORTER_OTLP_HEADERS`
/// (busybox `wget` does not read that variable; SDKs do).
const TOKEN_HEADER_SH: &str = "t=${OTEL_EXPORTER_OTLP_HEADERS%%,*}; token=${t#x-clnrm-token=};";

/// A file whose one scenario POSTs one OTLP-JSON span named `span` from its container
/// with busybox `wget` (no SDK, so no `clnrm.scenario` resource: attribution is by the
/// container's address), and expects exactly that span.
fn otlp_wget_file(name: &str, span: &str) -> String {
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[]}},"scopeSpans":[{{"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"{span}","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
    );
    let script = format!(
        "sleep 0.3; {TOKEN_HEADER_SH} wget -q -O /dev/null --header 'Content-Type: application/json' --header \"x-clnrm-token: $token\" --post-data '{body}' \"$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces\""
    );
    format!(
        "[meta]\nname = \"{name}\"\nversion = \"1\"\n\n[otel]\nexporter = \"otlp-http\"\nprotocol = \"http/json\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n[[scenario]]\nname = \"{name}\"\n\n[[scenario.steps]]\nname = \"post\"\ncommand = [\"sh\", \"-c\", {}]\n\n[expect.counts]\nspans_total = {{ eq = 1 }}\nby_name = {{ \"{span}\" = {{ eq = 1 }} }}\n",
        toml_string(&script)
    )
}

#[test]
fn otlp_spans_posted_from_containers_reach_only_their_own_scenario() {
    let dir = project(&[
        ("tests/a.clnrm.toml", &otlp_wget_file("alpha", "span.alpha")),
        ("tests/b.clnrm.toml", &otlp_wget_file("beta", "span.beta")),
        ("tests/c.clnrm.toml", &otlp_wget_file("gamma", "span.gamma")),
    ]);
    let run = run_json(dir.path(), &["--workers", "3"]);
    run.assert_passed();
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(scenario(&run, name)["spans"], 1, "{:#}", run.json);
    }
}

/// Runs clnrm with its own telemetry going to a receiver of this test.
fn own_spans(protocol: &str) -> Vec<clnrm_core::otel::SpanRecord> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let local: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let receiver = rt
        .block_on(clnrm_core::otel::Receiver::start(
            clnrm_core::otel::ReceiverConfig::loopback(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = if protocol == "grpc" {
        receiver.grpc_port()
    } else {
        receiver.http_port()
    };
    let dir = project(&[(
        "tests/t.clnrm.toml",
        &file(
            "[[scenario]]\nname = \"one\"\n\n[[scenario.steps]]\nname = \"hello\"\ncommand = [\"echo\", \"hi\"]\n",
        ),
    )]);
    let out = clnrm(dir.path())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .arg("run")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    receiver.take_from(local)
}

#[test]
fn clnrm_exports_its_own_run_scenario_and_step_spans_over_http_and_grpc() {
    for protocol in ["http/protobuf", "grpc"] {
        let spans = own_spans(protocol);
        let find = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{protocol}: no {name} in {spans:#?}"))
        };
        let (run, scenario, step) = (
            find("clnrm.run"),
            find("clnrm.scenario"),
            find("clnrm.step"),
        );
        assert_eq!(
            scenario.parent_span_id.as_deref(),
            Some(run.span_id.as_str())
        );
        assert_eq!(
            step.parent_span_id.as_deref(),
            Some(scenario.span_id.as_str())
        );
        let attr = |s: &clnrm_core::otel::SpanRecord, k: &str| {
            s.attributes.get(k).map(ToString::to_string)
        };
        assert_eq!(
            attr(scenario, "clnrm.scenario.id").as_deref(),
            Some("\"tests/t.clnrm.toml::one\"")
        );
        assert_eq!(
            attr(scenario, "clnrm.scenario.status").as_deref(),
            Some("\"passed\"")
        );
        assert!(
            attr(step, "container.id").is_some_and(|c| c.len() == 14),
            "{step:#?}"
        );
        assert_eq!(
            scenario
                .resource
                .get("service.name")
                .map(ToString::to_string)
                .as_deref(),
            Some("\"clnrm\"")
        );
    }
}

/// A scenario printing a two-span tree with fresh ids on every run; the child is `child`.
fn tree_file(child: &str) -> String {
    let script = format!(
        r#"r=$RANDOM$RANDOM; echo "{{\"name\":\"root\",\"trace_id\":\"t$r\",\"span_id\":\"a$r\",\"start_time_unix_nano\":$r,\"end_time_unix_nano\":$r,\"attributes\":{{\"http.route\":\"/pay\"}}}}"; echo "{{\"name\":\"{child}\",\"trace_id\":\"t$r\",\"span_id\":\"b$r\",\"parent_span_id\":\"a$r\",\"kind\":\"client\"}}""#
    );
    file(&format!(
        "[[scenario]]\nname = \"tree\"\n\n[[scenario.steps]]\nname = \"emit\"\ncommand = [\"sh\", \"-c\", {}]\n",
        toml_string(&script)
    ))
}

#[test]
fn a_baselined_tree_passes_with_new_ids_and_fails_with_a_changed_shape() {
    let dir = project(&[("tests/tree.clnrm.toml", &tree_file("db.query"))]);
    let run = run_json(dir.path(), &["--update-baseline"]);
    run.assert_passed();
    let baseline = std::fs::read_to_string(dir.path().join(".clnrm/trace.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        baseline.contains("\"tests/tree.clnrm.toml::tree\""),
        "{baseline}"
    );
    assert!(
        !baseline.contains("span_id"),
        "ids are not part of a baseline: {baseline}"
    );

    let run = run_json(dir.path(), &[]);
    assert_eq!(
        run.code,
        Some(0),
        "new ids and times are no difference: {:#}",
        run.json
    );

    std::fs::write(
        dir.path().join("tests/tree.clnrm.toml"),
        tree_file("cache.get"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let s = scenario(&run, "tree");
    assert_eq!(s["reason"], "diff", "{s:#}");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("0 changed, 1 missing, 1 extra"),
        "{s:#}"
    );
    // The diff is data in the JSON report: counts and the tree of marks.
    assert_eq!(s["diff"]["counts"]["missing"], 1, "{s:#}");
    assert_eq!(s["diff"]["counts"]["extra"], 1, "{s:#}");
    let tree = s["diff"]["tree"].to_string();
    assert!(
        tree.contains("\"mark\":\"missing\"") && tree.contains("\"name\":\"db.query\""),
        "{tree}"
    );

    let out = clnrm(dir.path())
        .arg("diff")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tests/tree.clnrm.toml::tree: differs: 0 changed, 1 missing, 1 extra"),
        "{text}"
    );
    assert!(text.contains("❌ db.query (client)"), "{text}");
    assert!(text.contains("➕ cache.get (client)"), "{text}");
    assert!(text.contains("✓ root (internal)"), "{text}");

    let out = clnrm(dir.path())
        .args(["diff", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["scenarios"][0]["counts"]["missing"], 1);

    let out = clnrm(dir.path())
        .args(["diff", "--update-baseline"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    let out = clnrm(dir.path())
        .arg("diff")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn diff_runs_the_scenarios_that_have_no_saved_spans() {
    let dir = project(&[("tests/tree.clnrm.toml", &tree_file("db.query"))]);
    let out = clnrm(dir.path())
        .arg("diff")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("no baseline (record one with --update-baseline)"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("running 1 scenario without saved spans first")
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join(".clnrm/artifacts"))
            .map(Iterator::count)
            .unwrap_or(0),
        1
    );
}

fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn three(second: &str) -> String {
    file(&format!(
        "[[scenario]]\nname = \"one\"\nrun = \"echo one\"\n\n[[scenario]]\nname = \"two\"\nrun = \"{second}\"\n\n[[scenario]]\nname = \"three\"\nrun = \"echo three\"\n"
    ))
}

#[test]
fn only_the_edited_scenario_of_a_file_runs_again_and_failures_always_run() {
    let dir = project(&[
        ("tests/c.clnrm.toml", &three("echo two")),
        (
            "tests/bad.clnrm.toml",
            &file("[[scenario]]\nname = \"bad\"\nrun = \"false\"\n"),
        ),
    ]);
    let first = run_json(dir.path(), &[]);
    assert_eq!(first.json["summary"]["cached"], 0);
    let second = run_json(dir.path(), &[]);
    assert_eq!(
        statuses(&second),
        vec![
            ("bad".into(), "failed".into()),
            ("one".into(), "cached".into()),
            ("two".into(), "cached".into()),
            ("three".into(), "cached".into())
        ],
        "a failure is never cached"
    );
    std::fs::write(dir.path().join("tests/c.clnrm.toml"), three("echo TWO"))
        .unwrap_or_else(|e| panic!("{e}"));
    let third = run_json(dir.path(), &[]);
    let st = statuses(&third);
    assert_eq!(st[1], ("one".into(), "cached".into()));
    assert_eq!(
        st[2],
        ("two".into(), "passed".into()),
        "the edited scenario runs"
    );
    assert_eq!(st[3], ("three".into(), "cached".into()));
    let forced = run_json(dir.path(), &["--force"]);
    assert_eq!(forced.json["summary"]["cached"], 0);
    let out = clnrm(dir.path())
        .args(["cache", "stats"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("entries:    4"), "{text}");
    assert!(text.contains("last run:   0 hits, 4 misses"), "{text}");
    let out = clnrm(dir.path())
        .args(["cache", "clear"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(run_json(dir.path(), &[]).json["summary"]["cached"], 0);
}

#[test]
fn a_corrupt_cache_is_replaced_with_a_warning() {
    let dir = project(&[("tests/c.clnrm.toml", &three("echo two"))]);
    std::fs::create_dir_all(dir.path().join(".clnrm/cache")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join(".clnrm/cache/hashes.json"),
        "{\"format\": 7",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    assert!(
        run.stderr.contains("hashes.json: corrupt"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("starting an empty cache"),
        "{}",
        run.stderr
    );
    assert_eq!(run_json(dir.path(), &[]).json["summary"]["cached"], 3);
}

#[test]
fn two_concurrent_runs_share_the_cache_safely() {
    let dir = project(&[
        (
            "tests/a.clnrm.toml",
            &file("[[scenario]]\nname = \"a\"\nrun = \"sleep 0.3\"\n"),
        ),
        (
            "tests/b.clnrm.toml",
            &file("[[scenario]]\nname = \"b\"\nrun = \"sleep 0.3\"\n"),
        ),
    ]);
    let spawn = |path: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("clnrm"))
            .current_dir(dir.path())
            .args(["run", path])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut a, mut b) = (spawn("tests/a.clnrm.toml"), spawn("tests/b.clnrm.toml"));
    assert_eq!(wait_exit(&mut a, Duration::from_secs(60)), Some(0));
    assert_eq!(wait_exit(&mut b, Duration::from_secs(60)), Some(0));
    let run = run_json(dir.path(), &[]);
    assert_eq!(
        run.json["summary"]["cached"], 2,
        "both runs' entries are kept: {:#}",
        run.json
    );
}

/// Not a test by itself: run inside a container by the test below (with
/// `CLNRM_TEST_EXPORT` set), this test binary is an instrumented service that exports
/// through opentelemetry-otlp to whatever `OTEL_EXPORTER_OTLP_*` clnrm injected.
#[test]
#[ignore = "the system under test of an_sdk_in_a_container_exports_protobuf_and_grpc_to_clnrm, which runs it"]
fn otlp_exporter_entry() {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
    if std::env::var_os("CLNRM_TEST_EXPORT").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let grpc = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p == "grpc");
    let exporter = if grpc {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
    } else {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("shop");
    tracer.in_span("checkout", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("http.status_code", 200));
        cx.span().set_status(Status::Ok);
        let _child = tracer
            .span_builder("db.query")
            .with_kind(SpanKind::Client)
            .start_with_context(&tracer, &cx);
    });
    provider.shutdown().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn an_sdk_in_a_container_exports_protobuf_and_grpc_to_clnrm() {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let file = |exporter: &str| {
        format!(
            r#"[meta]
name = "{exporter}"
version = "1"

[otel]
exporter = "{exporter}"

[service.app]
image = "{IMAGE}"
volumes = [{{ host_path = "{}", container_path = "/exporter", read_only = true }}]

[[scenario]]
name = "{exporter}"

[[scenario.steps]]
name = "export"
command = ["/exporter", "otlp_exporter_entry", "--exact", "--ignored", "--test-threads=1"]
env = {{ CLNRM_TEST_EXPORT = "1" }}

[[expect.span]]
name = "checkout"
attrs.all = {{ "http.status_code" = 200 }}

[[expect.span]]
name = "db.query"
parent = "checkout"
kind = "client"

[expect.counts]
spans_total = {{ eq = 2 }}

[expect.status]
by_name = {{ checkout = "OK" }}

[expect.hermeticity]
resource_attrs.must_match = {{ "service.name" = "app", "clnrm.scenario" = "tests/{exporter}.clnrm.toml::{exporter}" }}
"#,
            exe.display()
        )
    };
    let dir = project(&[
        ("tests/otlp-http.clnrm.toml", &file("otlp-http")),
        ("tests/otlp-grpc.clnrm.toml", &file("otlp-grpc")),
    ]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    run.assert_passed();
    for name in ["otlp-http", "otlp-grpc"] {
        assert_eq!(scenario(&run, name)["spans"], 2, "{:#}", run.json);
    }
}
