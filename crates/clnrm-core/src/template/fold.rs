//! Literal folding: templates that differ only in their literal text share one
//! compiled form.
//!
//! Compiling is most of a template's cost (Tera's pest parser), and a suite's
//! templates are often one structure with other names and values in the TOML around
//! the tags. Folding replaces every run of literal text with `{{ __clnrm_lit.N }}`, a
//! lookup into an array of the file's literal runs passed in the context. The folded
//! text is the template's *shape*; the engine compiles a shape once a second file has
//! it (a lookup costs more to parse than the text it stands for, so a shape of one file
//! is not worth compiling) and renders every later file of that shape without parsing.
//!
//! Output is unchanged, byte for byte:
//! - a run's leading and trailing whitespace stay literal text in the shape, so the
//!   whitespace control of `{%-` and `-%}` (and the whitespace that `import` and
//!   `extends` swallow) trims exactly what it trims in the original;
//! - comments keep their whitespace markers and lose their text;
//! - tags are copied verbatim.
//!
//! What cannot be folded is left alone ([`fold`] answers `None`): macro definitions
//! (a macro body cannot see the context), raw blocks, templates that name the reserved
//! variable or dump the whole context, and anything this scanner cannot delimit.
//! The engine also falls back to the original text whenever the shape fails to compile
//! or render, so errors are always reported against what the user wrote.

use std::fmt::Write as _;

/// The context variable that holds a file's literal runs.
pub(crate) const LITERALS: &str = "__clnrm_lit";

/// A template split into its shape and its literal runs.
#[derive(Debug, PartialEq)]
pub(crate) struct Folded<'a> {
    /// The text Tera compiles.
    pub shape: String,
    /// The literal runs, in the order the shape refers to them.
    pub literals: Vec<&'a str>,
}

/// Folds `src`, or `None` when it must be compiled as written.
pub(crate) fn fold(src: &str) -> Option<Folded<'_>> {
    if src.contains(LITERALS) || src.contains("__tera_context") {
        return None;
    }
    let b = src.as_bytes();
    let mut shape = String::with_capacity(src.len() / 2);
    let mut literals = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let start = next_block_start(b, pos);
        push_literal(&src[pos..start], &mut shape, &mut literals);
        if start == b.len() {
            break;
        }
        let end = match b[start + 1] {
            b'#' => {
                let (left, right, end) = comment(b, start)?;
                shape.push_str(if left { "{#-" } else { "{#" });
                shape.push(' ');
                shape.push_str(if right { "-#}" } else { "#}" });
                end
            }
            b'%' => {
                let end = tag_end(b, start + 2, b"%}")?;
                let word = first_word(&src[start + 2..end - 2]);
                if word == "raw" || word == "macro" {
                    return None;
                }
                shape.push_str(&src[start..end]);
                end
            }
            _ => {
                let end = tag_end(b, start + 2, b"}}")?;
                shape.push_str(&src[start..end]);
                end
            }
        };
        pos = end;
    }
    Some(Folded { shape, literals })
}

/// The index of the next `{{`, `{%` or `{#` at or after `from`, or the end.
pub(crate) fn next_block_start(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(off) = b[i..].iter().position(|&c| c == b'{') {
        let at = i + off;
        if matches!(b.get(at + 1), Some(b'{' | b'%' | b'#')) {
            return at;
        }
        i = at + 1;
    }
    b.len()
}

/// Appends one literal run: whitespace at either end stays text, the rest is folded.
fn push_literal<'a>(run: &'a str, shape: &mut String, literals: &mut Vec<&'a str>) {
    let body = run.trim_start();
    let core = body.trim_end();
    shape.push_str(&run[..run.len() - body.len()]);
    if !core.is_empty() {
        let _ = write!(shape, "{{{{ {LITERALS}.{} }}}}", literals.len());
        literals.push(core);
    }
    shape.push_str(&body[core.len()..]);
}

