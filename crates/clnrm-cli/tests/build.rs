//! Building the system under test from its source through the engine's build API
//! (SPEC §14, issue 29), against the real engine: what `.dockerignore` leaves out is
//! not sent, the image is tagged by its key, and a broken step is a failed build with
//! the builder's words.

use clnrm_core::backend::{BuildOutcome, BuildSpec, ContainerEngine, Docker, Labels};
use clnrm_core::build::{BuildRecipe, build_key, context_tar};
use clnrm_core::inputs::StatIndex;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    std::fs::write(root.join(rel), text).unwrap_or_else(|e| panic!("{rel}: {e}"));
}

fn spec(tag: &str) -> BuildSpec {
    BuildSpec {
        tag: tag.to_owned(),
        dockerfile: "Dockerfile".into(),
        labels: Labels::from([("clnrm.test".to_owned(), "build".to_owned())]),
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
    let wanted_now = || {
        let recipe = BuildRecipe::default();
        let key =
            build_key(root, &recipe, &mut StatIndex::in_memory()).unwrap_or_else(|e| panic!("{e}"));
        let wanted = Wanted {
            context: root.to_path_buf(),
            recipe,
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
