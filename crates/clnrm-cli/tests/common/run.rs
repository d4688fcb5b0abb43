//! Running `clnrm run --format json` in a test project and reading its report;
//! shared by the test binaries of `run`, spans, diff and cache. Each uses a part.
#![allow(dead_code, reason = "each test binary uses a part")]

use crate::common::clnrm;
use crate::engine::{IMAGE, containers};
use serde_json::Value;
use std::path::Path;

/// A test file with one busybox service `app` (agent mode) and the given scenarios.
pub fn file(body: &str) -> String {
    format!("[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n{body}")
}

pub struct Run {
    pub code: Option<i32>,
    pub json: Value,
    pub stderr: String,
}

/// `clnrm run --format json ARGS` in `dir`; asserts the run left no container.
pub fn run_json(dir: &Path, args: &[&str]) -> Run {
    let out = clnrm(dir)
        .args(["run", "--format", "json"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let run_id = json["run_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        containers(&format!("clnrm.run={run_id}")),
        Vec::<String>::new(),
        "run {run_id} left containers"
    );
    Run {
        code: out.status.code(),
        json,
        stderr,
    }
}

impl Run {
    /// Asserts exit code 0, showing the report and stderr otherwise.
    pub fn assert_passed(&self) {
        assert_eq!(self.code, Some(0), "{:#}\n{}", self.json, self.stderr);
    }
}

/// Each scenario's name and status in a JSON report, in its order.
pub fn statuses(report: &Value) -> Vec<(String, String)> {
    report["scenarios"]
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

pub fn scenario<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.json["scenarios"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no scenario {name} in {:#}", run.json))
}

/// A file of three scenarios `one`, `two` (running `second`) and `three`.
pub fn three(second: &str) -> String {
    file(&format!(
        "[[scenario]]\nname = \"one\"\nrun = \"echo one\"\n\n[[scenario]]\nname = \"two\"\nrun = \"{second}\"\n\n[[scenario]]\nname = \"three\"\nrun = \"echo three\"\n"
    ))
}

/// A TOML literal string holding `s`.
pub fn toml_string(s: &str) -> String {
    format!("\'\'\'{s}\'\'\'")
}
