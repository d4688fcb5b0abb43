//! `clnrm import FILE [-o OUT]`: a test definition from a Compose file.

use super::prepare;
use crate::cli::{DiagFormat, ImportArgs, VarArgs};
use crate::exit;
use crate::output::{plural, print_diagnostics};
use clnrm_core::import::{ComposeInput, compose, from_compose};
use std::io::Write as _;
use std::path::Path;

/// Runs the command.
pub fn run(args: &ImportArgs) -> i32 {
    let shown = args.file.display().to_string();
    let text = match compose::read_bounded(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {shown}: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let dir = std::path::absolute(&args.file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let project = compose::project_name(
        &dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let var = |name: &str| std::env::var(name).ok();
    // A relative bind mount or build context is written relative to where the
    // definition goes: OUT's directory, else (printed) the current one.
    let out_dir = args
        .output
        .as_deref()
        .and_then(|o| std::path::absolute(o).ok())
        .and_then(|o| o.parent().map(Path::to_path_buf))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let imported = match from_compose(&ComposeInput {
        text: &text,
        file: &shown,
        dir: &dir,
        project: &project,
        var: &var,
        out_dir: &out_dir,
    }) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let Some(out) = &args.output else {
        let _ = std::io::stdout().write_all(imported.toml.as_bytes());
        report_skipped(imported.skipped.len(), "the top of the output");
        return exit::SUCCESS;
    };
    if out.exists() && !args.force {
        eprintln!(
            "error: {} exists; pass --force to overwrite it",
            out.display()
        );
        return exit::INVALID_INPUT;
    }
    // `-o tests/stack.clnrm.toml` in a project without tests/ yet makes it.
    let made = match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    };
    if let Err(e) = made.and_then(|()| std::fs::write(out, &imported.toml)) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return exit::ENVIRONMENT;
    }
    eprintln!("wrote {}", out.display());
    report_skipped(imported.skipped.len(), &out.display().to_string());
    // The output is checked as `validate` would: an importer bug shows here, not later.
    let prepared = prepare(std::slice::from_ref(out), &VarArgs { vars: Vec::new() });
    let diags: Vec<_> = prepared
        .general
        .iter()
        .chain(prepared.files.iter().flat_map(|f| &f.diagnostics))
        .cloned()
        .collect();
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let summary = format!(
        "validated {}: {}, {}",
        out.display(),
        plural(errors, "error"),
        plural(diags.len() - errors, "warning")
    );
    print_diagnostics(&diags, DiagFormat::Human, 1, &summary);
    if errors > 0 {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    }
}

fn report_skipped(n: usize, place: &str) {
    if n > 0 {
        eprintln!(
            "{} without an equivalent in clnrm: listed at {place}",
            plural(n, "setting")
        );
    }
}
