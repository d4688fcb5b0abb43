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
