//! `clnrm watch` end to end against the real engine: edited scenarios re-run,
//! includes are followed, broken saves are survived, saves that replace a file are
//! seen, every `run` flag is honoured, and Ctrl-C leaves no container.

mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;
#[path = "common/watching.rs"]
mod watching;

use common::{RemoveBuilt, project};
use engine::{IMAGE, containers, signal, wait_exit};
use runs::{file, three};
use std::time::{Duration, Instant};
use watching::Watching;

#[test]
fn watch_reruns_edited_scenarios_follows_includes_survives_broken_saves_and_cleans_up() {
    let partial = "[[scenario]]\nname = \"from-partial\"\nrun = \"echo v1\"\n";
    let template = format!(
        "[meta]\nname = \"tpl\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n{{% include \"part.toml.tera\" %}}\n"
    );
    let dir = project(&[
        ("tests/c.clnrm.toml", &three("echo two")),
        ("tests/t.clnrm.toml.tera", &template),
        ("tests/part.toml.tera", partial),
    ]);
    let mut w = Watching::start(dir.path(), &["tests"]);
    w.wait_for("watching for changes", 1);
    assert_eq!(w.text().matches("   PASS [").count(), 4, "{}", w.text());
    // Its own writes (.clnrm/cache, artifacts) start no cycle: an absence, so this
    // waits out a window of eight debounce periods instead of a condition.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.text().matches("Running").count(), 1, "{}", w.text());

    // Only the edited scenario runs again.
    std::fs::write(dir.path().join("tests/c.clnrm.toml"), three("echo TWO"))
        .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 2);
    let cycle = w
        .text()
        .rsplit("Running")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cycle.contains("PASS [") && cycle.contains("c.clnrm.toml::two"),
        "{cycle}"
    );
    assert_eq!(cycle.matches("PASS [").count(), 1, "{cycle}");

    // A broken save prints its diagnostics and the watch goes on.
    std::fs::write(dir.path().join("tests/c.clnrm.toml"), "[meta\n")
        .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("waiting for the next save", 1);
    std::fs::write(
        dir.path().join("tests/c.clnrm.toml"),
        three("echo two again"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 4);
    assert!(w.text().contains("error[E0010]"), "{}", w.text());

    // Editing a partial re-runs the template that includes it.
    std::fs::write(
        dir.path().join("tests/part.toml.tera"),
        partial.replace("v1", "v2"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 5);
    let cycle = w
        .text()
        .rsplit("Running")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cycle.contains("t.clnrm.toml.tera::from-partial"),
        "{}",
        w.text()
    );

    let label = format!("clnrm.pid={}", w.child.id());
    signal(w.child.id(), "-INT");
    assert_eq!(wait_exit(&mut w.child, Duration::from_secs(30)), Some(130));
    assert_eq!(containers(&label), Vec::<String>::new());
}

