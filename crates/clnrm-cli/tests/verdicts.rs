//! Verdicts that hold (SPEC §13), end to end against the real engine: every failure
//! of a scenario reported (unmet expectations beside a baseline difference),
//! baselines that record what passed (cached scenarios included, failed ones never,
//! each left-out one named with why), and `diff` that runs only what it must.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use runs::{Run, file, run_json, scenario, toml_string};

/// A scenario `name` (tagged `tag`) printing one span `root` with attribute
/// `version`, then exiting `exit`; `expect` is added to the scenario.
fn emitting(name: &str, tag: &str, version: &str, exit: u8, expect: &str) -> String {
    let script = format!(
        r#"r=$RANDOM$RANDOM; echo "{{\"name\":\"root\",\"trace_id\":\"t$r\",\"span_id\":\"a$r\",\"attributes\":{{\"version\":\"{version}\"}}}}"; exit {exit}"#
    );
    format!(
        "[[scenario]]\nname = \"{name}\"\ntags = [\"{tag}\"]\n\n[[scenario.steps]]\nname = \"emit\"\ncommand = [\"sh\", \"-c\", {}]\n{expect}\n",
        toml_string(&script)
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unmet_expectation_is_reported_beside_a_baseline_difference() {
    let body = |version: &str, expect: &str| {
        file(&format!(
            "[otel]\nexporter = \"stdout\"\n\n{}",
            emitting("both", "t", version, 0, expect)
        ))
    };
    let dir = project(&[("tests/b.clnrm.toml", &body("v1", ""))]);
    run_json(dir.path(), &["--update-baseline"]).assert_passed();
    // The tree changes and an expectation fails: both are said.
    let expect = "\n[[scenario.expect.span]]\nname = \"checkout\"\n";
    std::fs::write(dir.path().join("tests/b.clnrm.toml"), body("v2", expect))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let s = scenario(&run, "both");
    assert_eq!(
        s["reason"], "expectation",
        "the first of expectation, diff: {s:#}"
    );
    assert_eq!(s["unmet"].as_array().map(Vec::len), Some(1), "{s:#}");
    assert_eq!(s["unmet"][0]["line"], 19, "where it is written: {s:#}");
    assert_eq!(s["diff"]["counts"]["changed"], 1, "{s:#}");
    let message = s["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("checkout") && message.contains("span tree differs from the baseline"),
        "{message}"
    );
    // The human report lists the expectation once and the difference once.
    let out = clnrm(dir.path())
        .args(["run", "--force"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let human = String::from_utf8_lossy(&out.stdout);
    let detail = human.split("--- ").nth(1).unwrap_or_default();
    assert_eq!(detail.matches("[[expect.span]]").count(), 1, "{human}");
    assert!(detail.contains("expectation unmet:"), "{human}");
    assert!(
        detail.contains("span tree differs from the baseline: 1 changed")
            && detail.contains("version: \"v1\" → \"v2\""),
        "{human}"
    );
    // GitHub annotations: one for the expectation, one for the baseline.
    let out = clnrm(dir.path())
        .args(["run", "--force", "--format", "github"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let gh = String::from_utf8_lossy(&out.stdout);
    assert!(
        gh.contains("both › expectation") && gh.contains("both › baseline"),
        "{gh}"
    );
}

fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn baseline_ids(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(".clnrm/trace.json")).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    doc["scenarios"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn update_baseline_records_cached_scenarios_never_failed_ones_and_says_which_it_left_out() {
    let suite = file(&format!(
        "[otel]\nexporter = \"stdout\"\n\n{}{}{}",
        emitting("one", "a", "v1", 0, ""),
        emitting("two", "b", "v1", 0, ""),
        emitting("broken", "a", "v1", 1, ""),
    ));
    let dir = project(&[("tests/s.clnrm.toml", &suite)]);
    let first = run_json(dir.path(), &[]);
    assert_eq!(first.code, Some(1));
    // A suite whose passing scenarios are all cached records them from their spans.
    let cached = run_json(dir.path(), &["--update-baseline"]);
    assert_eq!(
        statuses(&cached),
        vec![
            ("one".into(), "cached".into()),
            ("two".into(), "cached".into()),
            ("broken".into(), "failed".into())
        ]
    );
    assert!(
        cached
            .stderr
            .contains("recorded the span trees of 2 scenarios"),
        "{}",
        cached.stderr
    );
    assert!(
        cached.stderr.contains("not recorded (1):")
            && cached
                .stderr
                .contains("tests/s.clnrm.toml::broken: it failed (exit_code)"),
        "{}",
        cached.stderr
    );
    assert_eq!(
        baseline_ids(dir.path()),
        ["tests/s.clnrm.toml::one", "tests/s.clnrm.toml::two"]
    );
    // `diff --update-baseline` records what passed, and names the failed one.
    std::fs::remove_file(dir.path().join(".clnrm/trace.json")).unwrap_or_else(|e| panic!("{e}"));
    let out = clnrm(dir.path())
        .args(["diff", "--update-baseline", "--tag", "a"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("recorded the span trees of 1 scenario"),
        "{err}"
    );
    assert!(
        err.contains("tests/s.clnrm.toml::broken: its last run failed (exit_code)"),
        "{err}"
    );
    assert_eq!(baseline_ids(dir.path()), ["tests/s.clnrm.toml::one"]);
}

#[test]
fn diff_runs_only_what_collects_spans_and_has_not_run_and_takes_tags() {
    let with_spans = file(&format!(
        "[otel]\nexporter = \"stdout\"\n\n{}{}",
        emitting("one", "a", "v1", 0, ""),
        emitting("two", "b", "v1", 0, ""),
    ));
    // A scenario that prints no span: once it ran, it is not run again.
    let quiet = file("[[scenario]]\nname = \"quiet\"\ntags = [\"b\"]\nrun = \"true\"\n");
    // A file that collects no spans is never run by diff.
    let none =
        file("[otel]\nexporter = \"none\"\n\n[[scenario]]\nname = \"off\"\nrun = \"true\"\n");
    let dir = project(&[
        ("tests/s.clnrm.toml", &with_spans),
        ("tests/quiet.clnrm.toml", &quiet),
        ("tests/none.clnrm.toml", &none),
    ]);
    let out = clnrm(dir.path())
        .args(["diff", "--tag", "a"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&out);
    assert!(
        err.contains("running 1 scenario without saved spans first"),
        "{err}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tests/s.clnrm.toml::one:"), "{text}");
    assert!(
        !text.contains("::two") && !text.contains("::quiet"),
        "{text}"
    );
    let out = clnrm(dir.path())
        .args([
            "diff",
            "--skip-tag",
            "a",
            "--filter",
            "*::two",
            "--filter",
            "*::quiet",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stderr_of(&out).contains("running 2 scenarios"),
        "{}",
        stderr_of(&out)
    );
    // Everything that collects spans has run: nothing runs again.
    let again = clnrm(dir.path())
        .arg("diff")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&again);
    assert!(!err.contains("running"), "no run: {err}");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("tests/quiet.clnrm.toml::quiet: no baseline"),
        "{text}"
    );
    assert!(
        text.contains("tests/none.clnrm.toml::off: no baseline"),
        "{text}"
    );
}

/// A web app traced by OpenTelemetry's standard WSGI instrumentation (`web.py` of the
/// orders example's app, built from `images/orders-app/`: see [`wsgi_project`]), probed by a
/// health check that sends it `GET /health`, beside a second service (so the scenario
/// has a network of its own), reached by two HTTP steps; `extra` is added to the file.
fn wsgi_file(extra: &str) -> String {
    format!(
        r#"[meta]
name = "web"
version = "1"

[otel]
exporter = "otlp"

[service.web]
build = "../images/orders-app"
args = ["python3", "-u", "/app/web.py"]
env = {{ OTEL_SERVICE_NAME = "web", OTEL_BSP_SCHEDULE_DELAY = "100" }}
health_check = {{ cmd = ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"], interval_ms = 200, retries = 100 }}

[service.side]
image = "{}"

[[scenario]]
name = "hello twice"

[[scenario.steps]]
name = "first"
http = {{ url = "http://web:8000/hello" }}

[[scenario.steps]]
name = "second"
http = {{ url = "http://web:8000/hello" }}

[expect.hermeticity]
no_external_services = true

[expect.counts]
by_name = {{ "GET*" = {{ eq = 2 }} }}
{extra}"#,
        engine::IMAGE
    )
}

/// A project holding `tests/web.clnrm.toml` and the orders app's source (with its
/// wheels) in `images/orders-app/`, and what removes the images built for it.
fn wsgi_project(extra: &str) -> (tempfile::TempDir, common::RemoveBuilt) {
    let dir = project(&[("tests/web.clnrm.toml", &wsgi_file(extra))]);
    common::copy_context("images/orders-app", dir.path());
    let clean = common::RemoveBuilt::of(dir.path());
    (dir, clean)
}

#[test]
fn a_real_instrumented_server_gives_quiet_baselines_and_clnrm_is_inside_the_scenario() {
    let (dir, _clean) = wsgi_project("");
    // Probes are not the scenario's (counts), requests from clnrm come from inside.
    let first = run_json(dir.path(), &["--update-baseline"]);
    first.assert_passed();
    let saved = std::fs::read_to_string(dir.path().join(".clnrm/trace.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(saved.contains("\"GET /hello\""), "{saved}");
    assert!(!saved.contains("/health"), "no probe in the tree: {saved}");
    assert!(!saved.contains("net.peer"), "per-connection: {saved}");
    assert!(
        saved.contains("\"http.server_name\": \"web\""),
        "the container's host name is stored as its service: {saved}"
    );
    // New containers, new host names, new addresses, new subnet: the same tree.
    for _ in 0..2 {
        let again = run_json(dir.path(), &["--force"]);
        again.assert_passed();
        assert!(
            scenario(&again, "hello twice")["diff"].is_null(),
            "{:#}",
            again.json
        );
    }
    // A baseline recorded before an attribute was ignored: no `x → ∅`.
    let mut doc: serde_json::Value = serde_json::from_str(&saved).unwrap_or_default();
    let tree = doc["scenarios"]["tests/web.clnrm.toml::hello twice"]["roots"]
        .as_array_mut()
        .and_then(|roots| roots.iter_mut().find(|r| r["name"] == "clnrm.http first"))
        .and_then(|r| r["children"][0]["attributes"].as_object_mut())
        .map(|attrs| {
            attrs.insert("net.peer.port".into(), serde_json::json!(51070));
            attrs.insert("http.flavor".into(), serde_json::json!("1.0"));
        });
    assert!(tree.is_some(), "{saved}");
    std::fs::write(
        dir.path().join(".clnrm/trace.json"),
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join(".clnrm/config.toml"),
        "[diff]\nignore_attributes = [\"http.flavor\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let quiet = run_json(dir.path(), &["--force"]);
    quiet.assert_passed();
    // `diff.keep_attributes` brings a per-connection attribute back.
    std::fs::write(
        dir.path().join(".clnrm/config.toml"),
        "[diff]\nignore_attributes = [\"http.flavor\"]\nkeep_attributes = [\"net.peer.ip\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kept = run_json(dir.path(), &["--force"]);
    assert_eq!(kept.code, Some(1), "{:#}", kept.json);
    let tree = scenario(&kept, "hello twice")["diff"]["tree"].to_string();
    assert!(tree.contains("net.peer.ip"), "{tree}");
}
