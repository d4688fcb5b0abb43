//! Spans end to end: stdout intake in both shapes, expectations and their failures,
//! OTLP from containers (busybox `wget`, and an SDK inside a container over protobuf
//! and gRPC), and clnrm's own telemetry.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use engine::IMAGE;
use runs::{file, run_json, scenario, toml_string};
use serde_json::Value;
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
    assert!(
        m.contains("attribute \"http.status_code\": expected = 500, found 200"),
        "{m}"
    );
    // The JSON report gives the unmet expectation as data.
    let u = &s["unmet"][0];
    assert_eq!(u["kind"], "span", "{s:#}");
    // How many spans matched, and the closest with what it failed, as data.
    assert_eq!(u["matched"], 0, "{s:#}");
    assert_eq!(
        u["near"][0]["misses"][0]["what"], "attribute \"http.status_code\"",
        "{s:#}"
    );
    assert_eq!(u["near"][0]["misses"][0]["found"], "200", "{s:#}");
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
            .contains("attribute \"http.status_code\": expected = 500, found 200"),
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

/// The runtime of a system under test that this binary plays.
fn sut_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
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
    let rt = sut_runtime();
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

/// Not a test by itself: run as a service's main process by the test below (with
/// `CLNRM_TEST_SERVICE` set), this test binary is a long-running instrumented service
/// with the SDK's default batch processor: on each `/shared/go-N` file it handles
/// "request N" and emits a span, and it never shuts down (so nothing flushes early).
#[test]
#[ignore = "the system under test of spans_of_a_service_with_the_sdks_default_batch_settings_arrive, which runs it"]
fn batch_service_entry() {
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    if std::env::var_os("CLNRM_TEST_SERVICE").is_none() {
        return;
    }
    let rt = sut_runtime();
    let _guard = rt.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // The SDK's batch processor with its defaults: a 5 s schedule delay unless
    // OTEL_BSP_SCHEDULE_DELAY says otherwise.
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("orders");
    let mut handled = 0;
    loop {
        let next = std::path::PathBuf::from(format!("/shared/go-{}", handled + 1));
        if next.exists() {
            handled += 1;
            tracer.in_span(format!("request {handled}"), |_| {});
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn spans_of_a_service_with_the_sdks_default_batch_settings_arrive() {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        r#"[meta]
name = "batch"
version = "1"

[otel]
exporter = "otlp"

[service.orders]
image = "{IMAGE}"
args = ["/exporter", "batch_service_entry", "--exact", "--ignored", "--test-threads=1"]
env = {{ CLNRM_TEST_SERVICE = "1", OTEL_SERVICE_NAME = "orders-api" }}
volumes = [
  {{ host_path = "{exe}", container_path = "/exporter", read_only = true }},
  {{ host_path = "{shared}", container_path = "/shared" }},
]

[service.client]
image = "{IMAGE}"
volumes = [{{ host_path = "{shared}", container_path = "/shared" }}]

[[scenario]]
name = "first"
service = "client"
run = "touch /shared/go-1"

[[expect.span]]
name = "request ?"

[expect.hermeticity]
resource_attrs.must_match = {{ "service.name" = "orders-api" }}
"#,
        exe = exe.display(),
        shared = shared.display()
    );
    std::fs::create_dir_all(dir.path().join("tests")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("tests/batch.clnrm.toml"), text)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &[]);
    run.assert_passed();
    assert_eq!(scenario(&run, "first")["spans"], 1, "{:#}", run.json);
}

/// A file whose scenario `peers` prints a server span (with its own `http.host`) and
/// a client span calling `peer` (a shell word: `$(hostname)` is the container's own
/// host name), with `[expect.hermeticity]` holding `rules`.
fn peers_file(peer: &str, rules: &str) -> String {
    let server = r#"{"name":"GET /orders/{id}","trace_id":"t1","span_id":"s1","kind":"server","start_time_unix_nano":1,"end_time_unix_nano":9,"attributes":{"http.host":"orders.example:8080"}}"#;
    let client = format!(
        r#"{{"name":"call","trace_id":"t1","span_id":"c1","parent_span_id":"s1","kind":"client","start_time_unix_nano":2,"end_time_unix_nano":8,"attributes":{{"net.peer.name":"'"{peer}"'","db.connection_string":"postgresql://app@db:5432/orders"}}}}"#
    );
    let printer = format!("printf '%s\\n%s\\n' '{server}' '{client}'");
    format!(
        "[meta]\nname = \"peers\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n[service.db]\nimage = \"{IMAGE}\"\nargs = [\"sleep\", \"3600\"]\n\n[[scenario]]\nname = \"peers\"\nservice = \"app\"\n\n[[scenario.steps]]\nname = \"print\"\ncommand = [\"sh\", \"-c\", {}]\n\n[[expect.span]]\nname = \"GET /orders/{{id}}\"\n\n[expect.hermeticity]\nno_external_services = true\n{rules}",
        toml_string(&printer)
    )
}

#[test]
fn hermeticity_counts_the_scenarios_own_services_loopback_and_allowed_hosts_as_internal() {
    let dir = project(&[
        // Its database by service id, its own container by host name, loopback.
        ("tests/own.clnrm.toml", &peers_file("db", "")),
        ("tests/self.clnrm.toml", &peers_file("$(hostname)", "")),
        // Its own container by address.
        ("tests/ip.clnrm.toml", &peers_file("$(hostname -i)", "")),
        ("tests/loop.clnrm.toml", &peers_file("localhost", "")),
        (
            "tests/outside.clnrm.toml",
            &peers_file("api.stripe.com", ""),
        ),
        (
            "tests/allowed.clnrm.toml",
            &peers_file("api.stripe.com", "allow_hosts = [\"api.stripe.com\"]\n"),
        ),
    ]);
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let by_file = |file: &str| {
        run.json["scenarios"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["file"] == file))
            .unwrap_or_else(|| panic!("no scenario of {file} in {:#}", run.json))
            .clone()
    };
    for file in ["own", "self", "ip", "loop", "allowed"] {
        let s = by_file(&format!("tests/{file}.clnrm.toml"));
        assert_eq!(s["status"], "passed", "{file}: {s:#}");
    }
    let outside = by_file("tests/outside.clnrm.toml");
    assert_eq!(outside["status"], "failed", "{outside:#}");
    let message = outside["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("net.peer.name=\"api.stripe.com\""),
        "{message}"
    );
}

