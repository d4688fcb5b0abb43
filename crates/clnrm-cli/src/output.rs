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
            let (shown, repeats) = grouped(diags);
            for (i, d) in shown {
                let mut text = render_human(d, style);
                if let Some(others) = repeats.get(&i) {
                    text.push_str(&format!(
                        "  = note: the same warning in {}: {}\n",
                        plural(others.len(), "more file"),
                        listed(others)
                    ));
                }
                let _ = writeln!(err, "{text}");
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

/// Index of a diagnostic printed for several → the other files it is in.
type Repeats = std::collections::HashMap<usize, Vec<String>>;

/// A warning given in more files than this is printed once, with the files named.
const REPEATED: usize = 3;

/// The diagnostics to print in full (with their index), and for each one that stands
/// for a repeated warning (same code, message, label and help in several files) the
/// other files it is in.
fn grouped(diags: &[Diagnostic]) -> (Vec<(usize, &Diagnostic)>, Repeats) {
    use std::collections::HashMap;
    let key = |d: &Diagnostic| {
        (
            d.code.to_string(),
            d.message.clone(),
            d.primary.as_ref().map(|l| l.message.clone()),
            d.help.clone(),
        )
    };
    let mut groups: HashMap<_, Vec<usize>> = HashMap::new();
    for (i, d) in diags.iter().enumerate().filter(|(_, d)| !d.is_error()) {
        groups.entry(key(d)).or_default().push(i);
    }
    let mut repeats = HashMap::new();
    let mut hidden = std::collections::HashSet::new();
    for members in groups.values().filter(|m| m.len() > REPEATED) {
        let others: Vec<String> = members[1..]
            .iter()
            .map(|&i| diags[i].file_name().unwrap_or("?").to_owned())
            .collect();
        hidden.extend(members[1..].iter().copied());
        repeats.insert(members[0], others);
    }
    let shown = diags
        .iter()
        .enumerate()
        .filter(|(i, _)| !hidden.contains(i))
        .collect();
    (shown, repeats)
}

/// The first few of `names`, and how many more.
fn listed(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// "1 error" / "2 errors".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
