//! Trust and limits (SPEC §12): what a hostile or unlucky user does must not change a
//! verdict, hang a run, leak a secret or a container, or leave state a later run
//! cannot repair. Tests that need containers use the real engine and the project's
//! image `clnrm/busybox:latest`.

mod common;

use common::{clnrm, project};

/// A test file whose one scenario printed two spans to stdout.
const STDOUT_SPANS: &str = "[meta]\nname = \"t\"\nversion = \"1\"\n\n[otel]\nexporter = \"stdout\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"emit\"\nrun = \"true\"\n";

fn save_spans(dir: &std::path::Path, id: &str) {
    let spans = clnrm_core::otel::parse_line(
        r#"{"name":"root","trace_id":"t","span_id":"a","kind":"server"}"#,
    )
    .unwrap_or_default();
    clnrm_core::otel::artifacts::save(&dir.join(".clnrm/artifacts"), id, "r1", &spans)
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
