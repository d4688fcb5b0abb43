//! `clnrm run` end to end against the real Docker engine, with the project's own image
//! `clnrm/busybox:latest` (built by `scripts/setup.sh`): services, steps, limits,
//! isolation, timeouts, signals, reaping, reports. Every test checks that its run left
//! no container behind.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use engine::{IMAGE, containers, signal, spawn_run, wait_exit, wait_until};
use runs::{Run, file, run_json, scenario};
use serde_json::Value;
use std::time::{Duration, Instant};
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
fn retry_runs_a_failing_step_again_until_it_passes_or_the_attempts_are_used_up() {
    // Each run counts itself in a file of the container: the step passes on its third.
    let count =
        "n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/runs; echo run $n";
    let dir = project(&[(
        "tests/retry.clnrm.toml",
        &file(&format!(
            r#"[[scenario]]
name = "third time lucky"

[[scenario.steps]]
name = "eventually"
command = ["sh", "-c", '{count}']
expected_output_regex = "^run 3$"
retry = {{ attempts = 5, interval_ms = 50 }}

[[scenario.steps]]
name = "once"
command = ["sh", "-c", '{count}']
expected_output_regex = "^run 4$"

[[scenario]]
name = "exhausted"

[[scenario.steps]]
name = "never"
command = ["sh", "-c", '{count}; exit 7']
retry = {{ attempts = 2, interval_ms = 50 }}

[[scenario]]
name = "no retry after a timeout"

[[scenario.steps]]
name = "slow"
command = ["sleep", "5"]
timeout_ms = 300
retry = {{ attempts = 3, interval_ms = 50 }}
"#
        )),
    )]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let lucky = scenario(&run, "third time lucky");
    assert_eq!(lucky["status"], "passed", "{lucky:#}");
    assert_eq!(lucky["steps"][0]["attempts"], 3, "{lucky:#}");
    assert_eq!(lucky["steps"][1]["attempts"], 1, "{lucky:#}");
    let tired = scenario(&run, "exhausted");
    assert_eq!(tired["reason"], "exit_code", "{tired:#}");
    assert_eq!(tired["steps"][0]["attempts"], 2, "{tired:#}");
    let message = tired["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exit code 7, expected 0 (after 2 attempts)"),
        "{message}"
    );
    assert!(
        tired["steps"][0]["stdout"]
            .as_str()
            .unwrap_or_default()
            .contains("run 2")
    );
    let slow = scenario(&run, "no retry after a timeout");
    assert_eq!(slow["reason"], "timeout", "{slow:#}");
    assert_eq!(slow["steps"][0]["attempts"], 1, "{slow:#}");

    // The human report says how many runs a failed step took.
    let out = clnrm(dir.path())
        .args(["run", "--force", "--filter", "*exhausted"])
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("runs:    2 (retry)"), "{human}");
}

