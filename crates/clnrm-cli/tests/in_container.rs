//! clnrm in its own container against the host's engine, the way CI runners run a job
//! (GitLab's Docker executor, Jenkins agents): the image `scripts/clnrm-image.sh`
//! builds from `clnrm/bookworm` with this test's binary, the engine's socket mounted,
//! the project mounted at another path than the host's. Every example passes: HTTP
//! steps and health checks reach services through the networks clnrm joins (not the
//! engine host's loopback), the SDK apps' spans reach the receiver at clnrm's address
//! there, bind mounts are given to the engine as its host's paths; nothing is left.
mod common;

#[path = "common/engine.rs"]
mod engine;

use common::{RemoveBuilt, copy_context, copy_dir, project, repo_root};
use engine::{containers, networks};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The image of clnrm built for this test, removed when it ends.
struct Image(String);

impl Image {
    fn build() -> Self {
        let tag = format!("clnrm/clnrm:test-{}", std::process::id());
        let out = Command::new(repo_root().join("scripts/clnrm-image.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_clnrm"), "--tag", &tag])
            .output()
            .unwrap_or_else(|e| panic!("scripts/clnrm-image.sh: {e}"));
        assert!(
            out.status.success(),
            "scripts/clnrm-image.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(tag)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// A user-defined network for clnrm's container (as GitLab makes one per job),
/// removed when the test ends.
struct JobNetwork(String);

impl JobNetwork {
    fn create() -> Self {
        let name = format!("clnrm-job-{}", std::process::id());
        engine::docker(&["network", "create", &name]);
        Self(name)
    }
}

impl Drop for JobNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// `clnrm ARGS` in a container of `image` on `network`, with the engine's socket and
/// `dir` mounted at `/project` (its working directory): its exit code and report,
/// after checking that the run left no container and no network (each network was
/// left by clnrm's container before it was removed).
fn clnrm_in_container(
    image: &Image,
    network: &str,
    dir: &Path,
    args: &[&str],
) -> (Option<i32>, Value) {
    let name = format!("clnrm-in-container-{}", std::process::id());
    let out = Command::new("docker")
        .args(["run", "--rm", "--name", &name, "--network", network])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .args(["-v", &format!("{}:/project", dir.display())])
        .args(["-e", "NO_COLOR=1", &image.0])
        .args(["run", "--format", "json"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker run: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\n{stderr}"));
    let run_id = report["run_id"].as_str().unwrap_or_default();
    assert!(!run_id.is_empty(), "{report:#}\n{stderr}");
    let label = format!("clnrm.run={run_id}");
    assert_eq!(containers(&label), Vec::<String>::new(), "left containers");
    assert_eq!(networks(&label), Vec::<String>::new(), "left networks");
    (out.status.code(), report)
}

#[test]
fn the_examples_pass_with_clnrm_in_its_own_container_against_the_hosts_engine() {
    let image = Image::build();
    let dir = project(&[]);
    copy_dir(&repo_root().join("examples"), &dir.path().join("examples"));
    copy_context("images/orders-app", dir.path());
    // Copied with the examples; checked to hold its wheels.
    common::context("examples/web-develop/app");
    std::fs::copy(
        repo_root().join(".clnrm/trace.json"),
        dir.path().join(".clnrm/trace.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let _clean = RemoveBuilt::of(dir.path());

    // On a network of the job's, as GitLab runs a job: clnrm joins the default bridge
    // for the scenarios that use it, and each scenario's own network.
    let job = JobNetwork::create();
    let (code, report) =
        clnrm_in_container(&image, &job.0, dir.path(), &["--workers", "2", "examples"]);
    assert_eq!(code, Some(0), "{report:#}");
    let scenarios = report["scenarios"].as_array().cloned().unwrap_or_default();
    let files = std::fs::read_dir(repo_root().join("examples"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".clnrm.toml"))
        .count();
    assert!(scenarios.len() >= files, "{report:#}");
    for sc in &scenarios {
        assert_eq!(sc["status"], "passed", "{sc:#}");
    }
    let spans = |file: &str| {
        scenarios
            .iter()
            .filter(|s| s["file"] == file)
            .map(|s| s["spans"].as_u64().unwrap_or(0))
            .min()
            .unwrap_or_else(|| panic!("no scenario of {file} in {report:#}"))
    };
    // Over OTLP to the receiver at clnrm's address on the scenario's network: the
    // hand-written exporter, and the SDK of the apps (reached by HTTP steps).
    assert!(
        spans("examples/otlp-payments.clnrm.toml") >= 2,
        "{report:#}"
    );
    assert!(
        spans("examples/orders-postgres.clnrm.toml") >= 3,
        "{report:#}"
    );
    assert!(spans("examples/web-develop.clnrm.toml") >= 2, "{report:#}");

    // On the host's network (`--network host`): the engine host's loopback and
    // gateway are clnrm's; only paths are translated.
    let (code, report) = clnrm_in_container(
        &image,
        "host",
        dir.path(),
        &[
            "--force",
            "examples/http-api.clnrm.toml",
            "examples/otlp-payments.clnrm.toml",
        ],
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["summary"]["passed"], 2, "{report:#}");

    // A bind mount of a path that only clnrm's container has: the engine would mount
    // another thing of that name from its host, so it is refused, with the path.
    std::fs::write(
        dir.path().join("outside.clnrm.toml"),
        "[meta]\nname = \"outside\"\nversion = \"1.0\"\n\n[service.box]\nplugin = \"generic_container\"\n\
         image = \"clnrm/busybox:latest\"\nvolumes = [{ host_path = \"/usr/share\", container_path = \"/data\" }]\n\n\
         [[scenario]]\nname = \"reads\"\nservice = \"box\"\nrun = \"ls /data\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, report) = clnrm_in_container(&image, &job.0, dir.path(), &["outside.clnrm.toml"]);
    // How clnrm is run, not the test, is at fault: an environment error.
    assert_eq!(code, Some(3), "{report:#}");
    let message = report["scenarios"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("/usr/share is inside clnrm's container")
            && message.contains("mount the project into clnrm's container"),
        "{report:#}"
    );
}

/// Containers (running or not) and networks carrying `label`.
fn left(label: &str) -> (Vec<String>, Vec<String>) {
    (containers(label), networks(label))
}

#[test]
fn what_a_killed_clnrm_container_left_is_reaped_by_the_next_run_on_the_host() {
    let image = Image::build();
    // Two services: a network of the scenario's own, which clnrm's container joins.
    let dir = project(&[(
        "tests/slow.clnrm.toml",
        &format!(
            "[meta]\nname = \"slow\"\nversion = \"1\"\n\n[service.a]\nimage = \"{busybox}\"\n\n\
             [service.b]\nimage = \"{busybox}\"\n\n[[scenario]]\nname = \"waits\"\nservice = \"a\"\nrun = \"sleep 120\"\n",
            busybox = engine::IMAGE
        ),
    )]);
    let name = format!("clnrm-killed-{}", std::process::id());
    let project = format!("{}:/project", dir.path().display());
    let id = engine::docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &project,
        &image.0,
        "run",
        "tests",
    ]);
    let label = format!("clnrm.container={id}");
    engine::wait_until("the scenario's containers", Duration::from_secs(60), || {
        let (c, n) = left(&label);
        c.len() == 2 && n.len() == 1
    });
    // Killed: nothing of clnrm's clean-up runs.
    engine::docker(&["rm", "-f", &name]);
    let (c, n) = left(&label);
    assert!(c.len() == 2 && n.len() == 1, "{c:?} {n:?}");

    // The next run on the host sees that the engine no longer runs that container.
    std::fs::write(
        dir.path().join("tests/slow.clnrm.toml"),
        format!(
            "[meta]\nname = \"quick\"\nversion = \"1\"\n\n[service.a]\nimage = \"{}\"\n\n\
             [[scenario]]\nname = \"quick\"\nservice = \"a\"\nrun = \"true\"\n",
            engine::IMAGE
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = common::clnrm(dir.path())
        .args(["run", "tests"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(left(&label), (Vec::new(), Vec::new()), "{text}");
}
