//! Change detection end to end: only edited scenarios run again, failures always
//! do, a corrupt cache is replaced, concurrent runs share the cache.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use engine::wait_exit;
use runs::{Run, file, run_json, three};
use std::process::Stdio;
use std::time::Duration;
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
