//! Trust and limits (SPEC §12): what a hostile or unlucky user does must not change a
//! verdict, hang a run, leak a secret or a container, or leave state a later run
//! cannot repair. Tests that need containers use the real engine and the project's
//! image `clnrm/busybox:latest`.

mod common;

use common::{clnrm, project};

#[path = "common/engine.rs"]
mod engine;

use engine::{
    IMAGE, container_env, containers, peak_rss_mib, signal, spawn_run, wait_exit, wait_until,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A test file whose one scenario printed two spans to stdout.
const STDOUT_SPANS: &str = "[meta]\nname = \"t\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"emit\"\nrun = \"true\"\n";

fn save_spans(dir: &std::path::Path, id: &str) {
    let spans = clnrm_core::otel::parse_line(
        r#"{"name":"root","trace_id":"t","span_id":"a","kind":"server"}"#,
    )
    .unwrap_or_default();
    let passed = clnrm_core::otel::artifacts::Meta {
        verdict: Some(clnrm_core::otel::artifacts::Verdict {
            status: "passed".into(),
            reason: None,
        }),
        ..Default::default()
    };
    clnrm_core::otel::artifacts::save_with(
        &dir.join(".clnrm/artifacts"),
        id,
        "r1",
        &spans,
        &passed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn update_baseline_replaces_a_corrupt_baseline_and_keeps_it_as_bak() {
    let dir = project(&[("tests/t.clnrm.toml", STDOUT_SPANS)]);
    save_spans(dir.path(), "tests/t.clnrm.toml::emit");
    let trace = dir.path().join(".clnrm/trace.json");
    std::fs::write(&trace, "{\"format\": \"something else\"").unwrap_or_else(|e| panic!("{e}"));
    // Comparing against it is refused, with the command that repairs it...
    let out = clnrm(dir.path())
        .arg("diff")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("record a new one with --update-baseline"),
        "{err}"
    );
    // ...and that command repairs it.
    let out = clnrm(dir.path())
        .args(["diff", "--update-baseline"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("was not a clnrm baseline"), "{err}");
    assert!(err.contains("trace.json.bak"), "{err}");
    let bak = std::fs::read_to_string(dir.path().join(".clnrm/trace.json.bak")).unwrap_or_default();
    assert_eq!(bak, "{\"format\": \"something else\"");
    let new: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        new["scenarios"]["tests/t.clnrm.toml::emit"].is_object(),
        "{new:#}"
    );
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

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A file whose service holds `API_TOKEN = secret` and whose step prints a span
/// carrying the secret in an attribute, a resource attribute and an event.
fn secret_file(secret: &str) -> String {
    let span = format!(
        r#"{{"name":"call","trace_id":"t1","span_id":"s1","kind":"client","attributes":{{"auth":"Bearer {secret}","n":1}},"resource":{{"token":"{secret}"}},"events":[{{"name":"sent {secret}","time_unix_nano":1}}]}}"#
    );
    format!(
        "[meta]\nname = \"s\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\nenv = {{ API_TOKEN = \"{secret}\" }}\n\n[report]\njson = \"out/file.json\"\njunit = \"out/file.xml\"\ndigest = \"out/file.digest\"\n\n[[scenario]]\nname = \"leak\"\n\n[[scenario.steps]]\nname = \"print\"\ncommand = [\"sh\", \"-c\", '''echo '{span}'; echo \"token is $API_TOKEN\" >&2''']\n\n[[expect.span]]\nname = \"call\"\nattrs.all = {{ auth = \"Bearer {secret}\" }}\n"
    )
}

/// Runs clnrm in `dir` with `args`; returns the exit code and everything it printed.
fn run_all(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = clnrm(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn secrets_reach_no_file_report_baseline_or_diff() {
    let dir = project(&[("tests/s.clnrm.toml", &secret_file("s3cr3t-one"))]);
    let mut printed = String::new();
    for args in [
        &["run", "--report-dir", "reports", "--update-baseline"][..],
        &["run", "--force", "--format", "json"],
        &["run", "--force", "--format", "junit"],
        &["run", "--force", "--format", "markdown"],
        &["diff"],
        &["diff", "--format", "json"],
    ] {
        let (code, text) = run_all(dir.path(), args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        printed.push_str(&text);
    }
    // The secret changes: the masked baseline still matches, and nothing prints either value.
    std::fs::write(
        dir.path().join("tests/s.clnrm.toml"),
        secret_file("s3cr3t-two"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for args in [&["run", "--report-dir", "reports"][..], &["diff"]] {
        let (code, text) = run_all(dir.path(), args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        printed.push_str(&text);
    }
    assert!(
        printed.contains("***"),
        "masked values are shown as ***: {printed}"
    );
    let mut scanned = 0;
    for path in files_under(dir.path()) {
        if path.to_string_lossy().ends_with(".clnrm.toml") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
        assert!(
            !text.contains("s3cr3t"),
            "{} holds a secret:\n{text}",
            path.display()
        );
        scanned += 1;
    }
    assert!(!printed.contains("s3cr3t"), "printed a secret:\n{printed}");
    let trace = std::fs::read_to_string(dir.path().join(".clnrm/trace.json")).unwrap_or_default();
    assert!(trace.contains("Bearer ***"), "{trace}");
    // trace.json, an artifact, the cache, three report files and three per-file ones.
    assert!(scanned >= 9, "scanned only {scanned} files");
}

/// Shell that sets `$token` to the run's token from `OTEL_EXPORTER_OTLP_HEADERS`
/// (busybox `wget` does not read that variable; SDKs do).
const TOKEN_SH: &str = "t=${OTEL_EXPORTER_OTLP_HEADERS%%,*}; token=${t#x-clnrm-token=};";

/// Shell that POSTs OTLP-JSON `$body` to the run's receiver with the token.
const POST_SH: &str = "wget -q -O /dev/null --header 'Content-Type: application/json' --header \"x-clnrm-token: $token\" --post-data \"$body\" \"$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces\"";

/// Shell that waits (at most 60 s) until the test creates `/gate/go`.
const WAIT_FOR_GATE: &str =
    "i=0; while [ ! -e /gate/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";

/// One OTLP-JSON span named `name`.
fn span_json(name: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[]}},"scopeSpans":[{{"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"{name}","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
    )
}

/// An OTLP-JSON span named `name` claiming to belong to scenario `id`.
fn claiming(id: &str, name: &str) -> String {
    span_json(name).replace(
        r#""attributes":[]"#,
        &format!(r#""attributes":[{{"key":"clnrm.scenario","value":{{"stringValue":"{id}"}}}}]"#),
    )
}

/// A file exporting over OTLP/HTTP JSON whose one scenario `name` runs `script`
/// (with `$token` set), with a read-only mount of `gate` at `/gate`, and `expect`.
fn otlp_file(name: &str, gate: &Path, script: &str, expect: &str) -> String {
    let head = format!(
        "[meta]\nname = \"{name}\"\nversion = \"1\"\n\n[otel]\nexporter = \"otlp-http\"\nprotocol = \"http/json\"\n\n[service.app]\nimage = \"{IMAGE}\"\nvolumes = [{{ host_path = \"{}\", container_path = \"/gate\", read_only = true }}]\n\n",
        gate.display()
    );
    let q = "'''";
    format!(
        "{head}[[scenario]]\nname = \"{name}\"\n\n[[scenario.steps]]\nname = \"work\"\ncommand = [\"sh\", \"-c\", {q}{TOKEN_SH} {script}{q}]\n\n{expect}"
    )
}

/// What the receiver of a run gave its containers.
#[derive(Debug, Default)]
struct Given {
    http: Option<u16>,
    grpc: Option<u16>,
    token: String,
}

/// The ports and token the receiver of the run with pid `pid` gave its containers,
/// once `count` of them are up.
fn receiver_of(pid: u32, count: usize) -> Given {
    let label = format!("clnrm.pid={pid}");
    wait_until("the run's containers", Duration::from_secs(60), || {
        containers(&label).len() >= count
    });
    let mut given = Given::default();
    for id in containers(&label) {
        let env = container_env(&id);
        let var = |k: &str| {
            env.iter()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no {k} in {env:?}"))
        };
        let port = var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok());
        if var("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc" {
            given.grpc = port;
        } else {
            given.http = port;
        }
        let headers = var("OTEL_EXPORTER_OTLP_HEADERS");
        given.token = headers
            .split(',')
            .find_map(|h| h.strip_prefix("x-clnrm-token="))
            .unwrap_or_else(|| panic!("no token in {headers}"))
            .to_owned();
    }
    given
}

/// POSTs OTLP-JSON to `addr`; the status code, or `None` when nothing accepts there.
fn post_json(addr: (&str, u16), body: &str, token: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("x-clnrm-token: {t}\r\n"));
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1)?.parse().ok()
}

/// Exports one span claiming scenario `id` over gRPC from an SDK, with `token` in
/// the metadata if given; whether the receiver accepted it.
fn grpc_export(port: u16, id: &str, token: Option<&str>) -> bool {
    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let mut metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::new();
        if let Some(t) = token {
            metadata.insert("x-clnrm-token", t.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_metadata(metadata)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let resource = opentelemetry_sdk::Resource::builder()
            .with_attribute(opentelemetry::KeyValue::new(
                "clnrm.scenario",
                id.to_owned(),
            ))
            .build();
        let (tx, rx) = std::sync::mpsc::channel();
        let capture = Capture(tx);
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(capture)
            .with_resource(resource.clone())
            .build();
        provider.tracer("evil").in_span("needed", |_| {});
        let _ = provider.shutdown();
        let mut exporter = exporter;
        exporter.set_resource(&resource);
        let batch: Vec<_> = rx.try_iter().collect();
        exporter.export(batch).await.is_ok()
    })
}

/// An exporter that hands the spans to a channel, to export them by hand after.
#[derive(Debug)]
struct Capture(std::sync::mpsc::Sender<opentelemetry_sdk::trace::SpanData>);

impl opentelemetry_sdk::trace::SpanExporter for Capture {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        for s in batch {
            let _ = self.0.send(s);
        }
        Ok(())
    }
}

/// The host's IPv4 addresses other than loopback and the engine's bridges.
fn outside_addresses() -> Vec<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .filter(|a| !a.starts_with("172.") && !a.contains(':'))
        .map(str::to_owned)
        .collect()
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("out/report.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report.json ({e}): {text}"))
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no scenario {name} in {report:#}"))
}

#[test]
fn spans_sent_from_outside_the_run_change_no_verdict() {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let own = format!("body='{}'; {POST_SH}; {WAIT_FOR_GATE}", span_json("own"));
    let dir = project(&[
        (
            "tests/clean.clnrm.toml",
            &otlp_file(
                "clean",
                gate.path(),
                &own,
                "[expect.counts]\nspans_total = { eq = 1 }\n",
            ),
        ),
        (
            "tests/empty.clnrm.toml",
            &otlp_file(
                "empty",
                gate.path(),
                WAIT_FOR_GATE,
                "[[expect.span]]\nname = \"needed\"\n",
            ),
        ),
        (
            "tests/grpc.clnrm.toml",
            &otlp_file(
                "grpc",
                gate.path(),
                WAIT_FOR_GATE,
                "[[expect.span]]\nname = \"needed\"\n",
            )
            .replace(
                "exporter = \"otlp-http\"\nprotocol = \"http/json\"",
                "exporter = \"otlp-grpc\"",
            ),
        ),
    ]);
    let mut child = spawn_run(dir.path(), &["--workers", "3", "--report-dir", "out"]);
    let given = receiver_of(child.id(), 3);
    let (port, token) = (given.http.unwrap_or_default(), given.token);
    let to_clean = claiming("tests/clean.clnrm.toml::clean", "evil");
    let to_empty = claiming("tests/empty.clnrm.toml::empty", "needed");
    let wrong = format!("{token}0");
    for body in [&to_clean, &to_empty] {
        // Without the token, or with a wrong one: refused.
        assert_eq!(post_json(("127.0.0.1", port), body, None), Some(401));
        assert_eq!(
            post_json(("127.0.0.1", port), body, Some(&wrong)),
            Some(401)
        );
        // The host's other addresses are not listened on at all.
        for addr in outside_addresses() {
            let got = post_json((addr.as_str(), port), body, Some(&token));
            assert_eq!(got, None, "{addr}:{port} answered");
        }
    }
    // gRPC from an SDK, without the token and with a wrong one; with the right one,
    // the host's other addresses do not even take the connection.
    let grpc_port = given.grpc.unwrap_or_default();
    for addr in outside_addresses() {
        let reached = std::net::TcpStream::connect((addr.as_str(), grpc_port)).is_ok();
        assert!(!reached, "{addr}:{grpc_port} accepted a connection");
    }
    for t in [None, Some(wrong.as_str())] {
        for id in [
            "tests/clean.clnrm.toml::clean",
            "tests/empty.clnrm.toml::empty",
            "tests/grpc.clnrm.toml::grpc",
        ] {
            assert!(
                !grpc_export(grpc_port, id, t),
                "gRPC export with {t:?} was accepted"
            );
        }
    }
    std::fs::write(gate.path().join("go"), "").unwrap_or_else(|e| panic!("{e}"));
    let code = wait_exit(&mut child, Duration::from_secs(90));
    let report = report(dir.path());
    assert_eq!(code, Some(1), "{report:#}");
    let clean = scenario(&report, "clean");
    assert_eq!(clean["status"], "passed", "{report:#}");
    assert_eq!(clean["spans"], 1, "{report:#}");
    for name in ["empty", "grpc"] {
        let empty = scenario(&report, name);
        assert_eq!(empty["status"], "failed", "{report:#}");
        let message = empty["message"].as_str().unwrap_or("");
        assert!(message.contains("no spans at all"), "{empty:#}");
    }
}

#[test]
fn ctrl_c_while_spans_arrive_skips_the_scenario_and_never_caches_it() {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The step returns at once; a background loop then posts a span every
    // 0.1 s (keeping the quiet-period wait going) and marks that it did.
    let script = format!(
        "body='{}'; (while true; do {POST_SH}; touch /gate/posted; sleep 0.1; done) >/dev/null 2>&1 & exit 0",
        span_json("tick")
    );
    let file = otlp_file(
        "ticking",
        gate.path(),
        &script,
        "[expect.counts]\nspans_total = { gte = 1 }\n",
    )
    .replace("read_only = true", "read_only = false");
    let dir = project(&[("tests/tick.clnrm.toml", &file)]);
    let mut child = spawn_run(dir.path(), &["--report-dir", "out"]);
    let label = format!("clnrm.pid={}", child.id());
    wait_until("spans arriving", Duration::from_secs(60), || {
        gate.path().join("posted").exists()
    });
    signal(child.id(), "-INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(130));
    assert_eq!(containers(&label), Vec::<String>::new());
    let first = report(dir.path());
    let s = scenario(&first, "ticking");
    assert_eq!(s["status"], "skipped", "{first:#}");
    assert_eq!(s["reason"], "interrupted", "{first:#}");
    // Not cached: the next run runs it.
    let out = clnrm(dir.path())
        .args(["run", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        scenario(&second, "ticking")["status"],
        "passed",
        "{second:#}"
    );
}

#[test]
fn a_span_flood_fails_the_scenario_with_span_limit_and_memory_stays_bounded() {
    let gate = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // 40 requests of about 8 MB of valid OTLP-JSON: 320 MB at one scenario.
    let span = r#"{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"flood","kind":1,"attributes":[{"key":"pad","value":{"stringValue":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}"#;
    let script = format!(
        "{{ printf '{{\"resourceSpans\":[{{\"resource\":{{\"attributes\":[]}},\"scopeSpans\":[{{\"spans\":['; yes '{span},' | head -n 40000; printf '{span}]}}]}}]}}'; }} > /tmp/body.json; i=0; while [ $i -lt 40 ]; do wget -q -O /dev/null --header 'Content-Type: application/json' --header \"x-clnrm-token: $token\" --post-file /tmp/body.json \"$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces\"; i=$((i+1)); done; exit 0"
    );
    let dir = project(&[(
        "tests/flood.clnrm.toml",
        &otlp_file("flood", gate.path(), &script, ""),
    )]);
    let mut child = spawn_run(dir.path(), &["--report-dir", "out"]);
    let pid = child.id();
    let mut peak = 0.0f64;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status.code();
        }
        if let Some(rss) = peak_rss_mib(pid) {
            peak = peak.max(rss);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let report = report(dir.path());
    assert_eq!(code, Some(1), "{report:#}");
    let s = scenario(&report, "flood");
    assert_eq!(s["reason"], "span_limit", "{report:#}");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or("")
            .contains("max_spans = 100000"),
        "{s:#}"
    );
    assert!(
        peak > 0.0 && peak <= 256.0,
        "peak resident memory {peak:.0} MiB"
    );
    let artifacts: u64 = std::fs::read_dir(dir.path().join(".clnrm/artifacts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(artifacts < 128 << 20, "artifacts hold {artifacts} bytes");
}
