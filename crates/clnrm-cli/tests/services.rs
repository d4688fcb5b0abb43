//! Services of real systems end to end against the real engine (SPEC §7.1): start
//! order under each `depends_on` condition, one-shots, a scenario's own `services`,
//! and a service that crashes reported with its exit code and log. The services
//! write what they do into a bind-mounted directory, which the test reads after the
//! run.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::project;
use engine::IMAGE;
use runs::{run_json, scenario};
use std::path::Path;

/// A file whose services mount `shared` at `/shared`; `services` holds their tables
/// without `image` and `volumes`, keyed `[service.<id>]`.
fn with_shared(shared: &Path, services: &[(&str, &str)], scenarios: &str) -> String {
    let mut out = String::from("[meta]\nname = \"t\"\nversion = \"1\"\n\n");
    for (id, body) in services {
        out.push_str(&format!(
            "[service.{id}]\nimage = \"{IMAGE}\"\nvolumes = [{{ host_path = \"{}\", container_path = \"/shared\" }}]\n{body}\n\n",
            shared.display()
        ));
    }
    out.push_str(scenarios);
    out
}

/// A service command: append `what` to the shared log, then do `then`.
fn logs(what: &str, then: &str) -> String {
    format!("args = [\"sh\", \"-c\", \"echo {what} >> /shared/log; {then}\"]")
}

fn shared_log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("shared/log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn position(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("{what} not in {log:?}"))
}

#[test]
fn services_start_in_dependency_order_under_each_condition() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let db = format!(
        "{}\nhealth_check = {{ cmd = [\"test\", \"-f\", \"/shared/db-ready\"], interval_ms = 100 }}",
        logs(
            "db-start",
            "sleep 1; echo db-healthy >> /shared/log; touch /shared/db-ready; exec sleep 3600"
        )
    );
    let migrate = format!(
        "{}\ndepends_on = {{ db = \\\"healthy\\\" }}",
        logs("migrate-start", "sleep 1; echo migrate-done >> /shared/log")
    )
    .replace("\\\"", "\"");
    let app = format!(
        "{}\ndepends_on = {{ migrate = \"completed\", db = \"healthy\" }}",
        logs("app", "exec sleep 3600")
    );
    // The list form: `healthy`, since db has a health check.
    let side = format!("{}\ndepends_on = [\"db\"]", logs("side", "exec sleep 3600"));
    let last = format!(
        "{}\ndepends_on = {{ app = \"started\" }}",
        logs("last", "exec sleep 3600")
    );
    let text = with_shared(
        &shared,
        &[
            ("db", &db),
            ("migrate", &migrate),
            ("app", &app),
            ("side", &side),
            ("last", &last),
        ],
        // A dependent's /etc/hosts names what started before it: its first look-ups
        // do not wait on the engine's DNS (Podman's reloads on each start).
        "[[scenario]]\nname = \"ordered\"\nservice = \"app\"\nrun = \"sh -c 'cat /shared/log; grep -w db /etc/hosts'\"\n",
    );
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/order.clnrm.toml"), text).unwrap();
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    let log = shared_log(dir.path());
    let at = |what| position(&log, what);
    assert!(at("db-start") < at("db-healthy"), "{log:?}");
    // healthy: nothing waiting on db starts before its health check passed.
    assert!(at("db-healthy") < at("migrate-start"), "{log:?}");
    assert!(at("db-healthy") < at("side"), "{log:?}");
    // completed: app waits for the one-shot to exit.
    assert!(at("migrate-done") < at("app"), "{log:?}");
    // started: last comes after app started.
    assert!(at("app") < at("last"), "{log:?}");
    // The step saw the services' log as it was when the scenario ran.
    let seen = scenario(&run, "ordered")["steps"][0]["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(seen.contains("migrate-done\n"), "{seen}");
}

