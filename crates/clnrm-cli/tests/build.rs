//! Building the system under test from its source through the engine's build API
//! (SPEC §14, issue 29), against the real engine: what `.dockerignore` leaves out is
//! not sent, the image is tagged by its key, and a broken step is a failed build with
//! the builder's words; through `clnrm run`, `clnrm build` and `clnrm cache`: the
//! first run builds, the next builds nothing, a change of a context re-runs only the
//! scenarios of its service, an ignored change re-runs nothing, a broken Dockerfile is
//! an `error` naming its line, and two scenarios of one build build it once.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use clnrm_core::backend::{BuildOutcome, BuildSpec, ContainerEngine, Docker};
use clnrm_core::build::{BuildRecipe, build_key, context_tar};
use clnrm_core::inputs::StatIndex;
use common::{RemoveBuilt, built};
use runs::statuses;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    std::fs::write(root.join(rel), text).unwrap_or_else(|e| panic!("{rel}: {e}"));
}

fn spec(tag: &str) -> BuildSpec {
    BuildSpec {
        tag: tag.to_owned(),
        dockerfile: "Dockerfile".into(),
        ..BuildSpec::default()
    }
}

#[tokio::test]
async fn a_context_is_built_without_what_dockerignore_leaves_out_and_a_broken_step_fails() {
    let engine = Docker::new().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    write(
        root,
        "Dockerfile",
        "FROM clnrm/busybox:latest\nCOPY . /ctx\nRUN test -f /ctx/app.txt && test ! -e /ctx/debug.log\n",
    );
    write(root, ".dockerignore", "*.log\n");
    write(root, "app.txt", "v1\n");
    write(root, "debug.log", "not sent\n");
    let recipe = BuildRecipe::default();
    let key =
        build_key(root, &recipe, &mut StatIndex::in_memory()).unwrap_or_else(|e| panic!("{e}"));
    let tag = format!("clnrm-build/test-{}:{}", std::process::id(), &key[..16]);
    let context = context_tar(root, &recipe).unwrap_or_else(|e| panic!("{e}"));
    let built = engine.build(&spec(&tag), context).await;
    let found = engine.image(&tag).await;
    let _ = engine.remove_image(&tag).await;
    match built.unwrap_or_else(|e| panic!("{e}")) {
        BuildOutcome::Built { id, output } => {
            assert!(output.contains("COPY"), "{output}");
            let info = found
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("{tag} was not made"));
            assert_eq!(info.id, id);
        }
        BuildOutcome::Failed { message, output } => panic!("{message}\n{output}"),
    }

    write(
        root,
        "Dockerfile",
        "FROM clnrm/busybox:latest\nRUN echo before\nRUN exit 3\n",
    );
    let broken = format!("clnrm-build/test-{}:broken", std::process::id());
    let context = context_tar(root, &recipe).unwrap_or_else(|e| panic!("{e}"));
    let outcome = engine.build(&spec(&broken), context).await;
    let _ = engine.remove_image(&broken).await;
    match outcome.unwrap_or_else(|e| panic!("{e}")) {
        BuildOutcome::Failed { message, output } => {
            assert!(message.contains("exit 3"), "{message}");
            assert!(output.contains("before"), "{output}");
        }
        BuildOutcome::Built { id, .. } => panic!("a failing step built {id}"),
    }
}

