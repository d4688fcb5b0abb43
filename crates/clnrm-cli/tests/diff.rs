//! Baselines end to end: recording, comparing with new ids and a changed shape, and
//! `clnrm diff` running the scenarios that have no saved spans.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use runs::{file, run_json, scenario, toml_string};
use serde_json::Value;
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

/// A scenario printing one root span with a per-connection port and an `http.route`.
fn connection_file() -> String {
    let script = r#"r=$RANDOM$RANDOM; echo "{\"name\":\"root\",\"trace_id\":\"t$r\",\"span_id\":\"a$r\",\"kind\":\"server\",\"attributes\":{\"http.route\":\"/pay\",\"net.peer.port\":\"5$r\"}}""#;
    file(&format!(
        "[[scenario]]\nname = \"conn\"\n\n[[scenario.steps]]\nname = \"emit\"\ncommand = [\"sh\", \"-c\", {}]\n",
        toml_string(script)
    ))
}

#[test]
fn a_change_of_diff_settings_is_no_cached_pass() {
    let dir = project(&[("tests/conn.clnrm.toml", &connection_file())]);
    let config = |text: &str| {
        std::fs::write(dir.path().join(".clnrm/config.toml"), text)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    config("[diff]\nignore_attributes = [\"http.route\"]\n");
    run_json(dir.path(), &["--update-baseline"]).assert_passed();
    // Compared with the entry it recorded once, then cached.
    run_json(dir.path(), &[]).assert_passed();
    let again = run_json(dir.path(), &[]);
    assert_eq!(
        scenario(&again, "conn")["status"],
        "cached",
        "{:#}",
        again.json
    );
    // Kept now: the port differs from the baseline, which has none.
    config("[diff]\nignore_attributes = [\"http.route\"]\nkeep_attributes = [\"net.peer.port\"]\n");
    let kept = run_json(dir.path(), &[]);
    assert_eq!(kept.code, Some(1), "{:#}", kept.json);
    assert_eq!(scenario(&kept, "conn")["reason"], "diff", "{:#}", kept.json);
    // No longer ignored: `http.route` is compared again, and the baseline lacks it.
    config("[diff]\n");
    let compared = run_json(dir.path(), &[]);
    assert_eq!(compared.code, Some(1), "{:#}", compared.json);
    let tree = scenario(&compared, "conn")["diff"]["tree"].to_string();
    assert!(tree.contains("http.route"), "{tree}");
    // Back to what the baseline was recorded with: passes (and is then cached).
    config("[diff]\nignore_attributes = [\"http.route\"]\n");
    run_json(dir.path(), &[]).assert_passed();
    let cached = run_json(dir.path(), &[]);
    assert_eq!(
        scenario(&cached, "conn")["status"],
        "cached",
        "{:#}",
        cached.json
    );
}

#[test]
fn a_flaky_scenario_is_not_recorded_by_diff_update_baseline() {
    // Fails on its first attempt (no marker yet), passes on the retry.
    let script = r#"r=$RANDOM; echo "{\"name\":\"root\",\"trace_id\":\"t$r\",\"span_id\":\"a$r\"}"; test -f /w/once || { touch /w/once; exit 1; }"#;
    let text = file(&format!(
        "[[scenario]]\nname = \"flaky\"\n\n[[scenario.steps]]\nname = \"emit\"\ncommand = [\"sh\", \"-c\", {}]\n",
        toml_string(script)
    ))
    .replace(
        "[service.app]\n",
        "[service.app]\nvolumes = [{ host_path = \"w\", container_path = \"/w\" }]\n",
    );
    let dir = project(&[("tests/f.clnrm.toml", &text), ("tests/w/.keep", "")]);
    let run = run_json(dir.path(), &["--retries", "1"]);
    assert_eq!(scenario(&run, "flaky")["status"], "flaky", "{:#}", run.json);
    let out = clnrm(dir.path())
        .args(["diff", "--update-baseline"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("its last run was flaky: it passed only on a retry"),
        "{text}"
    );
    let baseline =
        std::fs::read_to_string(dir.path().join(".clnrm/trace.json")).unwrap_or_default();
    assert!(!baseline.contains("flaky"), "{baseline}");
}