#[test]
fn a_failing_one_shot_fails_the_scenario_with_its_code_and_log_and_its_dependents_never_start() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let migrate = logs(
        "migrate-start",
        "echo 'migration 0042 failed: relation orders does not exist'; exit 3",
    );
    let app = format!(
        "{}\ndepends_on = {{ migrate = \"completed\" }}",
        logs("app", "exec sleep 3600")
    );
    let text = with_shared(
        &shared,
        &[("migrate", &migrate), ("app", &app)],
        "[[scenario]]\nname = \"migrated\"\nservice = \"app\"\nrun = \"true\"\n",
    );
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/oneshot.clnrm.toml"), text).unwrap();
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let sc = scenario(&run, "migrated");
    assert_eq!(sc["status"], "failed");
    assert_eq!(sc["reason"], "service_exited");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("service \"migrate\" exited with code 3"),
        "{message}"
    );
    assert!(
        message.contains("migration 0042 failed: relation orders does not exist"),
        "{message}"
    );
    assert_eq!(shared_log(dir.path()), vec!["migrate-start".to_owned()]);
    // The time the start-up took is the scenario's, not 0.
    assert_eq!(sc["duration_ms"], sc["setup_ms"], "{sc:#}");
    // (Starting a container never takes 0 ms: this is a presence check, not a bound.)
    assert_ne!(sc["setup_ms"], 0, "{sc:#}");
}

#[test]
fn a_service_that_crashes_at_boot_is_reported_with_its_exit_code_and_log() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let app = format!(
        "{}\nhealth_check = {{ cmd = [\"true\"], interval_ms = 100 }}",
        logs(
            "app",
            "echo 'FATAL: could not connect to db:5432' >&2; exit 2"
        )
    );
    let text = with_shared(
        &shared,
        &[("app", &app)],
        "[[scenario]]\nname = \"boot\"\nservice = \"app\"\nrun = \"true\"\n",
    );
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/crash.clnrm.toml"), text).unwrap();
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let sc = scenario(&run, "boot");
    assert_eq!(sc["reason"], "service_exited");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("service \"app\" exited with code 2 before it was healthy"),
        "{message}"
    );
    assert!(
        message.contains("FATAL: could not connect to db:5432"),
        "{message}"
    );
    assert!(!message.contains("is not running"), "{message}");
}

#[test]
fn a_scenario_starts_only_its_services_and_their_dependencies() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let a = logs("a", "exec sleep 3600");
    let b = format!("{}\ndepends_on = [\"c\"]", logs("b", "exec sleep 3600"));
    let c = logs("c", "exec sleep 3600");
    let text = with_shared(
        &shared,
        &[("a", &a), ("b", &b), ("c", &c)],
        "[[scenario]]\nname = \"only-b\"\nservices = [\"b\"]\nservice = \"b\"\nrun = \"true\"\n",
    );
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/own.clnrm.toml"), text).unwrap();
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    let mut log = shared_log(dir.path());
    log.sort();
    assert_eq!(log, vec!["b".to_owned(), "c".to_owned()]);
}

/// A file with service `app` running `script` (its log) and an agent service
/// `client` where the scenario's steps run.
fn app_and_client(script: &str, scenario: &str) -> String {
    format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nargs = [\"sh\", \"-c\", {}]\n\n[service.client]\nimage = \"{IMAGE}\"\n\n{scenario}",
        runs::toml_string(script)
    )
}

#[test]
fn a_service_that_exits_during_the_steps_fails_the_scenario_as_service_exited() {
    let text = app_and_client(
        "echo serving; sleep 1; echo 'panic: assignment to entry in nil map' >&2; exit 1",
        "[[scenario]]\nname = \"crash\"\nservice = \"client\"\n\n[[scenario.steps]]\nname = \"wait\"\ncommand = [\"sleep\", \"3\"]\n",
    );
    let dir = project(&[("tests/crash.clnrm.toml", &text)]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let sc = scenario(&run, "crash");
    assert_eq!(sc["status"], "failed");
    assert_eq!(sc["reason"], "service_exited");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("service \"app\" exited with code 1 while step \"wait\" was running"),
        "{message}"
    );
    assert!(
        message.contains("panic: assignment to entry in nil map"),
        "{message}"
    );
    let app = &sc["services"][0];
    assert_eq!(app["id"], "app");
    assert_eq!(app["exit_code"], 1);
    assert_eq!(app["oom_killed"], false);
}

