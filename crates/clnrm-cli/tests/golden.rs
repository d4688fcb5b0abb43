//! Golden files: every `tests/broken/<case>.clnrm.toml[.tera]` beside `<case>.stderr`
//! holding the exact diagnostics `clnrm validate` prints. The case's first line says
//! `# expect: <code>`: an `E` code must exit 2, a `W` code must exit 0.
//! Regenerate with `CLNRM_BLESS=1 cargo nextest run -p clnrm-cli golden`.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("repo root: {e}"))
}

fn cases() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/broken");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".clnrm.toml") || n.ends_with(".clnrm.toml.tera"))
        })
        .collect();
    out.sort();
    out
}

fn expected_code(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("expect:"))?;
    Some(
        line.split("expect:")
            .nth(1)?
            .split_whitespace()
            .next()?
            .to_owned(),
    )
}

#[test]
fn every_broken_file_prints_its_golden_diagnostics() {
    let root = repo_root();
    let cases = cases();
    assert!(
        cases.len() >= 15,
        "expected at least 15 broken cases, found {}",
        cases.len()
    );
    let bless = std::env::var_os("CLNRM_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let rel = case.strip_prefix(&root).unwrap_or(&case).to_path_buf();
        let text = std::fs::read_to_string(&case).unwrap_or_default();
        let Some(code) = expected_code(&text) else {
            failures.push(format!("{}: no `# expect: CODE` comment", rel.display()));
            continue;
        };
        let output = Command::cargo_bin("clnrm")
            .unwrap_or_else(|e| panic!("binary: {e}"))
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .env_remove("CLNRM_VAR_svc")
            .args(["validate", &rel.display().to_string()])
            .output()
            .unwrap_or_else(|e| panic!("run: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = name
            .trim_end_matches(".tera")
            .trim_end_matches(".toml")
            .trim_end_matches(".clnrm");
        let golden = case.with_file_name(format!("{stem}.stderr"));
        if bless {
            std::fs::write(&golden, &stderr)
                .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        }
        let want_exit = if code.starts_with('W') { 0 } else { 2 };
        if output.status.code() != Some(want_exit) {
            failures.push(format!(
                "{}: exit {:?}, want {want_exit}",
                rel.display(),
                output.status.code()
            ));
        }
        if !stderr.contains(&format!("[{code}]")) {
            failures.push(format!("{}: {code} not reported:\n{stderr}", rel.display()));
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != stderr {
            failures.push(format!(
                "{}: stderr differs from {}\n--- expected\n{expected}\n--- actual\n{stderr}",
                rel.display(),
                golden.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