#[test]
fn watching_a_file_sees_each_of_five_saves_that_replace_it_and_prints_json() {
    let one = |n: usize| {
        file(&format!(
            "[[scenario]]\nname = \"count\"\nrun = \"echo {n}\"\n"
        ))
    };
    let dir = project(&[("tests/w.clnrm.toml", &one(0))]);
    let mut w = Watching::start(
        dir.path(),
        &[
            "--format",
            "json",
            "--report-dir",
            "out",
            "tests/w.clnrm.toml",
        ],
    );
    w.wait_for("\"run_id\"", 1);
    for n in 1..=5 {
        // `sed -i` writes a new file and renames it over the old one, as editors do.
        let ok = std::process::Command::new("sed")
            .args([
                "-i",
                &format!("s/echo [0-9]*/echo {n}/"),
                "tests/w.clnrm.toml",
            ])
            .current_dir(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "sed -i");
        w.wait_for("\"run_id\"", n + 1);
    }
    // The last cycle's document says 5 (it may still be being written when its
    // first line is seen).
    w.wait_for("\"stdout\": \"5\\n\"", 1);
    // --report-dir is honoured too: the last cycle's report.
    let report_path = dir.path().join("out/report.json");
    let start = Instant::now();
    loop {
        let report = std::fs::read_to_string(&report_path).unwrap_or_default();
        if report.contains("\"stdout\": \"5\\n\"") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{report}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let label = format!("clnrm.pid={}", w.child.id());
    signal(w.child.id(), "-INT");
    assert_eq!(wait_exit(&mut w.child, Duration::from_secs(30)), Some(130));
    assert_eq!(containers(&label), Vec::<String>::new());
}

#[test]
fn a_service_that_cannot_be_reused_is_started_again_before_the_next_save() {
    // A service running its own command (a database, say) is never reused; watch
    // starts a fresh one as soon as a cycle ends, so a save does not wait for it.
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    let text = |word: &str| {
        format!(
            "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\nargs = [\"sh\", \"-c\", \"echo started >> /shared/starts; exec sleep 3600\"]\nvolumes = [{{ host_path = \"{}\", container_path = \"/shared\" }}]\n\n[[scenario]]\nname = \"s\"\nrun = \"echo {word}\"\n",
            shared.display()
        )
    };
    let starts = || {
        std::fs::read_to_string(shared.join("starts"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_starts = |n: usize| {
        let start = Instant::now();
        while starts() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} starts, not {n}",
                starts()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::fs::write(dir.path().join("tests/a.clnrm.toml"), text("one")).unwrap();
    let mut w = Watching::start(dir.path(), &[]);
    w.wait_for("1 passed", 1);
    // No save yet: the next environment is already starting.
    wait_starts(2);
    std::fs::write(dir.path().join("tests/a.clnrm.toml"), text("two")).unwrap();
    w.wait_for("1 passed", 2);
    wait_starts(3);
    // The save used the one made ahead: one more start, not two.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(starts(), 3, "{}", w.text());
    let label = format!("clnrm.pid={}", w.child.id());
    signal(w.child.id(), "-INT");
    assert_eq!(wait_exit(&mut w.child, Duration::from_secs(30)), Some(130));
    assert_eq!(containers(&label), Vec::<String>::new());
}

#[test]
fn a_save_of_a_bind_mounted_file_reruns_the_scenarios_that_mount_it_and_only_them() {
    let mount = "volumes = [{ host_path = \"conf.txt\", container_path = \"/conf.txt\" }]\n";
    let reads = file("[[scenario]]\nname = \"reads conf\"\nrun = \"grep -q hello /conf.txt\"\n")
        .replace("[service.app]\n", &format!("[service.app]\n{mount}"));
    let dir = project(&[
        ("tests/m.clnrm.toml", &reads),
        ("tests/other.clnrm.toml", &three("echo two")),
        ("tests/conf.txt", "hello\n"),
    ]);
    let w = Watching::start(dir.path(), &["tests"]);
    w.wait_for("watching for changes", 1);
    assert_eq!(w.text().matches("   PASS [").count(), 4, "{}", w.text());

    // The mounted file changes so that its scenario must fail: it runs, and fails.
    std::fs::write(dir.path().join("tests/conf.txt"), "bye\n").unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 2);
    let cycle = w
        .text()
        .rsplit("Running")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cycle.contains("FAIL [") && cycle.contains("m.clnrm.toml::reads conf"),
        "{cycle}"
    );
    assert!(
        !cycle.contains("other.clnrm.toml"),
        "only the file mounting it: {cycle}"
    );

    // Mended: it passes again.
    std::fs::write(dir.path().join("tests/conf.txt"), "hello\n").unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 3);
    let cycle = w
        .text()
        .rsplit("Running")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cycle.contains("PASS [") && !cycle.contains("FAIL ["),
        "{cycle}"
    );
}

