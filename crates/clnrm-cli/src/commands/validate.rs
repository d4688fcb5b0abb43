//! `clnrm validate`: render and check every file, report every problem.

use super::{exit_code_for, prepare};
use crate::cli::ValidateArgs;
use crate::output::{plural, print_diagnostics};
use clnrm_core::diag::{Diagnostic, Severity};

/// Runs the command.
pub fn run(args: ValidateArgs) -> i32 {
    let prepared = prepare(&args.paths, &args.vars);
    let mut diags: Vec<Diagnostic> = prepared.general.clone();
    for f in &prepared.files {
        diags.extend(f.diagnostics.iter().cloned());
    }
    if args.deny_warnings {
        for d in &mut diags {
            d.severity = Severity::Error;
        }
    }
    let files = prepared.files.len();
    let invalid = prepared
        .files
        .iter()
        .filter(|f| f.is_invalid(args.deny_warnings))
        .count();
    let scenarios: usize = prepared
        .files
        .iter()
        .filter_map(|f| f.file.as_ref())
        .map(|f| f.scenarios.len())
        .sum();
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let summary = if errors == 0 {
        format!(
            "validated {} ({}), {}",
            plural(files, "file"),
            plural(scenarios, "scenario"),
            plural(warnings, "warning")
        )
    } else {
        format!(
            "error: {} of {} invalid: {}, {}",
            plural(invalid, "file"),
            files,
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    };
    print_diagnostics(&diags, args.format, files, &summary);
    exit_code_for(&diags.iter().collect::<Vec<_>>(), false)
}