/// The end (exclusive) of a tag whose body starts at `from` and that closes with
/// `close`, skipping Tera's three kinds of string literal (which have no escapes).
pub(crate) fn tag_end(b: &[u8], from: usize, close: &[u8; 2]) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1 + b[i + 1..].iter().position(|&c| c == q)? + 1;
            }
            c if c == close[0] && b.get(i + 1) == Some(&close[1]) => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

/// A comment starting at `start`, as pest parses it: whether it opens with `{#-`,
/// whether it closes with `-#}`, and its end. Like pest, an opening `{#-` is never
/// reconsidered as `{#`, and the text between needs one character.
pub(crate) fn comment(b: &[u8], start: usize) -> Option<(bool, bool, usize)> {
    let close_len = |i: usize| {
        if b[i..].starts_with(b"-#}") {
            Some(3)
        } else if b[i..].starts_with(b"#}") {
            Some(2)
        } else {
            None
        }
    };
    let left = b[start..].starts_with(b"{#-");
    let text = start + if left { 3 } else { 2 };
    let mut i = text;
    while i < b.len() && close_len(i).is_none() {
        i += 1;
    }
    if i == text {
        return None;
    }
    let len = close_len(i)?;
    Some((left, len == 3, i + len))
}

/// The first word of a tag body, after its whitespace-control dash.
pub(crate) fn first_word(body: &str) -> &str {
    let body = body.strip_prefix('-').unwrap_or(body).trim_start();
    let end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> Option<(String, Vec<&str>)> {
        fold(src).map(|f| (f.shape, f.literals))
    }

    #[test]
    fn literal_runs_become_lookups_and_keep_their_edge_whitespace() {
        let (s, lits) = shape("a = 1\n{{ x }} b\n").unwrap_or_default();
        assert_eq!(s, "{{ __clnrm_lit.0 }}\n{{ x }} {{ __clnrm_lit.1 }}\n");
        assert_eq!(lits, ["a = 1", "b"]);
    }

    #[test]
    fn files_that_differ_only_in_literal_text_share_a_shape() {
        let a = shape("name = \"one\"\n{{ svc }}\n").map(|s| s.0);
        let b = shape("name = \"two, longer\"\n{{ svc }}\n").map(|s| s.0);
        assert_eq!(a, b);
    }

    #[test]
    fn tags_are_copied_verbatim_even_with_closers_inside_strings() {
        let (s, lits) = shape("x{{ \"}}\" ~ '%}' }}y{% if a %}z{% endif %}").unwrap_or_default();
        assert_eq!(
            s,
            "{{ __clnrm_lit.0 }}{{ \"}}\" ~ '%}' }}{{ __clnrm_lit.1 }}{% if a %}{{ __clnrm_lit.2 }}{% endif %}"
        );
        assert_eq!(lits, ["x", "y", "z"]);
    }

    #[test]
    fn comments_keep_their_markers_and_lose_their_text() {
        let (s, _) = shape("{#- note -#}{# other #}{#--x#}").unwrap_or_default();
        assert_eq!(s, "{#- -#}{# #}{#- #}");
    }

    #[test]
    fn single_braces_are_literal_text() {
        let (s, lits) = shape("t = { a = 1 }").unwrap_or_default();
        assert_eq!(s, "{{ __clnrm_lit.0 }}");
        assert_eq!(lits, ["t = { a = 1 }"]);
    }

    #[test]
    fn what_cannot_be_folded_is_left_alone() {
        for src in [
            "{% macro m() %}x{% endmacro %}",
            "{%- raw %}{{ x }}{% endraw %}",
            "{{ __clnrm_lit.0 }}",
            "{{ __tera_context }}",
            "a {{ x ",
            "a {{ \"x }}",
            "{# open",
            "{#-#}",
            "{#--#}",
        ] {
            assert_eq!(fold(src), None, "{src}");
        }
    }
}
