//! `clnrm lsp` driven by a language client someone else wrote and maintains: pygls's
//! (from PyPI, installed by the set-up command into `target/tools/pygls`). The client
//! script (`tests/lsp/client.py`) checks every capability on a plain file and on a
//! template with a partial; see its header.
mod common;

use std::path::Path;

#[test]
fn a_real_lsp_client_gets_every_capability_on_plain_and_templated_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("../../target/tools/pygls/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs pygls)",
        python.display()
    );
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = assert_cmd::cargo::cargo_bin("clnrm");
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/lsp/client.py"))
        .arg(&bin)
        .arg(project.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for check in [
        "initialize",
        "diagnostics of a plain file, positioned",
        "quick fixes from did-you-mean; diagnostics after a change",
        "completion of keys, headers, values and service ids",
        "hover",
        "go to definition",
        "template diagnostics on template lines, with the project's vars",
        "quick fix, completion, hover and definition in a template (into its partial)",
        "tera errors in the template; a fixed template is clean",
        "a change re-checks the file and the templates that include it only",
        "a burst of changes ends on the newest version",
        "close clears",
        "shutdown",
    ] {
        assert!(
            stdout.contains(&format!("ok: {check}\n")),
            "{check}:\n{stdout}\n{stderr}"
        );
    }
}