#[test]
fn a_save_in_a_build_context_syncs_or_rebuilds_as_its_develop_rules_say_and_reruns_only_its_scenarios()
 {
    let dockerfile = "FROM clnrm/busybox:latest\nCOPY version.txt /app/\nCOPY src /app/src\nCMD [\"sleep\", \"3600\"]\n";
    let test = "[meta]\nname = \"w\"\nversion = \"1\"\n\n[service.app]\nbuild = \"../app\"\n\n[service.app.develop]\nwatch = [\n  { path = \"src\", action = \"sync\", target = \"/app/src\" },\n  { path = \"version.txt\", action = \"rebuild\" },\n]\n\n[[scenario]]\nname = \"reads\"\nservice = \"app\"\n\n[[scenario.steps]]\nname = \"msg\"\ncommand = [\"cat\", \"/app/src/msg.txt\"]\nexpected_output_regex = \"hello\"\n\n[[scenario.steps]]\nname = \"version\"\ncommand = [\"cat\", \"/app/version.txt\"]\nexpected_output_regex = \"v1\"\n";
    let dir = project(&[
        ("tests/w.clnrm.toml", test),
        ("tests/other.clnrm.toml", &three("echo two")),
        ("app/Dockerfile", dockerfile),
        ("app/.dockerignore", "*.log\n"),
        ("app/version.txt", "v1\n"),
        ("app/src/msg.txt", "hello 1\n"),
    ]);
    let root = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    let _clean = RemoveBuilt(root);
    let w = Watching::start(dir.path(), &["tests"]);
    w.wait_for("watching for changes", 1);
    assert_eq!(w.text().matches("   PASS [").count(), 4, "{}", w.text());
    assert!(w.text().contains("Built clnrm-build/"), "{}", w.text());

    // A file `.dockerignore` leaves out starts no cycle: an absence, so this waits out
    // a window of eight debounce periods.
    std::fs::write(dir.path().join("app/debug.log"), "noise").unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.text().matches("Running").count(), 1, "{}", w.text());

    // Under a `sync` path: the file is copied into the last image's containers, no
    // build; the scenario sees it (it fails), the other file's scenarios do not run.
    std::fs::write(dir.path().join("app/src/msg.txt"), "bye\n").unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 2);
    let cycle = w.last_cycle();
    assert!(cycle.contains("Synced 1 file into clnrm-build/"), "{cycle}");
    assert!(!cycle.contains("Built "), "{cycle}");
    assert!(
        cycle.contains("FAIL [") && cycle.contains("| bye"),
        "{cycle}"
    );
    assert!(!cycle.contains("other.clnrm.toml"), "{cycle}");

    // Mended, synced again: it passes.
    std::fs::write(dir.path().join("app/src/msg.txt"), "hello 2\n")
        .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 3);
    let cycle = w.last_cycle();
    assert!(cycle.contains("Synced 1 file"), "{cycle}");
    assert!(
        cycle.contains("PASS [") && !cycle.contains("FAIL ["),
        "{cycle}"
    );

    // Under a `rebuild` path: a build. The Dockerfile copies the file last, so the
    // scenario starts meanwhile on the last image built with the files changed since
    // put in (this one and the synced one); its verdict waits for the build. It sees
    // the new file.
    std::fs::write(dir.path().join("app/version.txt"), "v2\n").unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 4);
    let cycle = w.last_cycle();
    assert!(
        cycle.contains("Synced 2 files into clnrm-build/")
            && cycle.contains("is built (the Dockerfile copies them last)"),
        "{cycle}"
    );
    assert!(cycle.contains("Built clnrm-build/"), "{cycle}");
    assert!(
        cycle.contains("FAIL [") && cycle.contains("| v2"),
        "{cycle}"
    );
    assert!(!cycle.contains("other.clnrm.toml"), "{cycle}");

    // Mended: ahead of its build again, onto the image just built; it passes.
    std::fs::write(dir.path().join("app/version.txt"), "v1 again\n")
        .unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 5);
    let cycle = w.last_cycle();
    assert!(
        cycle.contains("Synced 1 file into clnrm-build/")
            && cycle.contains("is built (the Dockerfile copies them last)")
            && cycle.contains("Built clnrm-build/"),
        "{cycle}"
    );
    assert!(
        cycle.contains("PASS [") && !cycle.contains("FAIL ["),
        "{cycle}"
    );
    drop(w);
    // The pass stands for the image that build made: a run finds it in the cache
    // and builds nothing.
    let out = common::clnrm(dir.path())
        .args(["run", "tests/w.clnrm.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("0 errors, 1 cached") && !text.contains("Built "),
        "{text}"
    );
}
