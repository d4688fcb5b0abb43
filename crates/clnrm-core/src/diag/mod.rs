//! Diagnostics: what went wrong, where, and how to fix it.
//!
//! Producing a [`Diagnostic`] is separate from rendering it: the stages that find a
//! problem keep byte spans into a [`Source`]; [`render`] turns them into rustc-style
//! text, JSON or GitHub annotations. Line and column are computed only when printing.

mod code;
mod render;
mod source;

pub use code::Code;
pub use render::{DiagnosticFormat, Style, render_github, render_human, render_json_value};
pub(crate) use render::{escape_data, escape_property};
pub use source::{LineCol, Source, SourceKind, Span};

use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The input cannot be used as written.
    Error,
    /// The input is usable but probably not what was meant.
    Warning,
}

impl Severity {
    /// The lower-case word shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A place in a source with a message attached to it.
#[derive(Clone, Debug)]
pub struct Label {
    /// The source the span points into.
    pub source: Arc<Source>,
    /// Byte range in that source.
    pub span: Span,
    /// Short text printed beside the caret.
    pub message: String,
}

/// One problem found in the user's input.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable identifier such as `E0102`.
    pub code: Code,
    /// The title line.
    pub message: String,
    /// Where the problem is; `None` for problems with no place (a missing file).
    pub primary: Option<Label>,
    /// Further places that explain the problem (first definition, template line).
    pub secondary: Vec<Label>,
    /// A suggestion for the fix.
    pub help: Option<String>,
    /// The text that fixes the problem when it replaces the primary label's span (a
    /// "did you mean" that editors offer as a quick fix).
    pub fix: Option<String>,
    /// A path to show when there is no primary label.
    pub path: Option<String>,
}

impl Diagnostic {
    /// A new error with the given code and title.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A new warning with the given code and title.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            fix: None,
            path: None,
        }
    }

    /// Points the diagnostic at `span` in `source`.
    pub fn at(mut self, source: &Arc<Source>, span: Span, label: impl Into<String>) -> Self {
        self.primary = Some(Label {
            source: source.clone(),
            span,
            message: label.into(),
        });
        self
    }

    /// Adds a secondary place.
    pub fn also(mut self, source: &Arc<Source>, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push(Label {
            source: source.clone(),
            span,
            message: label.into(),
        });
        self
    }

    /// Adds a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Says "did you mean" `shown` (the help line) and keeps `replacement` as the fix
    /// of the primary span: the key itself, or a value as TOML (`"word"`).
    pub fn suggest(mut self, shown: &str, replacement: impl Into<String>) -> Self {
        self.help = Some(format!("did you mean {shown}?"));
        self.fix = Some(replacement.into());
        self
    }

    /// Names the file for a diagnostic that has no span.
    pub fn in_file(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The file this diagnostic is about, as shown to users.
    pub fn file_name(&self) -> Option<&str> {
        match &self.primary {
            Some(label) => Some(label.source.name()),
            None => self.path.as_deref(),
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key: file, then position, so output follows the file top to bottom.
    pub fn sort_key(&self) -> (String, usize, Code) {
        let file = self.file_name().unwrap_or_default().to_owned();
        let start = self.primary.as_ref().map_or(0, |l| l.span.start);
        (file, start, self.code)
    }
}

/// A growing list of diagnostics about one source.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Adds one diagnostic and returns it for further decoration.
    pub fn push_mut(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.items.push(diagnostic);
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics in file order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(Diagnostic::sort_key);
        self.items
    }

    /// Appends many.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    /// Number recorded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none were recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
