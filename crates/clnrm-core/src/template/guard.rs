//! Bounded template recursion. Tera puts no limit on how deep macros call macros or
//! templates include templates, and its renderer recurses on the native stack, so a
//! macro that calls itself without end (or a template that includes itself) would
//! overflow the stack and abort the process.
//!
//! After a template is compiled, every macro body and every template's top level get
//! a call to [`ENTER`] first and [`LEAVE`] last, inserted into Tera's syntax tree
//! (after whitespace control was applied, so output is unchanged). They count the
//! nesting in the render state; past [`MAX_DEPTH`] the render fails with a
//! diagnostic (E0021) instead of a crash. Import cycles never end at all (Tera loads
//! imported macros recursively before rendering), so the engine refuses them before
//! compiling; see `TemplateEngine::load_references`.
//!
//! Tera's parser also recurses natively over nested blocks and brackets, so
//! [`check_nesting`] refuses a template nested deeper than [`MAX_NESTING`] before it
//! is parsed; with that bound one level of macro or include costs a bounded amount
//! of stack, and [`ENTER`] also refuses to go on when less than [`STACK_RESERVE`] is
//! left, whatever stack the render runs on.

use super::fold::{comment, first_word, next_block_start, tag_end};
use crate::diag::Span;
use std::collections::HashMap;
use tera::ast::{Expr, ExprVal, FunctionCall, Node, WS};

/// The function that counts one level in.
pub(crate) const ENTER: &str = "__clnrm_enter";
/// The function that counts one level out.
pub(crate) const LEAVE: &str = "__clnrm_leave";

/// Deepest nesting of macro calls and includes a render may reach. Each level costs
/// Tera some kilobytes of native stack (about 13 KiB in a debug build); 64 levels
/// stay far inside the smallest stack a render runs on (2 MiB).
pub const MAX_DEPTH: usize = 64;

/// Deepest nesting of blocks (`if`, `for`, `filter`, `macro`, `block`), and of
/// brackets inside one tag, that a template may have.
pub const MAX_NESTING: usize = 64;

/// Most operators one tag may have: Tera builds and evaluates a chain of them as a
/// tree as deep as the chain is long.
pub const MAX_OPERATORS: usize = 256;

/// Stack a render keeps free: a macro call or include that would leave less fails.
pub const STACK_RESERVE: usize = 512 * 1024;

/// Whether the stack has room for one more level (unknown bounds count as room).
pub(crate) fn stack_left() -> bool {
    stacker::remaining_stack().is_none_or(|left| left >= STACK_RESERVE)
}

/// Where `src` nests deeper than [`MAX_NESTING`], and what nests there; `None` when
/// it does not (or when it cannot be scanned, which Tera then reports).
pub(crate) fn check_nesting(src: &str) -> Option<(Span, &'static str)> {
    let b = src.as_bytes();
    let mut blocks = 0usize;
    let mut pos = 0;
    while pos < b.len() {
        let start = next_block_start(b, pos);
        if start >= b.len() {
            return None;
        }
        let end = match b[start + 1] {
            b'#' => comment(b, start)?.2,
            close => {
                let end = tag_end(b, start + 2, if close == b'%' { b"%}" } else { b"}}" })?;
                let (depth, operators) = measure(&b[start + 2..end - 2]);
                if depth > MAX_NESTING {
                    return Some((Span::new(start, end), "brackets"));
                }
                if operators > MAX_OPERATORS {
                    return Some((Span::new(start, end), "operators"));
                }
                end
            }
        };
        if b[start + 1] == b'%' {
            match first_word(&src[start + 2..end - 2]) {
                "raw" => {
                    pos = end_of_raw(src, end)?;
                    continue;
                }
                "if" | "for" | "filter" | "macro" | "block" => blocks += 1,
                "endif" | "endfor" | "endfilter" | "endmacro" | "endblock" => {
                    blocks = blocks.saturating_sub(1);
                }
                _ => {}
            }
            if blocks > MAX_NESTING {
                return Some((Span::new(start, end), "blocks"));
            }
        }
        pos = end;
    }
    None
}

/// The deepest `(`/`[` nesting in a tag body and how many operators it has (each
/// one a level of Tera's expression tree), outside string literals.
fn measure(body: &[u8]) -> (usize, usize) {
    let (mut depth, mut deepest, mut operators, mut quote) = (0usize, 0usize, 0usize, None);
    let mut word_start = None;
    for (i, &c) in body.iter().enumerate() {
        let in_word = c.is_ascii_alphanumeric() || c == b'_';
        if quote.is_none() {
            match (word_start, in_word) {
                (None, true) => word_start = Some(i),
                (Some(w), false) => {
                    if matches!(&body[w..i], b"and" | b"or" | b"not" | b"in") {
                        operators += 1;
                    }
                    word_start = None;
                }
                _ => {}
            }
        }
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'' | b'`') => quote = Some(c),
            (None, b'(' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b')' | b']') => depth = depth.saturating_sub(1),
            (None, b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!') => operators += 1,
            _ => {}
        }
    }
    (deepest, operators)
}

