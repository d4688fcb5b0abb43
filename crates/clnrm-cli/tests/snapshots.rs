//! Fixture snapshots end to end against the real engine (SPEC §7.3): set-up runs once
//! per key, every scenario starts from its result (the data in a declared `VOLUME`
//! included), later runs reuse it, a changed set-up makes a new one, `clnrm cache`
//! lists and removes them, and a failed set-up fails the scenarios that need it. The
//! volume's data is not copied per container: each mounts an overlay over the
//! fixture's volume, which no scenario's writes reach.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;

use common::{clnrm, project};
use engine::IMAGE;
use runs::{run_json, scenario};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// An image like the official database images: its data directory is a `VOLUME`.
fn volume_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const TAG: &str = "clnrm-test/volume:latest";
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!("FROM {IMAGE}\nRUN [\"mkdir\", \"-p\", \"/data\"]\nVOLUME /data\n"),
        )
        .unwrap();
        engine::docker_build(TAG, dir.path());
    });
    TAG
}

/// A file whose service `db` (image with a `VOLUME /data`, `shared` mounted at
/// `/shared`) is set up by `setup` (a shell script), with `count` scenarios that
/// each print the data and then change it.
fn seeded(shared: &Path, setup: &str, count: usize) -> String {
    let mut out = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.db]\nimage = \"{}\"\nvolumes = [{{ host_path = \"{}\", container_path = \"/shared\" }}]\n\n[[service.db.setup]]\nname = \"seed\"\ncommand = [\"sh\", \"-c\", \"echo setup >> /shared/setups; {setup}\"]\n\n",
        volume_image(),
        shared.display()
    );
    for i in 0..count {
        out.push_str(&format!(
            "[[scenario]]\nname = \"reader {i}\"\nrun = \"sh -c 'cat /data/seed /etc/seeded; grep -E \\\" /data \\\" /proc/mounts; echo changed > /data/seed; rm /etc/seeded'\"\n\n"
        ));
    }
    out
}

