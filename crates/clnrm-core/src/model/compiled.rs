//! Values compiled while the file is read: span-name globs, regular expressions and
//! `run` command lines. A value that does not compile is reported at its position and
//! left out of the model, as a value of the wrong type is; later stages use what is
//! here as it is and never parse it again.

use super::reader::{FromToml, Reader};
use super::shell::split_words;
use crate::diag::{Code, Span};
use regex::{Regex, RegexBuilder};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use toml::Spanned;
use toml::de::DeValue;

/// A span-name glob (`http.*`, `db.[rw]`); a name without glob characters matches
/// only itself.
#[derive(Clone, Debug)]
pub struct NamePattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl NamePattern {
    /// Compiles `text`.
    pub fn new(text: &str) -> Result<Self, globset::Error> {
        let glob = globset::Glob::new(text)?;
        Ok(Self {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromToml for NamePattern {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        let text = String::from_toml(r, v, path)?;
        name_pattern(r, &text, v.span().into())
    }
}

/// Compiles a pattern read at `span`, or reports why it does not compile.
pub(crate) fn name_pattern(r: &mut Reader<'_>, text: &str, span: Span) -> Option<NamePattern> {
    match NamePattern::new(text) {
        Ok(p) => Some(p),
        Err(e) => {
            r.error(
                Code::BadGlob,
                span,
                format!("glob \"{text}\" does not compile"),
                e.kind().to_string(),
            );
            None
        }
    }
}

/// A regular expression, compiled multi-line (`^` and `$` match at line ends), as
/// step output is matched.
#[derive(Clone, Debug)]
pub struct Pattern(Regex);

impl Pattern {
    /// The compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.0
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

thread_local! {
    /// Compiled expressions by text: suites repeat the same few patterns across many
    /// files, and compiling a regex costs far more than reading the file around it.
    static REGEXES: std::cell::RefCell<HashMap<String, Result<Regex, String>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Compiles `pattern`, or gives the compiler's reason (its last line).
fn compile(pattern: &str) -> Result<Regex, String> {
    REGEXES.with(|cache| {
        if let Some(v) = cache.borrow().get(pattern) {
            return v.clone();
        }
        let verdict = RegexBuilder::new(pattern)
            .multi_line(true)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid")
                    .trim();
                last.strip_prefix("error: ").unwrap_or(last).to_owned()
            });
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), verdict.clone());
        verdict
    })
}

impl FromToml for Pattern {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        let text = String::from_toml(r, v, path)?;
        match compile(&text) {
            Ok(re) => Some(Self(re)),
            Err(reason) => {
                r.error(
                    Code::BadRegex,
                    v.span().into(),
                    "regular expression does not compile",
                    reason,
                );
                None
            }
        }
    }
}

/// A `run` line and the words it splits into, like a POSIX shell word list.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandLine {
    /// The line as written.
    pub text: String,
    /// Program and arguments; empty when the line is blank.
    pub argv: Vec<String>,
}

impl FromToml for CommandLine {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        let text = String::from_toml(r, v, path)?;
        let span: Span = v.span().into();
        match split_words(&text) {
            Ok(argv) => Some(Self { text, argv }),
            Err(e) => {
                // The offset is into the decoded string; for basic strings without
                // escapes before it, it lines up with the source after the quote.
                let at = r.src.text().get(span.start..span.end).and_then(|raw| {
                    let inner = raw.get(1..)?;
                    inner
                        .starts_with(text.get(..e.offset)?)
                        .then_some(span.start + 1 + e.offset)
                });
                let span = at.map_or(span, |s| Span::new(s, s + 1));
                let mut d = crate::diag::Diagnostic::error(
                    Code::UnbalancedQuotes,
                    format!("`run` cannot be split into words: {}", e.reason),
                )
                .at(r.src, span, e.reason);
                d.help =
                    Some("close the quote, or use `steps` with an explicit `command` list".into());
                r.push(d);
                None
            }
        }
    }
}

macro_rules! schema_as_string {
    ($($t:ty),*) => {$(
        impl JsonSchema for $t {
            fn inline_schema() -> bool {
                String::inline_schema()
            }
            fn schema_name() -> Cow<'static, str> {
                String::schema_name()
            }
            fn schema_id() -> Cow<'static, str> {
                String::schema_id()
            }
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                String::json_schema(generator)
            }
        }
    )*};
}
schema_as_string!(NamePattern, Pattern, CommandLine);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_without_glob_characters_matches_only_itself() {
        let p = NamePattern::new("db.query").unwrap();
        assert!(p.is_match("db.query"));
        assert!(!p.is_match("db.query2"));
        let g = NamePattern::new("db.*").unwrap();
        assert!(g.is_match("db.query") && !g.is_match("http"));
    }

    #[test]
    fn a_regex_is_multi_line_and_its_error_is_the_compilers_last_line() {
        assert!(compile("^b$").unwrap().is_match("a\nb\nc"));
        let e = compile("(").unwrap_err();
        assert!(e.contains("unclosed group"), "{e}");
    }
}
