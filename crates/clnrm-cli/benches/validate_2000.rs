//! Whole-process `clnrm validate` of 2000 files (1000 plain, 1000 templates) against
//! Python's `tomllib` merely parsing the 1000 plain ones. Prints both medians and the
//! ratio (target: clnrm ≤ 0.5× Python). Run with `cargo bench -p clnrm-cli --bench validate_2000`.
//!
//! The templates differ in their literal text, so they share one compiled shape. A
//! second set, whose every template has tags of its own (nothing to share), shows the
//! cost when each file must be compiled.

use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn plain(i: usize) -> String {
    format!(
        r#"# generated benchmark file {i}
[meta]
name = "bench-{i}"
version = "1.0"
description = "plain benchmark file number {i}"

[otel]
exporter = "stdout"
sample_ratio = 1.0

[otel.resources]
"service.name" = "bench-{i}"
"deployment.environment" = "ci"

[service.api]
image = "clnrm/busybox:latest"
args = ["sleep", "infinity"]
ports = [8080]
env = {{ LOG_LEVEL = "debug", REGION = "eu" }}

[service.db]
image = "clnrm/busybox:latest"
args = ["sleep", "infinity"]

[[scenario]]
name = "smoke"
service = "api"
run = "sh -c 'echo hello {i}'"
timeout_ms = 5000
priority = 1

[[scenario]]
name = "steps"
service = "api"

[[scenario.steps]]
name = "first"
command = ["echo", "one"]
expected_output_regex = "^one"

[[scenario.steps]]
name = "second"
command = ["echo", "two"]
service = "db"
expected_exit_code = 0

[[expect.span]]
name = "http.request"
kind = "server"
attrs.all = {{ "http.status_code" = 200 }}
duration_ms = {{ min = 0, max = 5000 }}

[expect.counts]
spans_total = {{ gte = 1, lte = 100 }}

[expect.status]
all = "OK"
"#
    )
}

fn template(i: usize) -> String {
    template_with(i, "region")
}

/// A template whose `uuid` seed is a string literal of its own: a shape per file.
fn unique_template(i: usize) -> String {
    template_with(i, &format!("\"r{i}\""))
}

fn template_with(i: usize, seed: &str) -> String {
    format!(
        r#"{{% import "_macros.toml.tera" as m %}}
# generated benchmark template {i}
[meta]
name = "{{{{ svc }}}}-tpl-{i}"
version = "1.0"
description = "templated benchmark file {i} for {{{{ env }}}}"

[vars]
region = "eu-west-{i}"
replicas = 3

[determinism]
seed = {i}
freeze_clock = "2025-01-01T00:00:00Z"

[otel]
exporter = "{{{{ exporter }}}}"
endpoint = "{{{{ endpoint }}}}"

[otel.resources]
"service.name" = "{{{{ svc }}}}-{i}"
"deployment.region" = "{{{{ region }}}}"

{{{{ m::service(id="api", image=image, args=["sleep", "infinity"], ports=[8080]) }}}}

[service.db]
image = "{{{{ image }}}}"
args = ["sleep", "infinity"]
env = {{ TOKEN = "{{{{ sha256(s=svc) }}}}" }}

[[scenario]]
name = "smoke"
service = "api"
run = "echo {{{{ uuid(seed={seed}) }}}}"

{{% for n in range(end=replicas) %}}
[[scenario]]
name = "replica-{{{{ n }}}}"
service = "api"
priority = {{{{ n }}}}

[[scenario.steps]]
name = "ping-{{{{ n }}}}"
command = ["echo", "{{{{ fake_name() }}}}"]
expected_output_regex = ".+"
{{% endfor %}}

{{{{ m::span(name="http.request", kind="server", attrs=["http.status_code=200"]) }}}}

[expect.counts]
spans_total = {{ gte = 1 }}

[expect.status]
all = "OK"
"#
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_runs(mut make: impl FnMut() -> Command) -> Duration {
    let runs = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let out = make().output().unwrap_or_else(|e| panic!("spawn: {e}"));
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            elapsed
        })
        .collect();
    median(runs)
}

fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // CLNRM_BENCH_DIR keeps the generated files for profiling.
    let kept = std::env::var_os("CLNRM_BENCH_DIR").map(std::path::PathBuf::from);
    let root = kept.as_deref().unwrap_or(dir.path());
    let plain_dir = root.join("tests/plain");
    let tpl_dir = root.join("tests/templates");
    std::fs::create_dir_all(&plain_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&tpl_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..1000 {
        std::fs::write(plain_dir.join(format!("f{i:04}.clnrm.toml")), plain(i))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            tpl_dir.join(format!("t{i:04}.clnrm.toml.tera")),
            template(i),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let unique_dir = root.join("unique");
    std::fs::create_dir_all(unique_dir.join("templates")).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..1000 {
        std::fs::write(
            unique_dir.join(format!("templates/u{i:04}.clnrm.toml.tera")),
            unique_template(i),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let lines = plain(0).lines().count();
    let tpl_lines = template(0).lines().count();
    let clnrm = env!("CARGO_BIN_EXE_clnrm");
    let ours = time_runs(|| {
        let mut c = Command::new(clnrm);
        c.current_dir(root).args(["validate", "tests"]);
        c
    });
    let unique = time_runs(|| {
        let mut c = Command::new(clnrm);
        c.current_dir(root)
            .args(["validate", "tests/plain", "unique/templates"]);
        c
    });
    let script = "import sys, tomllib, pathlib\nfor p in sorted(pathlib.Path(sys.argv[1]).glob('*.clnrm.toml')):\n    tomllib.loads(p.read_text())\n";
    let python = time_runs(|| {
        let mut c = Command::new("python3");
        c.args(["-c", script, &plain_dir.display().to_string()]);
        c
    });
    let ratio = ours.as_secs_f64() / python.as_secs_f64();
    println!(
        "files: 1000 plain ({lines} lines) + 1000 templates ({tpl_lines} lines), {} CPUs",
        num_cpus()
    );
    println!(
        "clnrm validate, 2000 files, whole process: {:>8.1} ms (median of {RUNS})",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "python3 tomllib parse, 1000 plain files:   {:>8.1} ms (median of {RUNS})",
        python.as_secs_f64() * 1e3
    );
    println!("ratio clnrm / python: {ratio:.2} (target <= 0.50)");
    println!(
        "same, every template a shape of its own:  {:>8.1} ms, ratio {:.2}",
        unique.as_secs_f64() * 1e3,
        unique.as_secs_f64() / python.as_secs_f64()
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
