//! `clnrm import` on six Compose files written to resemble common stacks
//! (`tests/fixtures/compose/`): each imports to a file that `validate --deny-warnings`
//! and the JSON Schema accept, and the two whose images the project builds (`orders`,
//! `static-site`) run in real containers, one-shots, health checks, env files and
//! entrypoints included; the one built from source (`built-app`) runs with the images
//! clnrm builds from its `build` keys.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;
#[path = "common/schema.rs"]
mod schema;

use common::{RemoveBuilt, built, clnrm, copy_dir};
use runs::{run_json, scenario};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose")
}

/// A project holding the stack `name` under `stack/`, imported into
/// `tests/<name>.clnrm.toml`; the project, the output's path and its table.
fn imported(name: &str) -> (tempfile::TempDir, String, toml::Table) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&fixtures().join(name), &dir.path().join("stack"));
    let compose = ["compose.yaml", "docker-compose.yml"]
        .into_iter()
        .map(|f| format!("stack/{f}"))
        .find(|f| dir.path().join(f).exists())
        .unwrap_or_else(|| panic!("{name} has no compose file"));
    // No tests/ yet: `-o` makes the directory (README's own example).
    let out_path = format!("tests/{name}.clnrm.toml");
    let out = clnrm(dir.path())
        .args(["import", &compose, "-o", &out_path])
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("LOG_LEVEL")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
    assert!(stderr.contains("0 errors, 0 warnings"), "{name}: {stderr}");
    let text =
        std::fs::read_to_string(dir.path().join(&out_path)).unwrap_or_else(|e| panic!("{e}"));
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let check = clnrm(dir.path())
        .args(["validate", "--deny-warnings", &out_path])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        check.status.code(),
        Some(0),
        "{name}: {}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );
    let refused = schema::schema_errors(&schema::validator(), &text);
    assert!(
        refused.is_empty(),
        "{name}: the schema refuses {refused:?}\n{text}"
    );
    (dir, out_path, table)
}

