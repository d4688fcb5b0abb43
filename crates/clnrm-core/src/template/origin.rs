//! Mapping problems back into a template: where a name is used in a tag, and which
//! template line a rendered line came from when that line is literal text.

use crate::diag::{Diagnostic, Source, SourceKind, Span};
use regex::Regex;
use std::sync::{Arc, LazyLock};

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// The span of the first whole-word occurrence of `needle` inside a `{{ }}` or `{% %}` tag.
pub fn locate_in_tags(text: &str, needle: &str) -> Option<Span> {
    if needle.is_empty() {
        return None;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    TAG.find_iter(text).find_map(|tag| {
        let body = tag.as_str();
        body.match_indices(needle).find_map(|(i, _)| {
            let before = body[..i].chars().next_back();
            let after = body[i + needle.len()..].chars().next();
            let whole = !before.is_some_and(|c| word(c) || c == '.') && !after.is_some_and(word);
            whole.then(|| Span::new(tag.start() + i, tag.start() + i + needle.len()))
        })
    })
}

fn is_literal(line: &str) -> bool {
    !line.contains("{{") && !line.contains("{%") && !line.contains("{#") && !line.trim().is_empty()
}

/// For each rendered line (0-based), the template line (1-based) it is a literal copy of.
/// A text that occurs on one literal template line only maps there wherever it is
/// rendered (loops repeat it); repeated texts are aligned in order.
pub fn line_origins(template: &Source, rendered: &Source) -> Vec<Option<usize>> {
    let mut by_text: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for t in 1..=template.line_count() {
        let line = template.line_text(t);
        if is_literal(line) {
            by_text.entry(line).or_default().push(t);
        }
    }
    let mut out = aligned_origins(template, rendered);
    for (r, slot) in out.iter_mut().enumerate() {
        if let Some([only]) = by_text.get(rendered.line_text(r + 1)).map(Vec::as_slice) {
            *slot = Some(*only);
        }
    }
    out
}

fn aligned_origins(template: &Source, rendered: &Source) -> Vec<Option<usize>> {
    let mut out = vec![None; rendered.line_count()];
    let mut next = 1;
    for t in 1..=template.line_count() {
        let line = template.line_text(t);
        if !is_literal(line) {
            continue;
        }
        if let Some(r) = (next..=rendered.line_count()).find(|&r| rendered.line_text(r) == line) {
            out[r - 1] = Some(t);
            next = r + 1;
        }
    }
    out
}

/// Adds a secondary label at the template line a rendered diagnostic came from.
pub fn attach_template_origin(d: &mut Diagnostic, origins: &mut Option<Vec<Option<usize>>>) {
    let Some(primary) = &d.primary else { return };
    let SourceKind::Rendered { template } = primary.source.kind() else {
        return;
    };
    let rendered: Arc<Source> = primary.source.clone();
    let template = template.clone();
    let map = origins.get_or_insert_with(|| line_origins(&template, &rendered));
    let pos = rendered.line_col(primary.span.start);
    let Some(Some(tline)) = map.get(pos.line - 1) else {
        return;
    };
    let offset = primary.span.start - rendered.line_start(pos.line);
    let start = template.line_start(*tline) + offset;
    let span = Span::new(
        start,
        start
            + (primary.span.end - primary.span.start)
                .min(template.line_text(*tline).len().saturating_sub(offset)),
    );
    *d = d
        .clone()
        .also(&template, span, "written here in the template");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_whole_words_in_tags_only() {
        let text = "name = \"x\"\nv = \"{{ name2 }} {{ name }}\"";
        let span = locate_in_tags(text, "name");
        assert_eq!(span.map(|s| &text[s.start..s.end]), Some("name"));
        assert_eq!(span.map(|s| s.start), Some(31));
    }

    #[test]
    fn literal_lines_map_back_through_loops() {
        let template = Source::file(
            "t",
            "[meta]\n{% for i in [1,2] %}\nx = {{ i }}\n{% endfor %}\nname = \"n\"\n",
        );
        let rendered = Source::file("r", "[meta]\n\nx = 1\n\nx = 2\n\nname = \"n\"\n");
        let map = line_origins(&template, &rendered);
        assert_eq!(map[0], Some(1));
        assert_eq!(map[6], Some(5));
        assert_eq!(map[2], None);
    }
}
