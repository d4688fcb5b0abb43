//! `clnrm init`: scaffold a project whose example validates.

use crate::cli::InitArgs;
use crate::exit;
use std::path::{Path, PathBuf};

const CONFIG: &str = r#"# clnrm project configuration; every key is optional.
[executor]
# worker_count = 4            # default: number of CPUs
max_concurrent_containers = 20

[executor.limits]
container_memory_mb = 512
container_cpu_limit = 1.0

[cache]
enabled = true

[watch]
debounce_ms = 300

[diff]
baseline_path = ".clnrm/trace.json"

[vars]
# region = "eu-west-1"        # available to templates as {{ region }}
"#;

const EXAMPLE: &str = r#"# A first clnrm test: run a command in a container and check its output.
[meta]
name = "example"
version = "1.0"
description = "Says hello from a busybox container"

[service.app]
image = "clnrm/busybox:latest"
args = ["sleep", "infinity"]

[[scenario]]
name = "hello"
service = "app"

[[scenario.steps]]
name = "greet"
command = ["echo", "hello from clnrm"]
expected_output_regex = "hello from clnrm"
"#;

const TEMPLATE: &str = r#"{% import "_macros.toml.tera" as m %}
# A templated test: variables come from --var, CLNRM_VAR_*, [vars] and .clnrm/config.toml.
[meta]
name = "{{ svc }}-templated"
version = "1.0"

[vars]
greeting = "hello"

{{ m::service(id="app", image=image, args=["sleep", "infinity"]) }}

{{ m::scenario(name="greet", service="app", run="echo " ~ greeting) }}
"#;

/// Runs the command.
pub fn run(args: InitArgs) -> i32 {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let files = [
        (dir.join(".clnrm/config.toml"), CONFIG),
        (dir.join(".clnrm/templates/.gitkeep"), ""),
        (dir.join("tests/example.clnrm.toml"), EXAMPLE),
        (dir.join("tests/example.clnrm.toml.tera"), TEMPLATE),
    ];
    for (path, content) in files {
        if path.exists() {
            println!("  exists  {}", path.display());
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, content));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::INVALID_INPUT;
        }
        println!("  created {}", path.display());
    }
    if dir == Path::new(".") {
        println!("next: clnrm validate tests/");
    } else {
        let shown = clnrm_core::exec::agent::quote(&dir.display().to_string());
        println!("next: cd {shown} && clnrm validate tests/");
    }
    exit::SUCCESS
}
