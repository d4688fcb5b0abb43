//! Hover text for the key or header segment under a position: the key, its type and
//! its description, from the schema.

use super::context::{context_at, header_of, line_start, segments, word_at};
use super::schema_walk::{SCHEMA, description, node, table_of};
use crate::diag::Span;
use crate::schema::type_of;

/// Hover text for the key under a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    /// The key's bytes.
    pub span: Span,
    /// Markdown: the key, its type and its description.
    pub markdown: String,
}

/// Hover text for the key or header segment at `offset`.
pub fn hover(text: &str, offset: usize) -> Option<Hover> {
    let root = &*SCHEMA;
    let word = word_at(text, offset)?;
    let ls = line_start(text, word.start);
    let line_end = text[ls..].find('\n').map_or(text.len(), |n| ls + n);
    let line = &text[ls..line_end];
    let path = if let Some((segs, _)) = header_of(line) {
        // The header's segments up to the hovered one.
        let upto = segments(text[ls..word.end].trim_start().trim_start_matches('['));
        segs.into_iter().take(upto.len()).collect::<Vec<_>>()
    } else {
        let after = text[word.end..line_end].trim_start();
        if !(after.starts_with('=') || after.starts_with('.')) {
            return None;
        }
        let ctx = context_at(text, word.end);
        let (dotted, _) = ctx.key?;
        let mut path = ctx.path;
        path.extend(dotted);
        path.push(text[word.start..word.end].to_owned());
        path
    };
    let (last, parent) = path.split_last()?;
    let parent_node = node(parent)?;
    let table = table_of(root, parent_node)?;
    let p = table.get("properties").and_then(|p| p.get(last.as_str()))?;
    Some(Hover {
        span: word,
        markdown: format!(
            "**`{last}`**: {}\n\n{}",
            type_of(root, p),
            description(root, p)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::tests::{HEAD, at};

    #[test]
    fn hover_describes_the_selector_keys() {
        let (text, i) = at(&format!(
            "{HEAD}[[expect.span]]\nname = \"a\"\nabs|ent = true\n"
        ));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert!(h.markdown.contains("no span matches"), "{}", h.markdown);
        let (text, i) = at(&format!(
            "{HEAD}[[expect.per_span]]\nof = \"a\"\ndescend|ants = \"b\"\ncount = {{ lte = 1 }}\n"
        ));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert!(h.markdown.contains("descendants counted"), "{}", h.markdown);
    }

    #[test]
    fn hover_describes_keys_and_header_segments() {
        let (text, i) = at(&format!(
            "{HEAD}[service.web]\nhealth_check = {{ inter|val_ms = 5 }}"
        ));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert_eq!(&text[h.span.start..h.span.end], "interval_ms");
        assert!(h.markdown.contains("Time between probes"), "{}", h.markdown);
        let (text, i) = at(&format!("{HEAD}[[scenario.st|eps]]\n"));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert!(h.markdown.starts_with("**`steps`**"), "{}", h.markdown);
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nname = \"na|me\""));
        assert_eq!(hover(&text, i), None);
    }
}