fn setups(shared: &Path) -> usize {
    std::fs::read_to_string(shared.join("setups"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// `clnrm cache stats` in `dir`: its stdout.
fn stats(dir: &Path) -> String {
    let out = clnrm(dir).args(["cache", "stats"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids `docker <args> -q` lists (with `--filter <filter>` when given).
fn docker_ids(args: &[&str], filter: Option<String>) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.args(args).arg("-q");
    if let Some(f) = filter {
        cmd.arg("--filter").arg(f);
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// What carries the project label of `dir`'s snapshots.
fn of_project(dir: &Path) -> Option<String> {
    let root = std::fs::canonicalize(dir).unwrap();
    Some(format!("label=clnrm.snapshot.project={}", root.display()))
}

/// The project's fixture volumes (a snapshot's data), as the engine lists them.
fn fixture_volumes(dir: &Path) -> Vec<String> {
    docker_ids(&["volume", "ls"], of_project(dir))
}

/// The volumes whose names hold `run_id` (a run's layers and helper's).
fn run_volumes(run_id: &str) -> Vec<String> {
    docker_ids(&["volume", "ls"], None)
        .into_iter()
        .filter(|v| v.contains(run_id) && !v.starts_with("clnrm-fixture-"))
        .collect()
}

/// The project's snapshot images, as the engine lists them.
fn snapshot_images(dir: &Path) -> Vec<String> {
    docker_ids(&["images"], of_project(dir))
}

/// The layers of an image, as the engine lists them.
fn layers(image: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            image,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The names of the containers the engine created from `since` (a Unix time) to now.
fn created_since(since: u64) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &now.to_string(),
        ])
        .args(["--filter", "type=container", "--filter", "event=create"])
        .args(["--format", "{{.Actor.Attributes.name}}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether the engine the tests drive is Podman's Docker-compatible service.
fn on_podman() -> bool {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{json .Server}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("Podman")
}

#[test]
fn a_snapshot_with_volume_data_is_made_once_and_every_scenario_starts_from_it() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    let token = format!("seed-{}", std::process::id());
    let setup = format!("echo data-{token} > /data/seed; echo layer-{token} > /etc/seeded");
    std::fs::write(
        dir.path().join("tests/db.clnrm.toml"),
        seeded(&shared, &setup, 4),
    )
    .unwrap();

    // Each scenario changes the data; the next still starts from the snapshot's.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = run_json(dir.path(), &["--workers", "2", "--force"]);
    run.assert_passed();
    // As root on the engine's host, clnrm makes the upper layers itself: no helper
    // container (clnrm in a container, which does not see the engine's volumes,
    // uses one: tests/in_container.rs runs the orders example's snapshot so).
    let run_id = run.json["run_id"].as_str().unwrap_or_default().to_owned();
    if !on_podman() && std::fs::read_dir("/var/lib/docker/volumes").is_ok() {
        let helpers: Vec<String> = created_since(since)
            .into_iter()
            .filter(|n| n.contains(&run_id) && n.ends_with("fixture-helper"))
            .collect();
        assert_eq!(helpers, Vec::<String>::new());
    }
    for i in 0..4 {
        let stdout = scenario(&run, &format!("reader {i}"))["steps"][0]["stdout"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            stdout.contains(&format!("data-{token}")) && stdout.contains(&format!("layer-{token}")),
            "reader {i} did not see the seeded data: {stdout:?}"
        );
        // Its data directory is an overlay over the fixture's volume, not a copy.
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("overlay /data overlay")),
            "reader {i}'s /data is not an overlay: {stdout:?}"
        );
    }
    assert_eq!(setups(&shared), 1, "the set-up ran once for four scenarios");
    let snapshot = snapshot_images(dir.path());
    assert_eq!(snapshot.len(), 1);
    assert_ne!(
        layers(&snapshot[0]),
        layers(volume_image()),
        "a set-up that wrote /etc/seeded is committed"
    );
    assert_eq!(
        fixture_volumes(dir.path()).len(),
        1,
        "the data is in a volume of its own"
    );
    assert!(!run_id.is_empty());
    assert_eq!(
        run_volumes(&run_id),
        Vec::<String>::new(),
        "the run's layers are gone"
    );
    let listed = stats(dir.path());
    assert!(
        listed.contains("snapshots:  1") && listed.contains("service \"db\""),
        "{listed}"
    );

    // A second run reuses it, and its data is still the set-up's.
    let again = run_json(dir.path(), &["--force"]);
    again.assert_passed();
    assert_eq!(setups(&shared), 1, "the second run made the set-up again");
    let stdout = scenario(&again, "reader 0")["steps"][0]["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(stdout.contains(&format!("data-{token}")), "{stdout:?}");

    // A changed set-up is another key: a new snapshot.
    let token2 = format!("{token}-b");
    let setup2 = format!("echo data-{token2} > /data/seed; echo layer-{token2} > /etc/seeded");
    std::fs::write(
        dir.path().join("tests/db.clnrm.toml"),
        seeded(&shared, &setup2, 1),
    )
    .unwrap();
    let run = run_json(dir.path(), &["--force"]);
    run.assert_passed();
    let stdout = scenario(&run, "reader 0")["steps"][0]["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(stdout.contains(&format!("data-{token2}")), "{stdout:?}");
    assert_eq!(setups(&shared), 2);
    assert_eq!(snapshot_images(dir.path()).len(), 2);

    let out = clnrm(dir.path()).args(["cache", "clear"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("removed 2 snapshots"), "{said}");
    assert_eq!(snapshot_images(dir.path()), Vec::<String>::new());
    assert_eq!(fixture_volumes(dir.path()), Vec::<String>::new());
    assert!(stats(dir.path()).contains("snapshots:  0"));
}

#[test]
fn a_failed_setup_fails_each_scenario_that_needs_it_with_the_step_output() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    let setup = format!(
        "echo seeding-{} >&2; echo no such table >&2; exit 3",
        std::process::id()
    );
    std::fs::write(
        dir.path().join("tests/db.clnrm.toml"),
        seeded(&shared, &setup, 2),
    )
    .unwrap();
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    for i in 0..2 {
        let sc = scenario(&run, &format!("reader {i}"));
        assert_eq!(sc["status"], "failed", "{sc:#}");
        assert_eq!(sc["reason"], "setup_failed", "{sc:#}");
        let message = sc["message"].as_str().unwrap_or_default();
        assert!(
            message.matches("set-up of service \"db\" failed").count() == 1
                && message.contains("step \"seed\": exit code 3, expected 0")
                && message.contains("no such table"),
            "{message}"
        );
    }
    assert_eq!(
        setups(&shared),
        1,
        "a failed set-up is not retried per scenario"
    );
    assert_eq!(snapshot_images(dir.path()), Vec::<String>::new());
    assert_eq!(
        fixture_volumes(dir.path()),
        Vec::<String>::new(),
        "no data kept"
    );
}

#[test]
fn a_fixture_one_shot_runs_once_into_the_snapshot_and_scenarios_never_start_it() {
    let dir = project(&[]);
    let shared = dir.path().join("shared");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    let token = format!("migrated-{}", std::process::id());
    std::fs::write(migrations.join("m.sql"), format!("{token}-v1\n")).unwrap();
    // `db` keeps what it is sent on port 9000 in its data; `migrate` sends it the
    // mounted migration once, into the fixture; `app` waits for the migration only
    // (so it waits for what the migration waited for), as a scenario's service would.
    let text = format!(
        r#"[meta]
name = "t"
version = "1"

[service.db]
image = "{image}"
args = ["sh", "-c", "trap 'exit 0' TERM; while true; do nc -l -p 9000 >> /data/migrated & wait $!; done"]

[[service.db.setup]]
name = "seed"
command = ["sh", "-c", "echo seeded > /data/seed"]

[service.migrate]
image = "{busybox}"
args = ["sh", "-c", "echo run >> /shared/migrations; nc -w 2 db 9000 < /migrations/m.sql"]
volumes = [{{ host_path = "{shared}", container_path = "/shared" }}, {{ host_path = "{migrations}", container_path = "/migrations", read_only = true }}]
depends_on = {{ db = "started" }}
fixture = true

[service.app]
image = "{busybox}"
depends_on = {{ migrate = "completed" }}

[[scenario]]
name = "reader 0"
service = "db"
run = "cat /data/seed /data/migrated"

[[scenario]]
name = "reader 1"
service = "db"
run = "cat /data/seed /data/migrated"

[[scenario]]
name = "reader 2"
service = "app"
run = "true"
"#,
        image = volume_image(),
        busybox = IMAGE,
        shared = shared.display(),
        migrations = migrations.display(),
    );
    std::fs::write(dir.path().join("tests/db.clnrm.toml"), text).unwrap();
    let runs = || {
        std::fs::read_to_string(shared.join("migrations"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let read = |run: &runs::Run, i: usize| {
        scenario(run, &format!("reader {i}"))["steps"][0]["stdout"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let run = run_json(dir.path(), &["--workers", "2", "--force"]);
    run.assert_passed();
    assert_eq!(runs(), 1, "the one-shot ran once for three scenarios");
    // The set-up wrote only into the volume: on Docker, where clnrm reads the
    // container's layer (as root, Docker's data on this host), the snapshot is the
    // image itself with labels (no commit); on Podman a commit.
    let snapshot = snapshot_images(dir.path());
    assert_eq!(snapshot.len(), 1);
    let same = layers(&snapshot[0]) == layers(volume_image());
    if on_podman() {
        assert!(!same, "Podman commits");
    } else if std::fs::read_dir("/var/lib/docker").is_ok() {
        assert!(same, "the snapshot was committed, not relabelled");
    }
    for i in 0..2 {
        let seen = read(&run, i);
        assert!(
            seen.contains("seeded") && seen.contains(&format!("{token}-v1")),
            "reader {i}: {seen:?}"
        );
    }
    for i in 0..3 {
        let services = scenario(&run, &format!("reader {i}"))["services"].to_string();
        assert!(
            !services.contains("\"migrate\""),
            "reader {i} started migrate: {services}"
        );
    }
    // A second run starts from the same snapshot: the one-shot does not run again.
    run_json(dir.path(), &["--force"]).assert_passed();
    assert_eq!(runs(), 1);

    // A changed migration (a file the one-shot mounts) makes a new snapshot, and the
    // cache does not answer for the scenarios that start from it.
    std::fs::write(migrations.join("m.sql"), format!("{token}-v2\n")).unwrap();
    let run = run_json(dir.path(), &["--workers", "2"]);
    run.assert_passed();
    assert_eq!(runs(), 2, "a changed migration runs again");
    let seen = read(&run, 0);
    assert!(seen.contains(&format!("{token}-v2")), "{seen:?}");

    // A step in the one-shot, or a scenario that selects it, is refused: no scenario
    // starts it.
    let file = std::fs::read_to_string(dir.path().join("tests/db.clnrm.toml")).unwrap();
    for bad in [
        file.replace(
            "service = \"app\"\nrun = \"true\"",
            "service = \"migrate\"\nrun = \"true\"",
        ),
        file.replace(
            "service = \"app\"\nrun = \"true\"",
            "services = [\"migrate\"]\nrun = \"true\"",
        ),
    ] {
        std::fs::write(dir.path().join("tests/db.clnrm.toml"), bad).unwrap();
        let out = clnrm(dir.path()).args(["validate"]).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains("runs once into a fixture"), "{said}");
    }
    let _ = clnrm(dir.path()).args(["cache", "clear"]).output();
}