#[test]
fn captures_pass_values_to_later_steps_and_secret_ones_are_masked() {
    let dir = project(&[(
        "tests/capture.clnrm.toml",
        &file(
            r#"[[scenario]]
name = "create then use"

[[scenario.steps]]
name = "create"
command = ["sh", "-c", "echo '{\"order\": {\"id\": 42, \"token\": \"tok-9f8e7d\"}}'; echo 'made id=42' >&2"]
capture = { id = { json = "$.order.id" }, api_token = { json = "$.order.token" }, sid = { regex = 'id=(\d+)', from = "stderr" } }

[[scenario.steps]]
name = "use"
command = ["sh", "-c", "echo got ${id} and ${sid} and ${api_token} in $PWD as $ORDER; echo '$${literal}'"]
env = { ORDER = "order-${id}" }
workdir = "/tmp"
expected_output_regex = '^got 42 and 42 and tok-9f8e7d in /tmp as order-42$'

[[scenario]]
name = "nothing to capture"

[[scenario.steps]]
name = "look"
command = ["echo", "no number here"]
capture = { n = { regex = 'n=(\d+)' } }

[[scenario.steps]]
name = "after"
command = ["echo", "${n}"]
"#,
        ),
    )]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let used = scenario(&run, "create then use");
    assert_eq!(used["status"], "passed", "{used:#}");
    let stdout = used["steps"][1]["stdout"].as_str().unwrap_or_default();
    // The secret capture is masked wherever it shows, its own step's output included.
    assert!(
        stdout.contains("got 42 and 42 and *** in /tmp as order-42")
            && stdout.contains("${literal}"),
        "{stdout}"
    );
    assert!(
        !run.json.to_string().contains("tok-9f8e7d"),
        "{:#}",
        run.json
    );
    let missing = scenario(&run, "nothing to capture");
    assert_eq!(missing["reason"], "capture", "{missing:#}");
    let message = missing["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"capture "n": /n=(\d+)/ matched nothing in stdout"#),
        "{message}"
    );
    assert_eq!(missing["steps"][1]["status"], "skipped");
}

#[test]
fn tags_select_scenarios_across_files_and_show_in_every_report() {
    let tagged = |names: &[(&str, &str)]| {
        let mut body = String::new();
        for (name, tags) in names {
            body.push_str(&format!(
                "[[scenario]]\nname = \"{name}\"\ntags = [{tags}]\nrun = \"echo {name}\"\n\n"
            ));
        }
        file(&body)
    };
    let dir = project(&[
        (
            "tests/a.clnrm.toml",
            &tagged(&[
                ("a-smoke", "\"smoke\""),
                ("a-slow", "\"smoke\", \"slow\""),
                ("a-none", ""),
            ]),
        ),
        (
            "tests/b.clnrm.toml",
            &tagged(&[("b-db", "\"db\""), ("b-smoke-db", "\"smoke\", \"db\"")]),
        ),
    ]);
    let statuses = |run: &Run| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = run.json["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // Any of the --tag ones, none of the --skip-tag ones, across both files.
    let run = run_json(
        dir.path(),
        &[
            "--tag",
            "smoke",
            "--tag",
            "db",
            "--skip-tag",
            "slow",
            "--report-dir",
            "reports",
        ],
    );
    run.assert_passed();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        statuses(&run),
        pairs(&[
            ("a-none", "skipped"),
            ("a-slow", "skipped"),
            ("a-smoke", "passed"),
            ("b-db", "passed"),
            ("b-smoke-db", "passed"),
        ])
    );
    let both = scenario(&run, "b-smoke-db");
    assert_eq!(both["tags"], serde_json::json!(["smoke", "db"]));
    let junit = std::fs::read_to_string(dir.path().join("reports/junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<property name="tag" value="db"/>"#),
        "{junit}"
    );
    let md = std::fs::read_to_string(dir.path().join("reports/report.md")).unwrap();
    assert!(md.contains("| smoke, db |"), "{md}");

    // `list` selects the same way; the human report shows the tags.
    let out = clnrm(dir.path())
        .args(["list", "--tag", "db"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["tests/b.clnrm.toml::b-db", "tests/b.clnrm.toml::b-smoke-db"]
    );
    let out = clnrm(dir.path())
        .args(["run", "--force", "--tag", "db"])
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("::b-db [db]")
            && human.contains("::b-smoke-db [smoke, db]")
            && human.contains("(3 filtered out)"),
        "{human}"
    );
}

#[test]
fn duration_shards_balance_recorded_times_and_hash_shards_stay_put() {
    // Two slow scenarios where round-robin puts both in the first of two shards.
    let suite = |extra: &str| {
        file(&format!(
            "[[scenario]]\nname = \"slow-1\"\nrun = \"sleep 1\"\n\n[[scenario]]\nname = \"fast-1\"\nrun = \"true\"\n\n[[scenario]]\nname = \"slow-2\"\nrun = \"sleep 1\"\n\n[[scenario]]\nname = \"fast-2\"\nrun = \"true\"\n\n[[scenario]]\nname = \"fast-3\"\nrun = \"true\"\n\n[[scenario]]\nname = \"fast-4\"\nrun = \"true\"\n{extra}"
        ))
    };
    let dir = project(&[("tests/s.clnrm.toml", &suite(""))]);
    run_json(dir.path(), &["--save-timings"]).assert_passed();
    let saved = std::fs::read_to_string(dir.path().join(".clnrm/timings.json")).unwrap();
    let timings: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(timings["format"], "clnrm.timings.v1");
    assert!(
        timings["scenarios"]["tests/s.clnrm.toml::slow-1"]
            .as_u64()
            .unwrap()
            >= 1000
    );
    let ran = |args: &[&str]| -> Vec<String> {
        let run = run_json(dir.path(), &[&["--force"], args].concat());
        run.assert_passed();
        let mut names: Vec<String> = run.json["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "passed")
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let slow = |names: &[String]| names.iter().filter(|n| n.starts_with("slow")).count();
    let rr = ran(&["--partition", "1/2"]);
    assert_eq!(
        slow(&rr),
        2,
        "round-robin puts both slow ones first: {rr:?}"
    );
    let (d1, d2) = (
        ran(&["--partition", "duration:1/2"]),
        ran(&["--partition", "duration:2/2"]),
    );
    assert_eq!((slow(&d1), slow(&d2)), (1, 1), "{d1:?} {d2:?}");
    let mut all: Vec<String> = d1.iter().chain(&d2).cloned().collect();
    all.sort();
    assert_eq!(
        all.len(),
        6,
        "every scenario in exactly one shard: {d1:?} {d2:?}"
    );
    all.dedup();
    assert_eq!(all.len(), 6);

    // hash:K/N: adding scenarios moves none of the others.
    let shard_of =
        |name: &str, runs: &[Vec<String>]| runs.iter().position(|r| r.iter().any(|n| n == name));
    let before: Vec<Vec<String>> = (1..=3)
        .map(|k| ran(&["--partition", &format!("hash:{k}/3")]))
        .collect();
    std::fs::write(
        dir.path().join("tests/s.clnrm.toml"),
        suite("\n[[scenario]]\nname = \"new-1\"\nrun = \"true\"\n\n[[scenario]]\nname = \"new-2\"\nrun = \"true\"\n"),
    )
    .unwrap();
    let after: Vec<Vec<String>> = (1..=3)
        .map(|k| ran(&["--partition", &format!("hash:{k}/3")]))
        .collect();
    for name in ["slow-1", "slow-2", "fast-1", "fast-2", "fast-3", "fast-4"] {
        assert_eq!(
            shard_of(name, &before),
            shard_of(name, &after),
            "{name} moved"
        );
    }
    assert_eq!(after.iter().map(Vec::len).sum::<usize>(), 8);

    let out = clnrm(dir.path())
        .args(["run", "--partition", "size:1/2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode \"size\""));
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
fn a_scenario_waiting_for_its_spans_holds_no_worker_unless_fail_fast_or_serial() {
    // Nothing exports: each scenario waits the whole quiet time after its step.
    let settle = |names: &[&str]| {
        let mut body =
            String::from("[otel]\nexporter = \"otlp\"\nsettle_ms = 2500\nmax_wait_ms = 5000\n\n");
        for name in names {
            body.push_str(&format!(
                "[[scenario]]\nname = \"{name}\"\nrun = \"true\"\n\n"
            ));
        }
        project(&[("tests/settle.clnrm.toml", &file(&body))])
    };
    let first_end = |spans: &[(u64, u64)]| spans[0].1.min(spans[1].1);
    // Two workers run a and b; c and d start while those wait for their spans, and
    // e once one of them is done: no more wait than there are workers.
    let dir = settle(&["a", "b", "c", "d", "e"]);
    let run = run_json(dir.path(), &["--workers", "2", "--force"]);
    run.assert_passed();
    let spans = intervals(&run);
    assert!(
        spans[3].0 < first_end(&spans),
        "c, d waited for their spans: {spans:?}"
    );
    assert!(spans[4].0 >= first_end(&spans), "e did not wait: {spans:?}");
    // Under --fail-fast what their spans show could stop c: it waits.
    let dir = settle(&["a", "b", "c"]);
    let run = run_json(dir.path(), &["--workers", "2", "--force", "--fail-fast"]);
    run.assert_passed();
    let spans = intervals(&run);
    assert!(spans[2].0 >= first_end(&spans), "{spans:?}");
    // One worker is one scenario at a time.
    let run = run_json(dir.path(), &["--workers", "1", "--force"]);
    run.assert_passed();
    assert!(disjoint(&intervals(&run)), "{:?}", intervals(&run));
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

#[test]
fn a_scenario_with_both_run_and_steps_runs_run_first_then_the_steps_with_a_warning() {
    let dir = project(&[(
        "tests/both.clnrm.toml",
        &file(
            "[[scenario]]\nname = \"both\"\nrun = \"touch /tmp/first\"\n\n[[scenario.steps]]\nname = \"after\"\ncommand = [\"test\", \"-f\", \"/tmp/first\"]\n",
        ),
    )]);
    let out = clnrm(dir.path())
        .args(["validate"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[W0005]"), "{stderr}");
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    let steps = &scenario(&run, "both")["steps"];
    assert_eq!(steps[0]["name"], "run");
    assert_eq!(steps[1]["name"], "after");
    assert_eq!(steps[1]["status"], "passed");
}

#[test]
fn a_scenario_that_fails_once_then_passes_is_flaky_and_never_cached_as_passing() {
    // The count of attempts lives in a host directory: the first attempt fails, the
    // second passes. Each attempt also notes the container it ran in.
    let state = tempfile::tempdir().unwrap();
    let script = "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; \
                  hostname >> /state/hosts; echo attempt $n; test $n -ge 2 || { echo not yet >&2; exit 4; }";
    let body = format!(
        r#"[meta]
name = "f"
version = "1"

[service.app]
image = "{IMAGE}"
volumes = [{{ host_path = "{}", container_path = "/state" }}]

[[scenario]]
name = "flaky"
retries = 2

[[scenario.steps]]
name = "second time"
command = ["sh", "-c", '{script}']

[[scenario]]
name = "broken"

[[scenario.steps]]
name = "never"
command = ["sh", "-c", "echo no; exit 9"]
"#,
        state.path().display()
    );
    let dir = project(&[("tests/flaky.clnrm.toml", &body)]);
    let reports = dir.path().join("out");
    let reports_arg = reports.display().to_string();
    let run = run_json(
        dir.path(),
        &["--filter", "*::flaky", "--report-dir", &reports_arg],
    );
    run.assert_passed();
    let flaky = scenario(&run, "flaky");
    assert_eq!(flaky["status"], "flaky", "{flaky:#}");
    assert_eq!(run.json["summary"]["flaky"], 1);
    let attempts = flaky["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{flaky:#}");
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["reason"], "exit_code");
    assert_eq!(attempts[0]["steps"][0]["exit_code"], 4);
    assert_eq!(attempts[0]["steps"][0]["stderr"], "not yet\n");
    assert_eq!(attempts[1]["status"], "passed");
    assert_eq!(flaky["steps"][0]["stdout"], "attempt 2\n");
    let hosts = std::fs::read_to_string(state.path().join("hosts")).unwrap();
    let hosts: Vec<&str> = hosts.lines().collect();
    assert_eq!(hosts.len(), 2);
    assert_ne!(hosts[0], hosts[1], "the retry ran in the same container");

    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("flaky"))
        .unwrap();
    let failures: Vec<_> = case
        .children()
        .filter(|n| n.has_tag_name("flakyFailure"))
        .collect();
    assert_eq!(failures.len(), 1, "{junit}");
    assert_eq!(failures[0].attribute("type"), Some("exit_code"));
    assert!(
        !case.children().any(|n| n.has_tag_name("failure")),
        "{junit}"
    );

    // Not cached as passing: the next run runs it again, and --flaky-fails fails it.
    std::fs::remove_file(state.path().join("n")).unwrap();
    let run = run_json(dir.path(), &["--filter", "*::flaky", "--flaky-fails"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    assert_eq!(scenario(&run, "flaky")["status"], "flaky");

    // --retries for scenarios without their own: all attempts fail; the human report
    // shows each retry and the verdict, JUnit a rerunFailure per earlier attempt.
    let out = clnrm(dir.path())
        .args(["run", "--filter", "*::broken", "--retries", "2"])
        .args(["--report-dir", &reports_arg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(human.matches("RETRY").count(), 2, "{human}");
    assert!(human.contains("all 3 attempts failed"), "{human}");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<rerunFailure ").count(), 2, "{junit}");
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");

    // The human report of a flaky scenario shows the failed attempt.
    std::fs::remove_file(state.path().join("n")).unwrap();
    let out = clnrm(dir.path())
        .args(["run", "--filter", "*::flaky"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("FLAKY"), "{human}");
    assert!(human.contains("(flaky: attempt 1 of 2)"), "{human}");
    assert!(human.contains("    | not yet"), "{human}");
    assert!(human.contains("1 flaky"), "{human}");
}

#[test]
fn merged_shard_reports_equal_an_unsharded_run() {
    // Skewed durations, one failure: three duration shards, merged, say what one run says.
    let mut body = String::new();
    for (i, ms) in [900, 400, 200, 100, 50, 20, 10, 0, 0, 0, 0]
        .iter()
        .enumerate()
    {
        body.push_str(&format!(
            "[[scenario]]\nname = \"s{i:02}\"\nrun = \"sleep {}\"\n\n",
            *ms as f64 / 1000.0
        ));
    }
    body.push_str("[[scenario]]\nname = \"broken\"\nrun = \"sh -c 'exit 3'\"\n");
    let dir = project(&[("tests/skew.clnrm.toml", &file(&body))]);
    let whole = run_json(dir.path(), &["--save-timings"]);
    assert_eq!(whole.code, Some(1));
    let verdicts = |v: &Value| -> Vec<(String, String)> {
        v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let mut shard_reports = Vec::new();
    for k in 1..=3 {
        let out = dir.path().join(format!("shard-{k}"));
        let run = run_json(
            dir.path(),
            &[
                "--force",
                "--partition",
                &format!("duration:{k}/3"),
                "--report-dir",
                out.to_str().unwrap(),
            ],
        );
        assert!(run.code == Some(0) || run.code == Some(1), "{}", run.stderr);
        shard_reports.push(out.join("report.json"));
    }
    std::fs::remove_file(dir.path().join(".clnrm/timings.json")).unwrap();
    let merged_dir = dir.path().join("merged");
    let out = clnrm(dir.path())
        .args(["report", "merge", "--out", merged_dir.to_str().unwrap()])
        .args(&shard_reports)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "each scenario in exactly one shard: {stderr}"
    );
    assert!(stderr.contains("12 scenarios, 11 passed"), "{stderr}");
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(merged_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(verdicts(&merged), verdicts(&whole.json));
    let junit = std::fs::read_to_string(merged_dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    assert_eq!(doc.root_element().attribute("tests"), Some("12"));
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    let md = std::fs::read_to_string(merged_dir.join("report.md")).unwrap();
    assert!(md.contains("`tests/skew.clnrm.toml::broken`"), "{md}");
    let timings: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".clnrm/timings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(timings["scenarios"].as_object().unwrap().len(), 12);
    assert!(
        timings["scenarios"]["tests/skew.clnrm.toml::s00"]
            .as_u64()
            .unwrap()
            >= 900
    );

    // What is not a report is refused, naming the file.
    std::fs::write(dir.path().join("junk.json"), "{\"run_id\": 3}").unwrap();
    let out = clnrm(dir.path())
        .args(["report", "merge", "--out", "x", "junk.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("junk.json: \"run_id\" is not a string"),
        "{stderr}"
    );
}

#[test]
fn output_snapshots_go_new_then_accepted_then_matched_then_changed_with_a_diff() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("text"), "alpha\nbeta\ngamma\n").unwrap();
    let body = format!(
        r#"[meta]
name = "s"
version = "1"

[service.app]
image = "{IMAGE}"
volumes = [{{ host_path = "{}", container_path = "/state", read_only = true }}]

[snapshot]
redact = {{ "id=[0-9]+" = "id=[id]" }}

[[scenario]]
name = "list orders"

[[scenario.steps]]
name = "list"
command = ["sh", "-c", "echo order id=$$; cat /state/text"]
snapshot = true
"#,
        state.path().display()
    );
    let dir = project(&[("tests/snap.clnrm.toml", &body)]);
    let step = |run: &Run| scenario(run, "list orders")["steps"][0].clone();

    // New: the step fails and the output waits in .snap.new, in a directory named
    // after the scenario id (sanitised, and hashed as it is not a plain name).
    let run = run_json(dir.path(), &[]);
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join(".clnrm/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1);
    let name = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("tests_snap.clnrm.toml__list_orders-"),
        "{name}"
    );
    let snap = dirs[0].join("list.snap");
    let pending = dirs[0].join("list.snap.new");
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    assert_eq!(step(&run)["reason"], "snapshot");
    assert_eq!(step(&run)["snapshot"]["outcome"], "new");
    assert!(pending.exists() && !snap.exists());

    // Review lists it with its content, then accepts it.
    let out = clnrm(dir.path())
        .args(["snapshots", "review"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&format!("new: .clnrm/snapshots/{name}/list.snap")),
        "{listed}"
    );
    assert!(listed.contains("+order id=[id]"), "{listed}");
    let out = clnrm(dir.path())
        .args(["snapshots", "review", "--accept"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(snap.exists() && !pending.exists());
    let saved = std::fs::read_to_string(&snap).unwrap();
    assert!(
        saved.ends_with("order id=[id]\nalpha\nbeta\ngamma\n"),
        "{saved}"
    );

    // Matched (another process id, redacted), then cached while nothing changed.
    let run = run_json(dir.path(), &["--force"]);
    run.assert_passed();
    assert_eq!(step(&run)["snapshot"]["outcome"], "matched");
    let run = run_json(dir.path(), &[]);
    assert_eq!(scenario(&run, "list orders")["status"], "cached");

    // Changed: fails with a unified diff, in JSON and in the human report.
    std::fs::write(state.path().join("text"), "alpha\nBETA\ngamma\n").unwrap();
    let run = run_json(dir.path(), &["--force"]);
    assert_eq!(run.code, Some(1));
    let s = step(&run);
    assert_eq!(s["snapshot"]["outcome"], "changed", "{s:#}");
    let diff = s["snapshot"]["diff"].as_str().unwrap();
    assert!(diff.contains("-beta\n+BETA\n"), "{diff}");
    assert!(pending.exists());
    let out = clnrm(dir.path()).args(["run", "--force"]).output().unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("snapshot diff:") && human.contains("    +BETA"),
        "{human}"
    );

    // Rejected: the old snapshot stays and still fails the new output.
    clnrm(dir.path())
        .args(["snapshots", "review", "--reject"])
        .output()
        .unwrap();
    assert!(!pending.exists());
    assert_eq!(std::fs::read_to_string(&snap).unwrap(), saved);
    let run = run_json(dir.path(), &["--force"]);
    assert_eq!(step(&run)["snapshot"]["outcome"], "changed");
    assert!(pending.exists());

    // --update-snapshots writes it; the snapshot file is part of the cache key.
    run_json(dir.path(), &["--force", "--update-snapshots"]).assert_passed();
    assert!(
        std::fs::read_to_string(&snap)
            .unwrap()
            .ends_with("BETA\ngamma\n")
    );
    assert_eq!(
        scenario(&run_json(dir.path(), &[]), "list orders")["status"],
        "cached"
    );
    std::fs::write(&snap, saved).unwrap();
    let run = run_json(dir.path(), &[]);
    assert_eq!(
        scenario(&run, "list orders")["status"],
        "failed",
        "an edited snapshot is seen"
    );
}

#[test]
fn bench_times_rounds_per_scenario_and_step_and_compares_with_a_saved_run() {
    let timed = file(
        "[[scenario]]\nname = \"timed\"\ntags = [\"bench\"]\n\n[[scenario.steps]]\nname = \"wait\"\ncommand = [\"sleep\", \"0.3\"]\n\n[[scenario.steps]]\nname = \"quick\"\ncommand = [\"true\"]\n",
    );
    let other = file(
        "[[scenario]]\nname = \"other\"\nrun = \"true\"\n\n[[scenario]]\nname = \"broken\"\ntags = [\"broken\"]\nrun = \"sh -c 'exit 2'\"\n",
    );
    let dir = project(&[
        ("tests/t.clnrm.toml", &timed),
        ("tests/o.clnrm.toml", &other),
    ]);
    let bench = |args: &[&str]| clnrm(dir.path()).arg("bench").args(args).output().unwrap();
    let out = bench(&[
        "--tag", "bench", "--warmup", "1", "--rounds", "3", "--format", "json", "--save", "base",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["warmup"].as_u64(), v["rounds"].as_u64()),
        (Some(1), Some(3))
    );
    let scenarios = v["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "--tag selects across files: {v:#}");
    let s = &scenarios[0];
    assert_eq!(s["id"], "tests/t.clnrm.toml::timed");
    assert_eq!(s["stats"]["n"], 3);
    assert_eq!(s["failed"], 0);
    let stat = |v: &Value, k: &str| v[k].as_f64().unwrap();
    // A scenario of known duration: each run sleeps 300 ms.
    assert!(stat(&s["stats"], "min") >= 300.0, "{s:#}");
    let wait = &s["steps"][0];
    assert_eq!(wait["name"], "wait");
    assert!(stat(&wait["stats"], "median") >= 300.0, "{s:#}");
    assert_eq!(wait["stats"]["n"], 3);
    assert!(stat(&s["steps"][1]["stats"], "median") < 300.0);
    let saved = dir.path().join(".clnrm/bench/base.json");
    assert!(saved.exists());

    // A saved run twice as fast makes this one a regression; a loose threshold not.
    let mut base: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let median = stat(&base["scenarios"][0]["stats"], "median");
    base["scenarios"][0]["stats"]["median"] = serde_json::json!(median / 2.0);
    std::fs::write(&saved, base.to_string()).unwrap();
    let out = bench(&[
        "--tag",
        "bench",
        "--warmup",
        "0",
        "--rounds",
        "1",
        "--compare",
        "base",
    ]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{human}");
    assert!(human.contains("REGRESSION"), "{human}");
    let out = bench(&[
        "--tag",
        "bench",
        "--warmup",
        "0",
        "--rounds",
        "1",
        "--compare",
        "base",
        "--threshold",
        "500",
        "--format",
        "markdown",
    ]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{md}");
    assert!(md.contains("| `tests/t.clnrm.toml::timed` |"), "{md}");

    // A scenario that fails is reported and fails the bench.
    let out = bench(&["--tag", "broken", "--warmup", "0", "--rounds", "2"]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{human}");
    assert!(human.contains("FAILED in 2 of 2 rounds"), "{human}");
    let out = bench(&["--compare", "no-such"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--format github`: an `::error` at the line and column of each failed step (in a
/// template, the template's line) and of each unmet expectation, in GitHub's
/// workflow-command syntax, and the Markdown report appended to the job summary.
#[test]
fn github_format_annotates_failed_steps_and_expectations_at_their_lines() {
    let plain = format!(
        "[meta]\nname = \"gh\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n\
         [[scenario]]\nname = \"broken\"\n\n[[scenario.steps]]\nname = \"first\"\ncommand = [\"true\"]\n\n\
         [[scenario.steps]]\nname = \"second\"\ncommand = [\"sh\", \"-c\", \"echo 'no: 100%' >&2; exit 4\"]\n"
    );
    let quiet = format!(
        "[meta]\nname = \"q\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n\
         [[scenario]]\nname = \"quiet\"\n\n[[scenario.steps]]\nname = \"emit\"\n\
         command = [\"sh\", \"-c\", '''echo '{{\"name\":\"other\",\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"00f067aa0ba902b7\"}}' ''']\n\n\
         [[expect.span]]\nname = \"checkout\"\n"
    );
    // Two template lines render to nothing, so rendered and template lines differ.
    let template = format!(
        "{{# a comment line -#}}\n{{% set code = 5 -%}}\n[meta]\nname = \"t\"\nversion = \"1\"\n\n\
         [service.app]\nimage = \"{IMAGE}\"\n\n[[scenario]]\nname = \"templated\"\n\n\
         [[scenario.steps]]\nname = \"boom\"\ncommand = [\"sh\", \"-c\", \"exit {{{{ code }}}}\"]\n"
    );
    let dir = project(&[
        ("tests/a.clnrm.toml", &plain),
        ("tests/q.clnrm.toml", &quiet),
        ("tests/t.clnrm.toml.tera", &template),
    ]);
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let out = clnrm(dir.path())
        .args(["run", "--format", "github", "tests/"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
            .to_string()
    };
    // `name = "second"` is line 16; its value starts at column 8.
    let step = find("::error file=tests/a.clnrm.toml,line=16,col=8,title=broken › step second::");
    assert!(
        step.contains("exit code 4, expected 0%0A%0Ano: 100%25"),
        "{step}"
    );
    // The template's own line 14 (line 12 of the rendered text).
    find("::error file=tests/t.clnrm.toml.tera,line=14,col=8,title=templated › step boom::");
    let expectation = find("::error file=tests/q.clnrm.toml,line=");
    assert!(
        expectation.contains("title=quiet › expectation::"),
        "{expectation}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    // Every line is a workflow command.
    for l in &lines {
        assert!(
            l.starts_with("::error file=") && l.contains(",title="),
            "{l}"
        );
    }
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("# earlier step\n"),
        "appended: {written}"
    );
    assert!(
        written.contains("broken") && written.contains("templated"),
        "{written}"
    );
}

#[test]
fn a_failed_step_is_reported_where_it_is_written_in_every_format_and_in_a_template() {
    // Two steps with one name: the second fails, and its own line is the one shown.
    let body = "[[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\nname = \"one\"\ncommand = [\"true\"]\n\n[[scenario.steps]]\nname = \"one\"\ncommand = [\"sh\", \"-c\", \"echo boom; exit 3\"]\n";
    let text = file(body);
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "name = \"one\"")
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{text}"));
    // The same as a template, one line above the step writing two: the template's
    // line is shown, not the rendered one.
    let template = text.replace(
        "[[scenario]]\n",
        "{% for i in [1, 2] %}# line {{ i }}\n{% endfor %}[[scenario]]\n",
    );
    let dir = project(&[
        ("tests/a.clnrm.toml", &text),
        ("tests/t.clnrm.toml.tera", &template),
    ]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    for (id, file_name, want) in [
        ("tests/a.clnrm.toml::s", "tests/a.clnrm.toml", line),
        (
            "tests/t.clnrm.toml.tera::s",
            "tests/t.clnrm.toml.tera",
            line + 1,
        ),
    ] {
        let s = run.json["scenarios"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id))
            .unwrap_or_else(|| panic!("{:#}", run.json));
        assert_eq!(
            s["steps"][0].get("at"),
            None,
            "a passing step has none: {s:#}"
        );
        let at = &s["steps"][1]["at"];
        assert_eq!(at["file"], file_name, "{s:#}");
        assert_eq!(at["line"], want, "{s:#}");
        assert_eq!(at["col"], 8, "{s:#}");
    }
    let human = clnrm(dir.path())
        .args(["run", "--force", "tests/a.clnrm.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8_lossy(&human.stdout);
    assert!(
        out.contains(&format!("  at:      tests/a.clnrm.toml:{line}:8")),
        "{out}"
    );
    let github = clnrm(dir.path())
        .args(["run", "--force", "--format", "github", "tests/a.clnrm.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8_lossy(&github.stdout);
    assert!(
        out.contains(&format!(
            "::error file=tests/a.clnrm.toml,line={line},col=8,"
        )),
        "{out}"
    );
}