#[tokio::test]
async fn a_second_run_with_no_source_change_builds_nothing_and_a_change_builds_anew() {
    use clnrm_core::build::{Builds, Wanted, build_tag};
    let engine = std::sync::Arc::new(Docker::new().unwrap_or_else(|e| panic!("{e}")));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    write(
        root,
        "Dockerfile",
        "FROM clnrm/busybox:latest\nCOPY app.txt /app.txt\n",
    );
    write(root, "app.txt", "v1\n");
    let project = format!("test-{}", std::process::id());
    let project_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let wanted_now = || {
        let recipe = BuildRecipe::default();
        let key =
            build_key(root, &recipe, &mut StatIndex::in_memory()).unwrap_or_else(|e| panic!("{e}"));
        let key = clnrm_core::build::with_bases(&key, &recipe.bases);
        let wanted = Wanted {
            context: root.to_path_buf(),
            recipe,
            // The project's record of its builds is not in the context here.
            root: project_dir.path().display().to_string(),
            project: project.clone(),
            service: "app".into(),
            key,
        };
        (
            build_tag(&wanted.project, &wanted.service, &wanted.key),
            wanted,
        )
    };
    let (first_tag, wanted) = wanted_now();
    let first = Builds::new(engine.clone())
        .ensure(&first_tag, &wanted)
        .await;
    let (tag, wanted) = wanted_now();
    let second = Builds::new(engine.clone()).ensure(&tag, &wanted).await;
    write(root, "app.txt", "v2\n");
    let (changed_tag, wanted) = wanted_now();
    let changed = Builds::new(engine.clone())
        .ensure(&changed_tag, &wanted)
        .await;
    for tag in [&first_tag, &changed_tag] {
        let _ = engine.remove_image(tag).await;
    }
    let (first, second, changed) = (
        first.unwrap_or_else(|e| panic!("{e}")),
        second.unwrap_or_else(|e| panic!("{e}")),
        changed.unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(first.built, "the first run builds");
    assert!(!second.built, "nothing changed: nothing is built");
    assert_eq!(second.id, first.id);
    assert_ne!(
        changed_tag, first_tag,
        "a change of the source is a new key"
    );
    assert!(changed.built);
    assert_ne!(changed.id, first.id);
}

/// A project with two services built from `api/` and `web/`, two scenarios on `api`
/// and one on `web` (each starting only its own service); each scenario reads the
/// file its image was built with.
fn two_builds() -> tempfile::TempDir {
    let dockerfile =
        "FROM clnrm/busybox:latest\nCOPY app.txt /app.txt\nCMD [\"sleep\", \"3600\"]\n";
    let scenario = |name: &str, service: &str, want: &str| {
        format!(
            "[[scenario]]\nname = \"{name}\"\nservice = \"{service}\"\nservices = [\"{service}\"]\n\n[[scenario.steps]]\nname = \"read\"\ncommand = [\"cat\", \"/app.txt\"]\nexpected_output_regex = \"{want}\"\n\n"
        )
    };
    let test = format!(
        "[meta]\nname = \"b\"\nversion = \"1\"\n\n[service.api]\nbuild = {{ context = \"../api\" }}\n\n[service.web]\nbuild = \"../web\"\n\n{}{}{}",
        scenario("api-one", "api", "api v"),
        scenario("api-two", "api", "api v"),
        scenario("web", "web", "web v1"),
    );
    common::project(&[
        ("tests/b.clnrm.toml", &test),
        ("api/Dockerfile", dockerfile),
        ("api/app.txt", "api v1\n"),
        ("api/.dockerignore", "*.log\n"),
        ("web/Dockerfile", dockerfile),
        ("web/app.txt", "web v1\n"),
    ])
}

/// `clnrm run` in `dir` with the human report on stdout and the JSON one read from
/// `--report-dir`: (exit code, stdout, report).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let reports = dir.join("reports");
    let out = common::clnrm(dir)
        .arg("run")
        .arg("--report-dir")
        .arg(&reports)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(reports.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    (out.status.code(), stdout, json)
}

fn builds_of(stdout: &str, service: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("Built ") && l.contains(&format!("for service {service} ")))
        .count()
}

