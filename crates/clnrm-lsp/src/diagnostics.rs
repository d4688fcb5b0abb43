//! The validator's diagnostics as LSP diagnostics of one document.
//!
//! A diagnostic is placed at its label in the document: the primary one, or for a
//! template the "written here in the template" line a rendered problem came from.
//! When it has no place in the document (a problem in rendered text that no literal
//! template line explains, or in an included file), it is put on the first line and
//! its message says where it is.

use crate::position::LineIndex;
use clnrm_core::diag::{Diagnostic, Label, Severity, Source, SourceKind};
use lsp_types::{DiagnosticSeverity, NumberOrString, Range};
use std::sync::Arc;

/// A template a document includes: its name as the user knows it, and its text.
pub struct Include {
    /// The path relative to the project.
    pub name: String,
    /// Its text (the editor's, when it is open).
    pub text: String,
}

/// The diagnostics of the document whose text is `doc`; `includes` reads the
/// templates it includes, only if a diagnostic has no place in the document.
pub fn convert(
    diags: &[Diagnostic],
    doc: &Arc<Source>,
    includes: &dyn Fn() -> Vec<Include>,
) -> Vec<lsp_types::Diagnostic> {
    let index = LineIndex::new(doc.text());
    let read = std::cell::OnceCell::new();
    let includes = || read.get_or_init(includes).as_slice();
    diags
        .iter()
        .map(|d| one(d, doc, &index, &includes))
        .collect()
}

/// Where a rendered line is written literally in an included template.
struct InInclude<'a> {
    include: &'a Include,
    /// Its 1-based line there.
    line: usize,
    /// The byte span of the `{% include %}` (or import) tag in the document.
    tag: Option<(usize, usize)>,
}

fn in_include<'a>(line: &str, doc: &str, includes: &'a [Include]) -> Option<InInclude<'a>> {
    let line = line.trim_end();
    if line.trim().is_empty() {
        return None;
    }
    includes.iter().find_map(|inc| {
        let n = inc.text.lines().position(|l| l.trim_end() == line)? + 1;
        let file = inc.name.rsplit('/').next().unwrap_or(&inc.name);
        let mut pos = 0;
        let tag = doc.split_inclusive('\n').find_map(|l| {
            let start = pos;
            pos += l.len();
            (l.contains("{%") && l.contains(file)).then(|| {
                let at = l.find("{%").unwrap_or(0);
                (start + at, start + l.trim_end().len())
            })
        });
        Some(InInclude {
            include: inc,
            line: n,
            tag,
        })
    })
}

fn in_doc(label: &Label, doc: &Source) -> bool {
    matches!(label.source.kind(), SourceKind::File)
        && label.source.name() == doc.name()
        && label.source.text() == doc.text()
}

fn one<'i>(
    d: &Diagnostic,
    doc: &Source,
    index: &LineIndex<'_>,
    includes: &dyn Fn() -> &'i [Include],
) -> lsp_types::Diagnostic {
    let placed = d
        .primary
        .iter()
        .chain(&d.secondary)
        .find(|l| in_doc(l, doc));
    let mut message = d.message.clone();
    let range = match placed {
        Some(l) => {
            // Shown on the template's line: the message says where it is rendered.
            if let Some(p) = &d.primary
                && matches!(p.source.kind(), SourceKind::Rendered { .. })
            {
                let at = p.source.line_col(p.span.start);
                message.push_str(&format!(" (rendered line {}:{})", at.line, at.col));
            }
            index.range(l.span.start, l.span.end)
        }
        None => {
            let mut range = Range::default();
            if let Some(l) = &d.primary {
                let at = l.source.line_col(l.span.start);
                let text = l.source.line_text(at.line);
                let from_include = matches!(l.source.kind(), SourceKind::Rendered { .. })
                    .then(|| in_include(text, doc.text(), includes()))
                    .flatten();
                match from_include {
                    // Written in an included template: shown on the tag that includes it.
                    Some(InInclude {
                        include: inc,
                        line: n,
                        tag,
                    }) => {
                        message.push_str(&format!(
                            "\nin {}:{n} (rendered line {}:{}): {}",
                            inc.name,
                            at.line,
                            at.col,
                            text.trim()
                        ));
                        if let Some((start, end)) = tag {
                            range = index.range(start, end);
                        }
                    }
                    None => {
                        let place = match l.source.kind() {
                            SourceKind::Rendered { .. } => "in the rendered TOML".to_owned(),
                            SourceKind::File => format!("in {}", l.source.name()),
                        };
                        message.push_str(&format!(
                            "\n{place} at {}:{}: {}",
                            at.line,
                            at.col,
                            text.trim()
                        ));
                    }
                }
            }
            range
        }
    };
    if let Some(l) = &d.primary
        && !l.message.is_empty()
    {
        message.push_str(&format!("\n{}", l.message));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    // A fix replaces the primary span; a template's line that a rendered problem came
    // from holds the same text there.
    let fixable = placed.is_some_and(|l| {
        d.primary.as_ref().is_some_and(|p| std::ptr::eq(l, p))
            || l.message == "written here in the template"
    });
    let data = match &d.fix {
        Some(fix) if fixable => Some(serde_json::json!({ "fix": fix })),
        _ => None,
    };
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("clnrm".into()),
        message,
        data,
        ..Default::default()
    }
}

/// The diagnostic of a check that panicked.
pub fn internal() -> lsp_types::Diagnostic {
    lsp_types::Diagnostic {
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("clnrm".into()),
        message: "clnrm failed while checking this file (a bug; please report it)".into(),
        ..Default::default()
    }
}
