//! Source texts that diagnostics point into, and byte-offset to line/column mapping.

use std::sync::Arc;

/// A byte range in a source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Self::new(r.start, r.end)
    }
}

/// 1-based line and column (column counted in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
}

/// What a source is: a file on disk or the output of rendering a template.
#[derive(Clone, Debug)]
pub enum SourceKind {
    /// A file the user edits.
    File,
    /// The TOML rendered from the template `template`.
    Rendered {
        /// The template the text was rendered from.
        template: Arc<Source>,
    },
}

/// A named text with a line index.
#[derive(Debug)]
pub struct Source {
    name: String,
    text: String,
    line_starts: Vec<usize>,
    kind: SourceKind,
}

impl Source {
    /// A file's text under its display name.
    pub fn file(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self::new(name.into(), text.into(), SourceKind::File))
    }

    /// The rendered output of `template`.
    pub fn rendered(template: &Arc<Source>, text: String) -> Arc<Self> {
        let name = format!("{} (rendered)", template.name());
        Arc::new(Self::new(
            name,
            text,
            SourceKind::Rendered {
                template: template.clone(),
            },
        ))
    }

    fn new(name: String, text: String, kind: SourceKind) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name,
            text,
            line_starts,
            kind,
        }
    }

    /// The display name (a path relative to the project root).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// File or rendered template.
    pub fn kind(&self) -> &SourceKind {
        &self.kind
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        LineCol {
            line: line + 1,
            col,
        }
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self.line_starts.get(line).map_or(self.text.len(), |&e| e);
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// Byte offset where 1-based line `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The span of 1-based line `line` without leading white space and newline.
    pub fn line_span(&self, line: usize) -> Span {
        let start = self.line_start(line);
        let text = self.line_text(line);
        let indent = text.len() - text.trim_start().len();
        Span::new(start + indent, start + text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let src = Source::file("a", "ab\nçd = 1\n");
        assert_eq!(src.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(src.line_col(3), LineCol { line: 2, col: 1 });
        assert_eq!(src.line_col(5), LineCol { line: 2, col: 2 });
        assert_eq!(src.line_text(2), "çd = 1");
        assert_eq!(src.line_col(999), LineCol { line: 3, col: 1 });
    }

    #[test]
    fn line_span_skips_indentation() {
        let src = Source::file("a", "x\n   key = 1\r\n");
        assert_eq!(src.line_span(2), Span::new(5, 12));
    }
}
