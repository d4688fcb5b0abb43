//! `${name}` in step fields (SPEC §7.4): replaced at run time by what an earlier step
//! of the scenario captured. `$${` stands for a literal `${`. A `$` not followed by
//! `{` + a name + `}` is text (so shell forms such as `${VAR%%,*}` or `$HOME` pass
//! through untouched); a name is a letter or `_`, then letters, digits or `_`.

/// One `${name}` in a text: the name and the byte range of the whole reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The name between the braces.
    pub name: &'a str,
    /// Byte offset of the `$`.
    pub start: usize,
    /// Byte offset just past the `}`.
    pub end: usize,
}

/// What a text is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `$${`: a literal `${`.
    Escaped,
    Var(Reference<'a>),
}

/// Whether `s` can be a `${name}`: a letter or `_`, then letters, digits or `_`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let (mut i, mut text_from) = (0, 0);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if text[i..].starts_with("$${") {
            out.push(Piece::Text(&text[text_from..i]));
            out.push(Piece::Escaped);
            i += 3;
            text_from = i;
            continue;
        }
        if text[i..].starts_with("${")
            && let Some(close) = text[i + 2..].find('}')
        {
            let name = &text[i + 2..i + 2 + close];
            if is_name(name) {
                out.push(Piece::Text(&text[text_from..i]));
                let end = i + 2 + close + 1;
                out.push(Piece::Var(Reference {
                    name,
                    start: i,
                    end,
                }));
                i = end;
                text_from = i;
                continue;
            }
        }
        i += 1;
    }
    out.push(Piece::Text(&text[text_from..]));
    out.retain(|p| !matches!(p, Piece::Text("")));
    out
}

/// The `${name}` references in `text`, in order.
pub fn references(text: &str) -> Vec<Reference<'_>> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Why a text could not be substituted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    /// A `${name}` that nothing captured (the step that captures it did not run).
    #[error("`${{{0}}}` is not captured (the step that captures it did not run)")]
    NotCaptured(String),
}

/// `text` with each `${name}` replaced by `lookup(name)` and each `$${` by `${`; the
/// first name `lookup` does not know is the error.
pub fn substitute<'v>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Escaped => out.push_str("${"),
            Piece::Var(r) => match lookup(r.name) {
                Some(value) => out.push_str(value),
                None => return Err(SubstError::NotCaptured(r.name.to_owned())),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn names_are_replaced_and_escapes_kept_literal() {
        let values = [("id", "42"), ("_tok2", "x")];
        assert_eq!(
            substitute("/orders/${id}?t=${_tok2}", with(&values)).unwrap(),
            "/orders/42?t=x"
        );
        assert_eq!(
            substitute("$${id} is ${id}", with(&values)).unwrap(),
            "${id} is 42"
        );
        assert_eq!(substitute("$$${id}", with(&values)).unwrap(), "$${id}");
        assert_eq!(
            substitute("${missing}", with(&values)),
            Err(SubstError::NotCaptured("missing".into()))
        );
    }

    #[test]
    fn shell_forms_that_are_not_names_pass_through() {
        for text in [
            "t=${OTEL_HEADERS%%,*}; ${t#x-}",
            "$HOME and $ alone",
            "${9lives}",
            "${}",
            "${unclosed",
            "price: $5",
        ] {
            assert_eq!(substitute(text, |_| None).unwrap(), text, "{text}");
            assert!(references(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn references_say_where_they_are() {
        let text = "a ${id} b ${name_2}";
        let refs = references(text);
        assert_eq!(refs.len(), 2);
        assert_eq!(&text[refs[0].start..refs[0].end], "${id}");
        assert_eq!(refs[1].name, "name_2");
        assert_eq!(&text[refs[1].start..refs[1].end], "${name_2}");
        assert!(references("$${id}").is_empty());
    }

    proptest! {
        /// Text without `$` is itself; any text survives a round of escaping: every
        /// `${` written as `$${` comes back as it was.
        #[test]
        fn escaping_round_trips(text in "[a-z${}%# ]{0,40}") {
            let escaped = text.replace("${", "$${");
            prop_assert_eq!(substitute(&escaped, |_| None).unwrap(), text.clone());
            if !text.contains('$') {
                prop_assert_eq!(substitute(&text, |_| None).unwrap(), text);
            }
        }

        /// Substituting known names leaves no reference, and replaces each by its value.
        #[test]
        fn known_names_all_go(
            names in proptest::collection::vec("[a-z_][a-z0-9_]{0,6}", 1..5),
            sep in "[ a-z/=?]{0,3}",
        ) {
            let values: HashMap<String, String> =
                names.iter().map(|n| (n.clone(), format!("<{n}>"))).collect();
            let text: String = names.iter().map(|n| format!("${{{n}}}{sep}")).collect();
            let out = substitute(&text, |n| values.get(n).map(String::as_str)).unwrap();
            let expected: String = names.iter().map(|n| format!("<{n}>{sep}")).collect();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(references(&text).len(), names.len());
        }
    }
    #[test]
    fn an_unknown_name_says_it_is_not_captured() {
        assert_eq!(
            SubstError::NotCaptured("id".into()).to_string(),
            "`${id}` is not captured (the step that captures it did not run)"
        );
    }
}
