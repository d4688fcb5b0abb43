//! `clnrm lsp` driven by language clients someone else wrote and maintains: pygls's
//! (from PyPI, installed by the set-up command into `target/tools/pygls`), whose
//! script (`tests/lsp/client.py`) checks every capability on a plain file and on a
//! template with a partial (see its header); and Neovim's built-in client (Debian's
//! `neovim`, installed by the set-up command), headless, started by the configuration
//! README shows (`docs/editors/neovim.lua`), driven by `tests/lsp/nvim.lua` on the
//! same files (`tests/lsp/project/`).
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

#[test]
fn neovim_started_by_the_readme_configuration_gets_diagnostics_fixes_completion_hover_and_definition()
 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = root.join("../..");
    let config = repo.join("docs/editors/neovim.lua");
    // README shows exactly the configuration the test uses.
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap_or_else(|e| panic!("{e}"));
    let shown = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        readme.contains(&shown),
        "README.md does not show docs/editors/neovim.lua as it is"
    );
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    common::copy_dir(&root.join("tests/lsp/project"), project.path());
    // `clnrm` on the PATH, as the configuration expects.
    let bin = assert_cmd::cargo::cargo_bin("clnrm");
    let dir = bin.parent().unwrap_or(Path::new("."));
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = root.join("tests/lsp/nvim.lua");
    let child = std::process::Command::new("nvim")
        .args(["--headless", "-n", "-i", "NONE", "-u"])
        .arg(&config)
        .arg("-c")
        .arg(format!("lua dofile({:?})", script.display().to_string()))
        .current_dir(project.path())
        .env("PATH", path)
        .env("HOME", project.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("nvim: {e} (scripts/setup.sh installs Debian's neovim)"));
    // Its output read while it runs; bounded: a client that never gets its answer is
    // a failure, not a hang.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(180)) {
        Ok(out) => out,
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            rx.recv().unwrap_or_else(|e| panic!("{e}"))
        }
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for check in [
        "the configuration started the server on the file",
        "diagnostics at their positions, with codes and severities",
        "did-you-mean quick fixes chosen in code_action and applied to the buffer",
        "diagnostics follow the edited buffer",
        "hover",
        "completion of a key",
        "go to definition",
        "a template: diagnostics on its lines, a quick fix, definition into its partial",
    ] {
        assert!(
            stdout.contains(&format!("ok: {check}\n")),
            "{check}:\n{stdout}\n{stderr}"
        );
    }
}