fn scenario_names(t: &toml::Table) -> Vec<&str> {
    t["scenario"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default()
}

fn header(t: &Path) -> String {
    std::fs::read_to_string(t)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn five_common_stacks_import_to_files_that_validate() {
    // Django: Postgres, Redis, a migration one-shot, a worker; .env and an env file.
    let (dir, out, t) = imported("django-postgres-redis");
    let svc = &t["service"];
    assert_eq!(
        svc["db"]["env"]["POSTGRES_PASSWORD"].as_str(),
        Some("s3cret")
    );
    assert_eq!(svc["db"]["health_check"]["retries"].as_integer(), Some(12));
    assert_eq!(
        svc["db"]["health_check"]["cmd"][2].as_str(),
        Some("pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}")
    );
    // Built from the Compose file's directory, relative to tests/.
    assert_eq!(svc["web"]["build"].as_str(), Some("../stack"));
    assert!(svc["web"].get("image").is_none());
    assert_eq!(
        svc["web"]["depends_on"]["migrate"].as_str(),
        Some("completed")
    );
    assert_eq!(svc["web"]["depends_on"]["cache"].as_str(), Some("healthy"));
    assert_eq!(
        svc["web"]["env"]["DJANGO_SECRET_KEY"].as_str(),
        Some("dev-only-s3cret")
    );
    assert_eq!(svc["cache"]["args"][2].as_str(), Some(""));
    // Relative in Compose, relative in clnrm: from tests/ to stack/src.
    assert_eq!(
        svc["worker"]["volumes"][0]["host_path"].as_str(),
        Some("../stack/src")
    );
    assert_eq!(
        scenario_names(&t),
        [
            "db is healthy",
            "cache is healthy",
            "web is healthy",
            "worker starts"
        ]
    );
    let head = header(&dir.path().join(&out));
    for part in [
        "services.db.restart",
        "named volume",
        "services.worker.deploy",
    ] {
        assert!(head.contains(part), "{part}:\n{head}");
    }

    // Node behind nginx, over MongoDB: list-form environment, long-form ports and
    // volumes, networks, a variable taken from an unset environment.
    let (dir, out, t) = imported("node-mongo-nginx");
    let svc = &t["service"];
    assert_eq!(
        svc["proxy"]["volumes"][1]["read_only"].as_bool(),
        Some(true)
    );
    assert_eq!(svc["api"]["ports"][0].as_integer(), Some(3000));
    assert_eq!(svc["api"]["args"][0].as_str(), Some("npm"));
    assert_eq!(
        svc["mongo"]["health_check"]["retries"].as_integer(),
        Some(7)
    );
    assert!(svc["api"]["env"].get("LOG_LEVEL").is_none());
    let head = header(&dir.path().join(&out));
    for part in [
        "working_dir",
        "LOG_LEVEL: taken from the environment",
        "networks",
    ] {
        assert!(head.contains(part), "{part}:\n{head}");
    }

    // WordPress over MySQL: an entrypoint, a profile, `${VAR:-default}` in a port.
    let (dir, out, t) = imported("wordpress-mysql");
    let svc = &t["service"];
    assert_eq!(svc["wordpress"]["ports"][0].as_integer(), Some(80));
    assert_eq!(svc["wpcli"]["entrypoint"][0].as_str(), Some("wp"));
    assert_eq!(
        svc["wordpress"]["env"]["WORDPRESS_DEBUG"].as_str(),
        Some("1")
    );
    assert_eq!(
        svc["mysql"]["args"][0].as_str(),
        Some("--default-authentication-plugin=mysql_native_password")
    );
    let head = header(&dir.path().join(&out));
    for part in [
        "services.wpcli.profiles",
        "services.wpcli.user",
        "depends_on.mysql.restart",
    ] {
        assert!(head.contains(part), "{part}:\n{head}");
    }

    // The two that run here are checked by the next test; they validate too.
    for name in ["orders", "static-site"] {
        let (_dir, _out, t) = imported(name);
        assert!(!scenario_names(&t).is_empty());
    }
}

/// An image built from a context of the repository with `docker build`, removed when
/// the test ends.
struct BuiltByHand(&'static str);

impl BuiltByHand {
    fn new(tag: &'static str, rel: &str) -> Self {
        let out = std::process::Command::new("docker")
            .args(["build", "-q", "--label", "clnrm.test=import", "-t", tag])
            .arg(common::context(rel))
            .output()
            .unwrap_or_else(|e| panic!("docker build: {e}"));
        assert!(
            out.status.success(),
            "docker build {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(tag)
    }
}

impl Drop for BuiltByHand {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", self.0])
            .output();
    }
}

#[test]
fn imported_stacks_run_where_their_images_exist() {
    // The orders stack: PostgreSQL, the migration one-shot, the app once both are done.
    // Its app's image is the orders example's, built from its source as `docker compose
    // build` would (an imported stack runs images; it does not build them).
    let _app = BuiltByHand::new("clnrm-test/orders-app:latest", "images/orders-app");
    let (dir, out, t) = imported("orders");
    assert_eq!(scenario_names(&t), ["db is healthy", "app is healthy"]);
    let run = run_json(dir.path(), &["--workers", "2", &out]);
    run.assert_passed();
    let app = scenario(&run, "app is healthy");
    for one_shot in ["seed", "migrate"] {
        let ran = app["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == one_shot))
            .unwrap_or_else(|| panic!("{one_shot} did not run: {app:#}"));
        assert_eq!(ran["exit_code"], 0, "{ran:#}");
    }

    // Busybox: httpd by its entrypoint, serving a bind-mounted directory; a health check
    // whose `$${GREETING}` reaches the shell as `${GREETING}` from the env file; a
    // worker that waits for the seeder to complete.
    let (dir, out, t) = imported("static-site");
    assert_eq!(scenario_names(&t), ["web is healthy", "worker starts"]);
    let run = run_json(dir.path(), &["--workers", "2", &out]);
    run.assert_passed();
    let worker = scenario(&run, "worker starts");
    let seed = worker["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "seed"))
        .unwrap_or_else(|| panic!("seed did not run: {worker:#}"));
    assert_eq!(seed["exit_code"], 0, "{seed:#}");
    assert!(
        seed["log_tail"]
            .as_str()
            .unwrap_or_default()
            .contains("seeded hello"),
        "{seed:#}"
    );
}

#[test]
fn a_stack_built_from_source_runs_with_the_images_clnrm_builds() {
    let (dir, out, t) = imported("built-app");
    let root = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    let _clean = RemoveBuilt(root.clone());
    let svc = &t["service"];
    // `image` with `build` is the build's tag in Compose: the build is kept.
    assert_eq!(svc["web"]["build"].as_str(), Some("../stack/app"));
    assert!(svc["web"].get("image").is_none());
    let worker = &svc["worker"]["build"];
    assert_eq!(worker["context"].as_str(), Some("../stack/app"));
    assert_eq!(
        worker["dockerfile"].as_str(),
        Some("docker/worker.Dockerfile")
    );
    assert_eq!(worker["target"].as_str(), Some("runtime"));
    assert_eq!(
        worker["args"]["GREETING"].as_str(),
        Some("hello from the worker's build")
    );
    // Develop paths: from the Compose file's directory to the context's.
    let rules = svc["worker"]["develop"]["watch"]
        .as_array()
        .unwrap_or_else(|| panic!("no develop rules: {t:#?}"));
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0]["path"].as_str(), Some("src"));
    assert_eq!(rules[0]["action"].as_str(), Some("sync"));
    assert_eq!(rules[0]["target"].as_str(), Some("/app/src"));
    assert_eq!(rules[1]["path"].as_str(), Some("docker"));
    assert_eq!(rules[1]["action"].as_str(), Some("rebuild"));
    let head = header(&dir.path().join(&out));
    for part in [
        "services.web.image: \"shop/web:dev\"",
        "services.worker.build.cache_from",
        "services.worker.develop.watch[0].ignore",
        "services.worker.develop.watch[2]",
    ] {
        assert!(head.contains(part), "{part}:\n{head}");
    }

    // Each image holds what its build put there: the context's file, the argument and
    // the target stage's copy (the stage after it, which fails, is not built).
    let check = |name: &str, service: &str, command: &str, want: &str| {
        format!(
            "\n[[scenario]]\nname = \"{name}\"\nservices = [\"{service}\"]\n\n\
             [[scenario.steps]]\nname = \"read\"\nservice = \"{service}\"\n\
             command = [\"sh\", \"-c\", \"{command}\"]\nexpected_output_regex = \"{want}\"\n"
        )
    };
    let path = dir.path().join(&out);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    text.push_str(&check(
        "web has its context's file",
        "web",
        "cat /greeting.txt",
        "hello from the web context",
    ));
    text.push_str(&check(
        "worker has its argument and its stage",
        "worker",
        "cat /greeting.txt && sh /app/src/work.sh",
        "hello from the worker's build\\nworker v1",
    ));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    assert!(built(&root).is_empty(), "nothing is built before the run");
    let run = run_json(dir.path(), &["--workers", "2", &out]);
    run.assert_passed();
    for name in [
        "web starts",
        "worker starts",
        "web has its context's file",
        "worker has its argument and its stage",
    ] {
        assert_eq!(scenario(&run, name)["status"], "passed", "{name}");
    }
    assert_eq!(built(&root).len(), 2, "clnrm built both images");
}

#[test]
fn bad_compose_files_are_refused_with_their_position() {
    let dir = common::project(&[
        ("broken.yaml", "services:\n  web:\n    image: [\n"),
        (
            "unknown.yaml",
            "services:\n  web:\n    image: x\n    depends_on: [db]\n",
        ),
        ("ok.yaml", "services:\n  web:\n    image: x\n"),
        ("taken.clnrm.toml", "keep me"),
    ]);
    let run = |args: &[&str]| {
        let out = clnrm(dir.path())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["import", "broken.yaml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("broken.yaml:4:1"), "{err}");
    let (code, err) = run(&["import", "unknown.yaml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("services.web.depends_on: names \"db\""),
        "{err}"
    );
    let (code, err) = run(&["import", "missing.yaml"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["import", "ok.yaml", "-o", "taken.clnrm.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--force"), "{err}");
    let kept = std::fs::read_to_string(dir.path().join("taken.clnrm.toml")).unwrap_or_default();
    assert_eq!(kept, "keep me");
    let (code, err) = run(&["import", "ok.yaml", "-o", "taken.clnrm.toml", "--force"]);
    assert_eq!(code, Some(0), "{err}");
}