/// The end of the `{% endraw %}` after a raw block's opening tag ends at `from`.
fn end_of_raw(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut pos = from;
    loop {
        let at = pos + src[pos..].find("{%")?;
        let end = tag_end(b, at + 2, b"%}")?;
        if first_word(&src[at + 2..end - 2]) == "endraw" {
            return Some(end);
        }
        pos = at + 2;
    }
}

/// What is being entered, for the error message.
fn call(function: &str, kind: &str, name: &str) -> Node {
    let mut args = HashMap::new();
    if !kind.is_empty() {
        args.insert(kind.to_owned(), Expr::new(ExprVal::String(name.to_owned())));
    }
    let f = FunctionCall {
        name: function.to_owned(),
        args,
    };
    Node::VariableBlock(WS::default(), Expr::new(ExprVal::FunctionCall(f)))
}

fn wrap(body: &mut Vec<Node>, kind: &str, name: &str) {
    body.insert(0, call(ENTER, kind, name));
    body.push(call(LEAVE, "", ""));
}

/// Adds the depth check to every macro body of `template` and to its top level.
pub(crate) fn instrument(template: &mut tera::Template) {
    for (name, def) in &mut template.macros {
        wrap(&mut def.body, "macro", name);
    }
    // A template with `extends` renders its parent's top level, not its own.
    if template.parent.is_none() {
        let name = template.name.clone();
        wrap(&mut template.ast, "template", &name);
    }
}

/// The message of a render that went `depth` levels deep, too deep.
pub(crate) fn too_deep(kind: &str, name: &str, depth: usize) -> String {
    let verb = if kind == "macro" { "calls" } else { "includes" };
    let limit = if depth > MAX_DEPTH {
        format!("deeper than {MAX_DEPTH} levels")
    } else {
        format!("too deep for the stack at {depth} levels")
    };
    format!("{kind} \"{name}\" nests {limit} (a {kind} that {verb} itself without end?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_the_bound_is_found_before_parsing() {
        let deep = |n: usize| format!("{}x{}", "{% if a %}".repeat(n), "{% endif %}".repeat(n));
        assert_eq!(check_nesting(&deep(MAX_NESTING)), None);
        let (span, what) = check_nesting(&deep(MAX_NESTING + 1)).unwrap_or_default();
        assert_eq!((span.start, what), (MAX_NESTING * 10, "blocks"));
        let parens = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
        assert_eq!(check_nesting(&parens(MAX_NESTING)), None);
        assert_eq!(
            check_nesting(&parens(MAX_NESTING + 1)).map(|f| f.1),
            Some("brackets")
        );
        let chain = |n: usize| format!("{{{{ 1{} }}}}", " + 1".repeat(n));
        assert_eq!(check_nesting(&chain(MAX_OPERATORS)), None);
        assert_eq!(
            check_nesting(&chain(MAX_OPERATORS + 1)).map(|f| f.1),
            Some("operators")
        );
        let words = format!(
            "{{% if a{} %}}x{{% endif %}}",
            " and a".repeat(MAX_OPERATORS + 1)
        );
        assert_eq!(check_nesting(&words).map(|f| f.1), Some("operators"));
        // Brackets in strings and blocks in raw text or comments do not count.
        let quoted = format!("{{{{ \"{}\" }}}}", "(".repeat(200));
        assert_eq!(check_nesting(&quoted), None);
        let raw = format!("{{% raw %}}{}{{% endraw %}}", "{% if a %}".repeat(200));
        assert_eq!(check_nesting(&raw), None);
        let commented = format!("{{# {} #}}", "{% if a %}".repeat(200));
        assert_eq!(check_nesting(&commented), None);
    }

    #[test]
    fn macro_bodies_and_the_top_level_are_wrapped() {
        let mut t = tera::Template::new(
            "t",
            None,
            "{% macro m(n) %}x{% endmacro m %}\n{{ self::m(n=1) }}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        instrument(&mut t);
        let body = &t.macros["m"].body;
        assert!(
            matches!(&body[0], Node::VariableBlock(_, e) if matches!(&e.val, ExprVal::FunctionCall(f) if f.name == ENTER))
        );
        assert!(
            matches!(body.last(), Some(Node::VariableBlock(_, e)) if matches!(&e.val, ExprVal::FunctionCall(f) if f.name == LEAVE))
        );
        assert_eq!(body.len(), 3);
        assert!(matches!(&t.ast[0], Node::VariableBlock(..)));
    }
}
