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
    runs::statuses(&run.json)
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

/// A file with one busybox service mounting `conf.txt` (relative to the test file)
/// and `conf/` (a directory), and a scenario that reads the file.
fn mounting() -> String {
    file("[[scenario]]\nname = \"reads conf\"\nrun = \"grep -q hello /conf.txt\"\n")
        .replace(
            "[service.app]\n",
            "[service.app]\nvolumes = [{ host_path = \"conf.txt\", container_path = \"/conf.txt\", read_only = true }, { host_path = \"./conf\", container_path = \"/conf\", read_only = true }]\n",
        )
}

#[test]
fn a_change_in_a_bind_mounted_file_or_directory_runs_the_scenario_again() {
    let dir = project(&[
        ("tests/m.clnrm.toml", &mounting()),
        ("tests/conf.txt", "hello\n"),
        ("tests/conf/a.conf", "a\n"),
        ("tests/conf/sub/b.conf", "b\n"),
    ]);
    run_json(dir.path(), &[]).assert_passed();
    let cached = run_json(dir.path(), &[]);
    assert_eq!(
        statuses(&cached),
        vec![("reads conf".into(), "cached".into())]
    );

    // The mounted file changes so that the step must fail: no stale pass.
    std::fs::write(dir.path().join("tests/conf.txt"), "bye\n").unwrap_or_else(|e| panic!("{e}"));
    let explained = clnrm(dir.path())
        .args([
            "cache",
            "stats",
            "--explain",
            "tests/m.clnrm.toml::reads conf",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&explained.stdout);
    let conf = dir.path().join("tests/conf.txt");
    assert!(
        text.contains(&format!(
            "runs: changed since its last run: input {}",
            conf.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("definition") && text.contains("same"),
        "{text}"
    );
    let stale = run_json(dir.path(), &[]);
    assert_eq!(stale.code, Some(1), "{:#}", stale.json);
    assert_eq!(
        statuses(&stale),
        vec![("reads conf".into(), "failed".into())]
    );

    // Back as it was: it passes again, then is cached again.
    std::fs::write(dir.path().join("tests/conf.txt"), "hello\n").unwrap_or_else(|e| panic!("{e}"));
    run_json(dir.path(), &[]).assert_passed();
    assert_eq!(run_json(dir.path(), &[]).json["summary"]["cached"], 1);

    // A file deep in the mounted directory changes: it runs, and the explanation
    // names the file.
    std::fs::write(dir.path().join("tests/conf/sub/b.conf"), "B\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("tests/conf/new.conf"), "n\n").unwrap_or_else(|e| panic!("{e}"));
    let explained = clnrm(dir.path())
        .args(["cache", "stats", "--explain", "tests/m.clnrm.toml::*"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        text.contains("changed: sub/b.conf") && text.contains("added: new.conf"),
        "{text}"
    );
    let rerun = run_json(dir.path(), &[]);
    rerun.assert_passed();
    assert_eq!(
        statuses(&rerun),
        vec![("reads conf".into(), "passed".into())]
    );
    let text = String::from_utf8_lossy(
        &clnrm(dir.path())
            .args([
                "cache",
                "stats",
                "--explain",
                "tests/m.clnrm.toml::reads conf",
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
            .stdout,
    )
    .into_owned();
    assert!(
        text.contains("cached: unchanged since its last passing run"),
        "{text}"
    );
}

#[test]
fn a_scenario_that_writes_into_its_own_mount_runs_every_time_and_is_told_why() {
    let text = file("[[scenario]]\nname = \"writes\"\nrun = \"sh -c 'date +%s%N >> /data/log'\"\n")
        .replace(
            "[service.app]\n",
            "[service.app]\nvolumes = [{ host_path = \"data\", container_path = \"/data\" }]\n",
        );
    let dir = project(&[("tests/w.clnrm.toml", &text), ("tests/data/.keep", "")]);
    let first = run_json(dir.path(), &[]);
    first.assert_passed();
    assert!(
        first
            .stderr
            .contains("the run changed what it bind-mounts from the host")
            && first.stderr.contains("tests/data"),
        "{}",
        first.stderr
    );
    let second = run_json(dir.path(), &[]);
    assert_eq!(
        statuses(&second),
        vec![("writes".into(), "passed".into())],
        "never a stale pass"
    );
}

#[test]
fn failed_runs_again_only_what_failed_last_time_and_nothing_once_all_pass() {
    let dir = project(&[
        ("tests/c.clnrm.toml", &three("echo two")),
        (
            "tests/bad.clnrm.toml",
            &file("[[scenario]]\nname = \"bad\"\nrun = \"false\"\n"),
        ),
    ]);
    // Nothing recorded yet: nothing failed.
    let none = run_json(dir.path(), &["--failed"]);
    assert_eq!(none.code, Some(0), "{}", none.stderr);
    assert!(
        statuses(&none).iter().all(|(_, s)| s == "skipped"),
        "{:?}",
        statuses(&none)
    );
    let first = run_json(dir.path(), &["--force"]);
    assert_eq!(first.code, Some(1), "{}", first.stderr);
    let again = run_json(dir.path(), &["--failed", "--force"]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("--failed: running the 1 scenario of 4 selected whose last run failed"),
        "{}",
        again.stderr
    );
    assert_eq!(
        statuses(&again),
        vec![
            ("bad".into(), "failed".into()),
            ("one".into(), "skipped".into()),
            ("two".into(), "skipped".into()),
            ("three".into(), "skipped".into())
        ]
    );
    // A scenario left out keeps what it had: `one` passed and still counts as such.
    std::fs::write(
        dir.path().join("tests/bad.clnrm.toml"),
        file("[[scenario]]\nname = \"bad\"\nrun = \"true\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fixed = run_json(dir.path(), &["--failed"]);
    assert_eq!(fixed.code, Some(0), "{}", fixed.stderr);
    assert_eq!(statuses(&fixed)[0], ("bad".into(), "passed".into()));
    let after = run_json(dir.path(), &["--failed"]);
    assert_eq!(after.code, Some(0), "{}", after.stderr);
    assert!(
        after
            .stderr
            .contains("--failed: none of the 4 scenarios selected failed in its last run"),
        "{}",
        after.stderr
    );
    assert!(statuses(&after).iter().all(|(_, s)| s == "skipped"));
    let bench = clnrm(dir.path())
        .args(["bench", "--failed", "--rounds", "1"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let said = String::from_utf8_lossy(&bench.stderr);
    assert_eq!(bench.status.code(), Some(0), "{said}");
    assert!(
        said.contains("--failed: none of the 4 selected failed"),
        "{said}"
    );
    // The tags and paths narrow it as for any run.
    std::fs::write(
        dir.path().join("tests/bad.clnrm.toml"),
        file("[[scenario]]\nname = \"bad\"\nrun = \"false\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run_json(dir.path(), &[]).code, Some(1));
    let elsewhere = run_json(dir.path(), &["--failed", "tests/c.clnrm.toml"]);
    assert_eq!(elsewhere.code, Some(0), "{}", elsewhere.stderr);
}

#[test]
fn a_read_only_mount_changed_during_a_run_is_not_taken_for_the_run_writing() {
    let text = file(
        "[[scenario]]\nname = \"waits\"\nrun = \"sh -c 'touch /w/started; until [ -f /conf/go ]; do sleep 0.05; done'\"\n",
    )
    .replace(
        "[service.app]\n",
        "[service.app]\nvolumes = [{ host_path = \"conf\", container_path = \"/conf\", read_only = true }, { host_path = \"w\", container_path = \"/w\" }]\n",
    );
    let dir = project(&[
        ("tests/r.clnrm.toml", &text),
        ("tests/conf/a.conf", "a\n"),
        ("tests/w/.keep", ""),
    ]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("clnrm"))
        .current_dir(dir.path())
        .args(["run", "--format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let started = dir.path().join("tests/w/started");
    let t0 = std::time::Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The user edits the read-only mounted directory while the run is under way.
    std::fs::write(dir.path().join("tests/conf/go"), "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .unwrap_or_else(|e| panic!("{e}"));
    let w = dir.path().join("tests/w");
    let conf = dir.path().join("tests/conf");
    assert!(
        stderr.contains(&format!(
            "the run changed what it bind-mounts from the host ({})",
            w.display()
        )),
        "only the writable mount is the run's doing: {stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join(".clnrm/cache/written.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(written.contains("started"), "{written}");
    assert!(!written.contains(&conf.display().to_string()), "{written}");
    // `cache clear` forgets what runs wrote too.
    let out = clnrm(dir.path())
        .args(["cache", "clear"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(!dir.path().join(".clnrm/cache/written.json").exists());
}

#[test]
fn a_scenario_mounting_its_project_is_cached_though_its_file_writes_a_report_into_it() {
    let text = file("[[scenario]]\nname = \"reads\"\nrun = \"test -d /project/tests\"\n")
        .replace(
            "[service.app]\n",
            "[report]\njunit = \"../reports/junit.xml\"\n\n[service.app]\nvolumes = [{ host_path = \"..\", container_path = \"/project\", read_only = true }]\n",
        );
    let dir = project(&[("tests/p.clnrm.toml", &text)]);
    run_json(dir.path(), &["--report-dir", "out"]).assert_passed();
    assert!(dir.path().join("reports/junit.xml").exists());
    // The directory the first run made for its report is new to the second (an
    // empty directory is content); what is written into it every run is not.
    run_json(dir.path(), &["--report-dir", "out"]).assert_passed();
    let again = run_json(dir.path(), &["--report-dir", "out"]);
    assert_eq!(
        statuses(&again),
        vec![("reads".into(), "cached".into())],
        "the reports it writes are no input: {}",
        again.stderr
    );
}
