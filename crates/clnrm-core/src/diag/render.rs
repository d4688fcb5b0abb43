//! Rendering diagnostics as rustc-style text, JSON values, or GitHub annotations.

use super::{Diagnostic, Label, Severity};
use std::fmt::Write as _;

/// Output format of diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagnosticFormat {
    /// rustc-style text with source lines and carets.
    Human,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

/// Whether to colour human output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Plain text.
    Plain,
    /// ANSI colours.
    Color,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Style::Plain => text.to_owned(),
            Style::Color => format!("\x1b[{code}m{text}\x1b[0m"),
        }
    }

    fn severity(self, severity: Severity, text: &str) -> String {
        match severity {
            Severity::Error => self.paint("1;31", text),
            Severity::Warning => self.paint("1;33", text),
        }
    }
}

/// Renders one diagnostic like rustc does.
pub fn render_human(d: &Diagnostic, style: Style) -> String {
    let mut out = String::new();
    let head = format!("{}[{}]", d.severity.as_str(), d.code);
    let _ = writeln!(
        out,
        "{}{}",
        style.severity(d.severity, &head),
        style.paint("1", &format!(": {}", d.message))
    );
    let labels: Vec<&Label> = d.primary.iter().chain(&d.secondary).collect();
    let width = labels
        .iter()
        .map(|l| l.source.line_col(l.span.start).line.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(width);
    let blue = |s: &str| style.paint("1;34", s);
    if labels.is_empty()
        && let Some(path) = &d.path
    {
        let _ = writeln!(out, "{pad}{} {path}", blue("-->"));
    }
    for (i, label) in labels.iter().enumerate() {
        let pos = label.source.line_col(label.span.start);
        let arrow = if i == 0 { "-->" } else { ":::" };
        let _ = writeln!(
            out,
            "{pad}{} {}:{}:{}",
            blue(arrow),
            label.source.name(),
            pos.line,
            pos.col
        );
        let _ = writeln!(out, "{pad} {}", blue("|"));
        let line_text = label.source.line_text(pos.line);
        let line_no = format!("{:>width$}", pos.line);
        let _ = writeln!(
            out,
            "{} {} {}",
            blue(&line_no),
            blue("|"),
            line_text.replace('\t', " ")
        );
        let carets = caret_count(label, pos.col, line_text);
        let marker = if i == 0 { "^" } else { "-" };
        let underline = marker.repeat(carets);
        let colored = if i == 0 {
            style.severity(d.severity, &underline)
        } else {
            blue(&underline)
        };
        let msg = if label.message.is_empty() {
            String::new()
        } else {
            format!(" {}", label.message)
        };
        let msg = if i == 0 {
            style.severity(d.severity, &msg)
        } else {
            blue(&msg)
        };
        let _ = writeln!(
            out,
            "{pad} {} {}{colored}{msg}",
            blue("|"),
            " ".repeat(pos.col - 1)
        );
    }
    if let Some(help) = &d.help {
        if !labels.is_empty() {
            let _ = writeln!(out, "{pad} {}", blue("|"));
        }
        // Continuation lines line up under the text after `= help: `.
        let indented = help.replace('\n', &format!("\n{pad}   {}", " ".repeat("help: ".len())));
        let _ = writeln!(
            out,
            "{pad} {} {}",
            blue("="),
            style.paint("1", &format!("help: {indented}"))
        );
    }
    out
}

/// Number of carets: the span's characters on its first line, at least one.
fn caret_count(label: &Label, col: usize, line_text: &str) -> usize {
    let text = label.source.text();
    let start = label.span.start.min(text.len());
    let end = label.span.end.clamp(start, text.len());
    let spanned = text.get(start..end).unwrap_or("");
    let first_line = spanned.split('\n').next().unwrap_or("");
    let remaining = line_text.chars().count().saturating_sub(col - 1);
    first_line.chars().count().min(remaining.max(1)).max(1)
}

/// The label to name in one-location formats (JSON, GitHub): for rendered output,
/// the template line when it is known, since that is the file that exists.
fn location(d: &Diagnostic) -> Option<&Label> {
    let primary = d.primary.as_ref()?;
    if let super::SourceKind::Rendered { template } = primary.source.kind()
        && let Some(t) = d
            .secondary
            .iter()
            .find(|l| std::sync::Arc::ptr_eq(&l.source, template))
    {
        return Some(t);
    }
    Some(primary)
}

/// The file name to report: a rendered source is named after its template.
fn location_file(d: &Diagnostic) -> Option<&str> {
    match d.primary.as_ref().map(|l| l.source.kind()) {
        Some(super::SourceKind::Rendered { template }) => Some(template.name()),
        _ => d.file_name(),
    }
}

/// A JSON object describing one diagnostic.
pub fn render_json_value(d: &Diagnostic) -> serde_json::Value {
    let label_json = |l: &Label| {
        let start = l.source.line_col(l.span.start);
        let end = l.source.line_col(l.span.end);
        serde_json::json!({
            "file": l.source.name(),
            "line": start.line,
            "column": start.col,
            "end_line": end.line,
            "end_column": end.col,
            "byte_start": l.span.start,
            "byte_end": l.span.end,
            "label": l.message,
            "source_line": l.source.line_text(start.line),
        })
    };
    let mut value = serde_json::json!({
        "severity": d.severity.as_str(),
        "code": d.code.as_str(),
        "message": d.message,
        "file": location_file(d),
        "help": d.help,
        "related": d.secondary.iter().map(label_json).collect::<Vec<_>>(),
    });
    if let (Some(primary), Some(obj)) = (location(d), value.as_object_mut()) {
        let l = label_json(primary);
        for key in [
            "line",
            "column",
            "end_line",
            "end_column",
            "byte_start",
            "byte_end",
            "label",
            "source_line",
        ] {
            obj.insert(key.to_owned(), l[key].clone());
        }
    }
    value
}

/// A GitHub Actions annotation (`::error file=...,line=...::message`).
pub fn render_github(d: &Diagnostic) -> String {
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut props = Vec::new();
    if let Some(file) = location_file(d) {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(l) =
        location(d).filter(|l| !matches!(l.source.kind(), super::SourceKind::Rendered { .. }))
    {
        let start = l.source.line_col(l.span.start);
        let end = l.source.line_col(l.span.end);
        props.push(format!("line={},col={}", start.line, start.col));
        props.push(format!("endLine={},endColumn={}", end.line, end.col));
    }
    props.push(format!("title={}", d.code));
    let mut message = d.message.clone();
    if let Some(l) = d.primary.as_ref().filter(|l| !l.message.is_empty()) {
        let _ = write!(message, ": {}", l.message);
    }
    if let Some(help) = &d.help {
        let _ = write!(message, "\nhelp: {help}");
    }
    format!("::{level} {}::{}", props.join(","), escape_data(&message))
}

/// A workflow command's message: `%`, CR and LF escaped (GitHub's syntax).
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Source, Span};

    fn sample() -> Diagnostic {
        let src = Source::file("tests/api.clnrm.toml", "[meta]\nservice = \"db\"\n");
        Diagnostic::error(
            Code::UndefinedService,
            "scenario \"smoke\" references undefined service \"db\"",
        )
        .at(
            &src,
            Span::new(17, 21),
            "no [service.db]; defined: api, cache",
        )
        .help("define [service.db] or use one of: api, cache")
    }

    #[test]
    fn human_rendering_matches_rustc_layout() {
        let text = render_human(&sample(), Style::Plain);
        let expected = "\
error[E0102]: scenario \"smoke\" references undefined service \"db\"
 --> tests/api.clnrm.toml:2:11
  |
2 | service = \"db\"
  |           ^^^^ no [service.db]; defined: api, cache
  |
  = help: define [service.db] or use one of: api, cache
";
        assert_eq!(text, expected);
    }

    #[test]
    fn github_annotation_escapes_and_positions() {
        let text = render_github(&sample());
        assert!(text.starts_with(
            "::error file=tests/api.clnrm.toml,line=2,col=11,endLine=2,endColumn=15,title=E0102::"
        ));
        assert!(text.contains("%0Ahelp: define"));
    }

    #[test]
    fn json_carries_line_and_column() {
        let v = render_json_value(&sample());
        assert_eq!(v["line"], 2);
        assert_eq!(v["column"], 11);
        assert_eq!(v["code"], "E0102");
    }
}