#[test]
fn a_scenarios_own_expectations_apply_to_it_alone_beside_the_files() {
    let span = |name: &str, code: u16| {
        format!(
            r#"{{"name":"{name}","trace_id":"t","span_id":"s","kind":"server","start_time_unix_nano":1,"end_time_unix_nano":9,"attributes":{{"http.status_code":{code}}}}}"#
        )
    };
    let step = |line: &str| {
        format!(
            "[[scenario.steps]]\nname = \"request\"\ncommand = [\"sh\", \"-c\", {}]\n",
            toml_string(&format!("printf '%s\\n' '{line}'"))
        )
    };
    let text = format!(
        r#"[meta]
name = "orders"
version = "1"

[otel]
exporter = "stdout"

[service.app]
image = "{IMAGE}"

[[expect.span]]
name = "* /orders*"

[[scenario]]
name = "create"
{create}
[[scenario.expect.span]]
name = "POST /orders"
attrs.all = {{ "http.status_code" = 201 }}

[[scenario]]
name = "not-found"
{missing}
[[scenario.expect.span]]
name = "GET /orders/{{id}}"
attrs.all = {{ "http.status_code" = 404 }}

[[scenario]]
name = "wrong"
{wrong}
[scenario.expect.counts]
by_name = {{ "GET /orders/{{id}}" = {{ eq = 1 }} }}
"#,
        create = step(&span("POST /orders", 201)),
        missing = step(&span("GET /orders/{id}", 404)),
        wrong = step(&span("POST /orders", 201)),
    );
    let dir = project(&[("tests/orders.clnrm.toml", &text)]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    assert_eq!(
        scenario(&run, "create")["status"],
        "passed",
        "{:#}",
        run.json
    );
    assert_eq!(
        scenario(&run, "not-found")["status"],
        "passed",
        "{:#}",
        run.json
    );
    let wrong = scenario(&run, "wrong");
    assert_eq!(wrong["status"], "failed");
    let unmet = &wrong["unmet"][0];
    assert_eq!(unmet["kind"], "counts", "{wrong:#}");
    // The position is the scenario's own table in the file.
    assert_eq!(unmet["line"], 41, "{wrong:#}");
}

#[test]
fn a_run_time_failure_in_a_template_points_at_the_template_line() {
    let text = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"{IMAGE}\"\n{{% for i in range(end=20) %}}\n# filler {{{{ i }}}}\n{{% endfor %}}\n[[scenario]]\nname = \"s\"\nrun = \"RUN\"\n\n[[expect.span]]\nname = \"checkout\"\n"
    );
    // The expectation is rendered 40 lines further down than it is written.
    let dir = project(&[(
        "tests/t.clnrm.toml.tera",
        &text.replace(
            "run = \"RUN\"",
            &format!("run = {}", toml_string(&format!("echo '{FLAT_LINE}'"))),
        ),
    )]);
    let run = run_json(dir.path(), &[]);
    assert_eq!(run.code, Some(1), "{:#}\n{}", run.json, run.stderr);
    let unmet = &scenario(&run, "s")["unmet"][0];
    assert_eq!(unmet["file"], "tests/t.clnrm.toml.tera", "{unmet:#}");
    assert_eq!(unmet["line"], 17, "{unmet:#}");
    assert!(unmet.get("rendered").is_none(), "{unmet:#}");
}

#[test]
fn clnrm_expect_starts_from_saved_spans_of_two_runs_and_refuses_a_scenario_that_never_ran() {
    let dir = project(&[("tests/spans.clnrm.toml", &stdout_spans_file(""))]);
    let expect = || {
        clnrm(dir.path())
            .args(["expect", "tests/spans.clnrm.toml::emit"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Never run: nothing to start from, and how to get it.
    let out = expect();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no saved spans: run it first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two runs: the second keeps the first beside it, and the block says both.
    run_json(dir.path(), &[]).assert_passed();
    run_json(dir.path(), &["--force"]).assert_passed();
    let out = expect();
    assert_eq!(out.status.code(), Some(0));
    let block = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        block.contains("starter expectations from its last two runs"),
        "{block}"
    );
    assert!(
        block.contains("name = \"db.query\"\nkind = \"client\"\nparent = \"checkout\"\n"),
        "{block}"
    );
    // Pasted under the scenario, the block passes.
    let text = format!("{}\n{block}", stdout_spans_file(""));
    std::fs::write(dir.path().join("tests/spans.clnrm.toml"), text).unwrap();
    run_json(dir.path(), &[]).assert_passed();
}
