//! Printing diagnostics in the chosen format, with colour only on a terminal.

use crate::cli::DiagFormat;
use clnrm_core::diag::{Diagnostic, Style, render_github, render_human, render_json_value};
use std::io::{IsTerminal, Write};

/// Colour when stderr is a terminal and `NO_COLOR` is unset.
pub fn stderr_style() -> Style {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stderr().is_terminal() {
        Style::Color
    } else {
        Style::Plain
    }
}

/// Prints `diags` (human to stderr; JSON and GitHub to stdout) with a summary.
pub fn print_diagnostics(diags: &[Diagnostic], format: DiagFormat, files: usize, summary: &str) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    match format {
        DiagFormat::Human => {
            let style = stderr_style();
            let mut err = std::io::stderr().lock();
            for d in diags {
                let _ = writeln!(err, "{}", render_human(d, style));
            }
            let _ = writeln!(err, "{summary}");
        }
        DiagFormat::Json => {
            let doc = serde_json::json!({
                "files": files,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diags.iter().map(render_json_value).collect::<Vec<_>>(),
            });
            println!("{doc:#}");
        }
        DiagFormat::Github => {
            for d in diags {
                println!("{}", render_github(d));
            }
            eprintln!("{summary}");
        }
    }
}

/// "1 error" / "2 errors".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