#[test]
fn a_run_builds_what_changed_once_and_re_runs_only_the_scenarios_of_that_service() {
    let dir = two_builds();
    let root = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    let _clean = RemoveBuilt(root.clone());
    let p = |s: &str| (s.to_owned(), "passed".to_owned());
    let c = |s: &str| (s.to_owned(), "cached".to_owned());

    // The first run builds each image once, though two scenarios need api's.
    let (code, out, report) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        statuses(&report),
        vec![p("api-one"), p("api-two"), p("web")]
    );
    assert_eq!(
        (builds_of(&out, "api"), builds_of(&out, "web")),
        (1, 1),
        "{out}"
    );
    let images = built(&root);
    assert_eq!(images.len(), 2, "{images:?}");

    // Nothing changed: everything cached, and even forced, nothing is built.
    let (_, out, report) = run(dir.path(), &[]);
    assert_eq!(
        statuses(&report),
        vec![c("api-one"), c("api-two"), c("web")],
        "{out}"
    );
    let (code, out, _) = run(dir.path(), &["--force"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("Built "), "{out}");
    assert_eq!(built(&root), images);

    // What .dockerignore leaves out is no change.
    std::fs::write(dir.path().join("api/debug.log"), "noise").unwrap_or_else(|e| panic!("{e}"));
    let (_, out, report) = run(dir.path(), &[]);
    assert_eq!(
        statuses(&report),
        vec![c("api-one"), c("api-two"), c("web")],
        "{out}"
    );

    // A change of api's source rebuilds api once and re-runs its scenarios only.
    std::fs::write(dir.path().join("api/app.txt"), "api v2\n").unwrap_or_else(|e| panic!("{e}"));
    let (code, out, report) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        statuses(&report),
        vec![p("api-one"), p("api-two"), c("web")],
        "{out}"
    );
    assert_eq!(
        (builds_of(&out, "api"), builds_of(&out, "web")),
        (1, 0),
        "{out}"
    );
    assert_eq!(built(&root).len(), 3);

    // `cache stats` lists them; `cache clear` keeps the newest of each service.
    let stats = common::clnrm(dir.path())
        .args(["cache", "stats"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(text.contains("built:      3"), "{text}");
    let cleared = common::clnrm(dir.path())
        .args(["cache", "clear"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&cleared.stdout);
    assert_eq!(cleared.status.code(), Some(0), "{text}");
    assert!(
        text.contains("removed 1 built image (kept the newest of each service: 2)"),
        "{text}"
    );
    assert_eq!(built(&root).len(), 2);
    // What is kept is what the next run uses: it builds nothing.
    let (code, out, _) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("Built "), "{out}");
}

#[test]
fn a_broken_dockerfile_is_an_error_of_its_scenarios_naming_its_line() {
    let dir = two_builds();
    let root = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    let _clean = RemoveBuilt(root.clone());
    std::fs::write(
        dir.path().join("api/Dockerfile"),
        "FROM clnrm/busybox:latest\n# the app\nCOPY app.txt /app.txt\nRUN echo building && exit 7\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, report) = run(dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}");
    let st = statuses(&report);
    assert_eq!(st[0].1, "error", "{report:#}");
    assert_eq!(st[1].1, "error");
    assert_eq!(st[2].1, "passed", "web builds and passes");
    let sc = &report["scenarios"][0];
    assert_eq!(sc["reason"], "build_failed", "{sc:#}");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("api/Dockerfile:4 (RUN echo building && exit 7)"),
        "{message}"
    );
    assert!(
        message.contains("tests/b.clnrm.toml:6:"),
        "where the build is written: {message}"
    );
    // Docker: "returned a non-zero code: 7"; Podman: "exit status 7".
    assert!(
        message.contains("code: 7") || message.contains("status 7"),
        "{message}"
    );
    let log = sc["services"][0]["log_tail"].as_str().unwrap_or_default();
    assert!(log.contains("building"), "the builder's output: {sc:#}");
    assert_eq!(sc["services"][0]["build"], true);
    assert!(out.contains("last lines of the builder's output"), "{out}");
    // `clnrm build` says the same, and fails.
    let b = common::clnrm(dir.path())
        .arg("build")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("api/Dockerfile:4"), "{stderr}");
    // Mended, `clnrm build` builds it, and the run that follows builds nothing.
    std::fs::write(
        dir.path().join("api/Dockerfile"),
        "FROM clnrm/busybox:latest\nCOPY app.txt /app.txt\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let b = common::clnrm(dir.path())
        .arg("build")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&b.stdout);
    assert_eq!(
        b.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(stdout.contains("built      clnrm-build/"), "{stdout}");
    assert!(
        stdout.contains("up to date clnrm-build/"),
        "web was built by the run: {stdout}"
    );
    let (code, out, report) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("Built "), "{out}");
    assert_eq!(statuses(&report)[0].1, "passed");
}
