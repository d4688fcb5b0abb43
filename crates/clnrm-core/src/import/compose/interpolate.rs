//! Compose's variable interpolation (`$NAME`, `${NAME:-default}`, `${NAME:?error}`,
//! `${NAME:+other}`, `$$`), bounded in how deep defaults nest. Where the variables
//! come from is the caller's business.

use std::collections::BTreeSet;

/// Why a value's `${…}` cannot be interpolated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// Defaults (`${A:-${B:-…}}`) nest too deep.
    #[error("variables nest more than {} deep", MAX_NESTING)]
    TooDeep,
    /// A `${` without its `}`.
    #[error("unclosed `${{` in {0:?}")]
    Unclosed(String),
    /// A `${…}` that does not start with a name.
    #[error("`${{{0}}}` does not start with a variable name")]
    NoName(String),
    /// `${NAME:?message}` (or `?`) of a variable that is unset (or empty).
    #[error("variable {name} is required: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written after `?`.
        message: String,
    },
    /// A `${NAME…}` whose operator Compose does not have.
    #[error("`${{{body}}}`: unknown modifier {op:?}")]
    UnknownModifier {
        /// What is between the braces.
        body: String,
        /// What follows the name.
        op: String,
    },
}

/// `s` with Compose's interpolation applied: `$$` is `$`; `$NAME`, `${NAME}`,
/// `${NAME:-default}` / `${NAME-default}` (unset or empty / unset),
/// `${NAME:?message}` / `${NAME?message}` (an error), `${NAME:+other}` /
/// `${NAME+other}`. A variable that is unset and has no default is empty, and named in
/// `unset`.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
) -> Result<String, InterpolationError> {
    interpolate_at(s, lookup, unset, 0)
}

/// How deep defaults may nest (`${A:-${B:-…}}`); the input is untrusted.
const MAX_NESTING: usize = 8;

fn interpolate_at(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    if depth > MAX_NESTING {
        return Err(InterpolationError::TooDeep);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end =
                closing_brace(body).ok_or_else(|| InterpolationError::Unclosed(s.to_owned()))?;
            out.push_str(&expand(&body[..end], lookup, unset, depth)?);
            rest = &body[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
            } else {
                let name = &after[..len];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        unset.insert(name.to_owned());
                    }
                }
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// The byte offset of the `}` closing a `${` whose body starts `body`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `${…}` body.
fn expand(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    let len = name_len(body);
    if len == 0 {
        return Err(InterpolationError::NoName(body.to_owned()));
    }
    let (name, op) = body.split_at(len);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let out = match op {
        "" => match value {
            Some(v) => v,
            None => {
                unset.insert(name.to_owned());
                String::new()
            }
        },
        _ if op.starts_with(":-") => match value.filter(|_| set_nonempty) {
            Some(v) => v,
            None => interpolate_at(&op[2..], lookup, unset, depth + 1)?,
        },
        _ if op.starts_with('-') => match value {
            Some(v) => v,
            None => interpolate_at(&op[1..], lookup, unset, depth + 1)?,
        },
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let nonempty_needed = op.starts_with(':');
            let ok = if nonempty_needed {
                set_nonempty
            } else {
                value.is_some()
            };
            if !ok {
                let msg = op.trim_start_matches(':').trim_start_matches('?');
                return Err(InterpolationError::Required {
                    name: name.to_owned(),
                    message: msg.to_owned(),
                });
            }
            value.unwrap_or_default()
        }
        _ if op.starts_with(":+") => {
            if set_nonempty {
                interpolate_at(&op[2..], lookup, unset, depth + 1)?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                interpolate_at(&op[1..], lookup, unset, depth + 1)?
            } else {
                String::new()
            }
        }
        _ => {
            return Err(InterpolationError::UnknownModifier {
                body: body.to_owned(),
                op: op.to_owned(),
            });
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::compose::tests::vars;

    fn interp(
        s: &str,
        pairs: &[(&str, &str)],
    ) -> Result<(String, Vec<String>), InterpolationError> {
        let mut unset = BTreeSet::new();
        let out = interpolate(s, &vars(pairs), &mut unset)?;
        Ok((out, unset.into_iter().collect()))
    }

    #[test]
    fn interpolation_follows_compose() {
        let set = [("USER", "ann"), ("EMPTY", "")];
        let ok = |s: &str| interp(s, &set).unwrap().0;
        assert_eq!(ok("$USER and ${USER}"), "ann and ann");
        assert_eq!(ok("$$USER costs $$5"), "$USER costs $5");
        assert_eq!(ok("${EMPTY:-def}|${EMPTY-def}"), "def|");
        assert_eq!(ok("${NOPE:-a ${USER} b}"), "a ann b");
        assert_eq!(ok("${USER:+yes}${EMPTY:+no}${EMPTY+set}"), "yesset");
        assert_eq!(ok("a $ b $1"), "a $ b $1");
        let (out, unset) = interp("x${NOPE}y$ALSO", &set).unwrap();
        assert_eq!(
            (out.as_str(), unset),
            ("xy", vec!["ALSO".into(), "NOPE".into()])
        );
        assert!(
            interp("${NOPE:?must be set}", &set)
                .unwrap_err()
                .to_string()
                .contains("NOPE is required: must be set")
        );
        assert!(interp("${EMPTY:?}", &set).is_err());
        assert!(interp("${EMPTY?}", &set).is_ok());
        assert!(
            interp("${USER", &set)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(interp("${1X}", &set).is_err());
    }

    #[test]
    fn interpolation_errors_name_the_text() {
        let set = [("USER", "ann")];
        let why = |s: &str| interp(s, &set).unwrap_err().to_string();
        assert_eq!(why("a ${USER"), "unclosed `${` in \"a ${USER\"");
        assert_eq!(why("${1X}"), "`${1X}` does not start with a variable name");
        assert_eq!(why("${USER%x}"), "`${USER%x}`: unknown modifier \"%x\"");
        assert_eq!(why("${NOPE?set it}"), "variable NOPE is required: set it");
        let deep = format!("{}{}", "${N:-".repeat(10), "}".repeat(10));
        assert_eq!(why(&deep), "variables nest more than 8 deep");
    }
}