#[test]
fn log_tails_appear_in_human_and_json_reports_and_whole_logs_are_saved() {
    // 30 lines: the tail holds the last 20, the artifact all of them.
    let text = app_and_client(
        "i=1; while [ $i -le 30 ]; do echo \"app line $i\"; i=$((i+1)); done; exec sleep 3600",
        "[[scenario]]\nname = \"fails\"\nservice = \"client\"\n\n[[scenario.steps]]\nname = \"settle\"\ncommand = [\"sleep\", \"1\"]\n\n[[scenario.steps]]\nname = \"boom\"\ncommand = [\"sh\", \"-c\", \"exit 4\"]\n",
    );
    let dir = project(&[("tests/logs.clnrm.toml", &text)]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let sc = scenario(&run, "fails");
    let tail = sc["services"][0]["log_tail"].as_str().unwrap_or_default();
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 20, "{tail}");
    assert!(lines[0].ends_with(" app line 11"), "{tail}");
    assert!(lines[19].ends_with(" app line 30"), "{tail}");
    // Each line carries its time.
    assert!(
        lines[0].starts_with("20") && lines[0].contains('T'),
        "{tail}"
    );
    let saved: Vec<_> = std::fs::read_dir(dir.path().join(".clnrm/artifacts"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".app.log"))
        .collect();
    assert_eq!(saved.len(), 1);
    let whole = std::fs::read_to_string(saved[0].path()).unwrap_or_default();
    assert_eq!(whole.lines().count(), 30, "{whole}");
    // The human report shows the tail under the failure.
    let out = common::clnrm(dir.path())
        .args(["run", "--force"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("service app (clnrm/busybox:latest, container "),
        "{human}"
    );
    assert!(human.contains("app line 30"), "{human}");
}

#[test]
fn log_expectations_hold_both_ways() {
    let script = "echo 'listening on :8080'; echo 'migrated 3 tables'; exec sleep 3600";
    let scenario_text = |name: &str, expectations: &str| {
        format!(
            "[[scenario]]\nname = \"{name}\"\nservice = \"client\"\n\n[[scenario.steps]]\nname = \"settle\"\ncommand = [\"sleep\", \"1\"]\n\n{expectations}\n"
        )
    };
    let body = [
        scenario_text(
            "met",
            "[[scenario.expect.log]]\nservice = \"app\"\ncontains = \"listening on :8080\"\n\n[[scenario.expect.log]]\nservice = \"app\"\nregex = '^migrated \\d+ tables$'\n\n[[scenario.expect.log]]\nservice = \"app\"\ncontains = \"ERROR\"\nabsent = true\n",
        ),
        scenario_text(
            "missing",
            "[[scenario.expect.log]]\nservice = \"app\"\ncontains = \"connected to db\"\n",
        ),
        scenario_text(
            "present",
            "[[scenario.expect.log]]\nservice = \"app\"\nregex = 'listening'\nabsent = true\n",
        ),
    ]
    .join("\n");
    let dir = project(&[("tests/logs.clnrm.toml", &app_and_client(script, &body))]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    assert_eq!(scenario(&run, "met")["status"], "passed", "{:#}", run.json);
    let missing = scenario(&run, "missing");
    assert_eq!(missing["unmet"][0]["kind"], "log", "{missing:#}");
    let found = missing["unmet"][0]["found"].as_str().unwrap_or_default();
    assert!(
        found.contains("not in its log; it ends: migrated 3 tables"),
        "{found}"
    );
    let present = scenario(&run, "present");
    let found = present["unmet"][0]["found"].as_str().unwrap_or_default();
    assert!(found.contains("the line: listening on :8080"), "{found}");
}

#[test]
fn a_tmpfs_is_in_memory_with_its_options_bounded_and_each_scenarios_own() {
    let service = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.db]\nimage = \"{IMAGE}\"\ntmpfs = [\"/data:size=1m,mode=700\"]\n\n"
    );
    // Each scenario writes a file of its own and sees no other's; the mount is the
    // engine's tmpfs with the options written; past its size, a write fails.
    let table = |name: &str| {
        format!(
            "[[scenario]]\nname = \"{name}\"\nservice = \"db\"\n\n\
             [[scenario.steps]]\nname = \"mounted\"\ncommand = [\"grep\", \" /data \", \"/proc/mounts\"]\nexpected_output_regex = \"^tmpfs /data tmpfs [^ ]*size=1024k[^ ]*mode=700\"\n\n\
             [[scenario.steps]]\nname = \"private\"\ncommand = [\"sh\", \"-c\", \"ls -A /data; touch /data/{name}\"]\nexpected_output_regex = \"\\\\A\\\\z\"\n\n\
             [[scenario.steps]]\nname = \"bounded\"\ncommand = [\"dd\", \"if=/dev/zero\", \"of=/data/big\", \"bs=1024\", \"count=2048\"]\nexpected_exit_code = 1\n\n"
        )
    };
    let text = format!("{service}{}{}", table("one"), table("two"));
    let dir = project(&[("tests/tmpfs.clnrm.toml", &text)]);
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    for name in ["one", "two"] {
        assert_eq!(scenario(&run, name)["status"], "passed", "{:#}", run.json);
    }
}
