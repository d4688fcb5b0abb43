//! `http` steps end to end against the real engine (SPEC §7.4): an image made of one
//! static binary (`FROM scratch`: no shell, no HTTP client) tested by HTTP steps alone,
//! with JSONPath and header captures passed on by `${name}`, a `User-Agent` sent
//! unless the step sets its own, and each check failing the way it should.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use runs::{run_json, scenario};

#[test]
fn an_image_without_a_shell_is_tested_by_http_steps_with_captures() {
    let text = format!(
        r#"[meta]
name = "http"
version = "1"

[service.web]
image = "{}"

[[scenario]]
name = "hello, echo"

[[scenario.steps]]
name = "hello"
http = {{ url = "http://web:8080/hello" }}
expected_json = {{ "$.hello" = "world", "$.n" = 3 }}
capture = {{ greeting = {{ json = "$.hello" }} }}
retry = {{ attempts = 50, interval_ms = 100 }}

[[scenario.steps]]
name = "post json"
http = {{ method = "POST", url = "http://web:8080/echo", json = {{ said = "${{greeting}}", n = 1 }} }}
expected_status = 201
capture = {{ where = {{ from = "header:Location", regex = ".+" }}, said = {{ json = "$.said" }} }}

[[scenario.steps]]
name = "post text"
http = {{ method = "POST", url = "http://web:8080/echo", body = "${{where}} ${{said}}", headers = {{ "X-Said" = "${{said}}" }} }}
expected_status = [200, 201]
expected_body_regex = '^/echo/1 world$'

[[scenario.steps]]
name = "names itself"
http = {{ url = "http://web:8080/agent" }}
expected_json = {{ "$.agent" = "clnrm/{version}" }}

[[scenario.steps]]
name = "its own agent"
http = {{ url = "http://web:8080/agent", headers = {{ "user-agent" = "probe/1" }} }}
expected_json = {{ "$.agent" = "probe/1" }}

[[scenario]]
name = "not found"

[[scenario.steps]]
name = "missing"
http = {{ url = "http://web:8080/nope" }}
expected_status = 200
retry = {{ attempts = 50, interval_ms = 100 }}

[[scenario]]
name = "wrong value"

[[scenario.steps]]
name = "hello"
http = {{ url = "http://web:8080/hello" }}
expected_json = {{ "$.n" = 4 }}
retry = {{ attempts = 3, interval_ms = 100 }}
"#,
        engine::tiny_http_image(),
        version = env!("CARGO_PKG_VERSION"),
    );
    let dir = project(&[("tests/http.clnrm.toml", &text)]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);

    let ok = scenario(&run, "hello, echo");
    assert_eq!(ok["status"], "passed", "{ok:#}");
    let steps = ok["steps"].as_array().unwrap();
    assert_eq!(steps[0]["command"], "GET http://web:8080/hello");
    assert_eq!(steps[0]["http_status"], 200);
    assert_eq!(steps[1]["http_status"], 201);
    assert_eq!(steps[2]["command"], "POST http://web:8080/echo");
    assert_eq!(
        steps[2]["stdout"], "/echo/1 world",
        "the body, as the report shows it"
    );

    let missing = scenario(&run, "not found");
    assert_eq!(missing["reason"], "status", "{missing:#}");
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("status 404, expected 200"),
        "{missing:#}"
    );
    let wrong = scenario(&run, "wrong value");
    assert_eq!(wrong["reason"], "json", "{wrong:#}");
    assert_eq!(wrong["steps"][0]["attempts"], 3, "{wrong:#}");
    assert!(
        wrong["message"]
            .as_str()
            .unwrap_or_default()
            .contains("$.n is 3, expected 4"),
        "{wrong:#}"
    );

    // The human report names the request and its status under the failure.
    let reports = dir.path().join("reports");
    let out = clnrm(dir.path())
        .args(["run", "--force", "--filter", "*not found", "--report-dir"])
        .arg(&reports)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("command: GET http://web:8080/nope") && human.contains("status:  404"),
        "{human}"
    );
    // JUnit and Markdown carry the request and its status too.
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(
        junit.contains("$ GET http://web:8080/nope  # status 404") && junit.contains("status: 404"),
        "{junit}"
    );
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(
        md.contains("`$ GET http://web:8080/nope` → status 404"),
        "{md}"
    );
}

#[test]
fn an_http_health_check_is_probed_by_clnrm_without_a_process_in_the_container() {
    // Service `web` probed at `path`, `retries` times; its scenario `name` asks for JSON.
    let file = |path: &str, retries: u32, name: &str| {
        format!(
            r#"[meta]
name = "health"
version = "1"

[service.web]
image = "{image}"
health_check = {{ http = "http://web:8080{path}", interval_ms = 50, retries = {retries} }}

[[scenario]]
name = "{name}"

[[scenario.steps]]
name = "hello"
http = {{ url = "http://web:8080/hello" }}
expected_json = {{ "$.hello" = "world" }}
"#,
            image = engine::tiny_http_image(),
        )
    };
    let text = file("/hello", 200, "ready at once");
    let broken = file("/nope", 5, "never ready");
    let dir = project(&[
        ("tests/health.clnrm.toml", &text),
        ("tests/unhealthy.clnrm.toml", &broken),
    ]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    // No retry on the step: the image has no shell, so only clnrm's probe made it wait.
    assert_eq!(
        scenario(&run, "ready at once")["status"],
        "passed",
        "{:#}",
        run.json
    );
    let sc = scenario(&run, "never ready");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        sc["reason"] == "unhealthy"
            && message.contains("not healthy after 5 tries of `GET http://web:8080/nope`")
            && message.contains("last: GET /nope: HTTP 404"),
        "{sc:#}"
    );

    // Both probes, or another service's URL, are refused with their place.
    let both = text.replace(
        "health_check = { http",
        "health_check = { cmd = [\"true\"], http",
    );
    let other = text.replace(
        "http://web:8080/hello\", interval",
        "http://db:8080/hello\", interval",
    );
    for (bad, says) in [
        (both, "both `cmd` and `http`"),
        (other, "asks service \"db\""),
    ] {
        common::assert_refused(dir.path(), "tests/health.clnrm.toml", &bad, says, 7);
    }
}
