//! Values compiled while the file is read: span-name patterns, regular expressions and
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

/// A span-name pattern (SPEC §7.5): `*` matches any run of characters, `?` any one;
/// every other character stands for itself, so route names such as
/// `GET /orders/{id}` or `db.[shard]` match as written.
#[derive(Clone, Debug, PartialEq)]
pub struct NamePattern {
    text: String,
    /// The pattern's characters, when it has a wildcard.
    wild: Option<Vec<char>>,
}

impl NamePattern {
    /// The pattern `text`.
    pub fn new(text: &str) -> Self {
        let wild = text.contains(['*', '?']).then(|| text.chars().collect());
        Self {
            text: text.to_owned(),
            wild,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The one name it matches, when it has no wildcard.
    pub fn literal(&self) -> Option<&str> {
        self.wild.is_none().then_some(self.text.as_str())
    }

    /// Whether `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        match &self.wild {
            None => self.text == name,
            Some(p) => wildcard_match(p, name),
        }
    }
}

/// `*`/`?` matching by the classic two-pointer walk: on a mismatch, go back to the
/// last `*` and let it swallow one more character. Linear in practice, never
/// worse than the product of the lengths, with no recursion and no allocation (it
/// runs for every span a pattern is checked against).
fn wildcard_match(p: &[char], name: &str) -> bool {
    // `j` is a byte offset into `name`, always at a character boundary.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = name[j..].chars().next() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&pc) if pc == '?' || pc == c => {
                i += 1;
                j += c.len_utf8();
            }
            _ => match star {
                Some((si, sj)) => {
                    // The star takes one more character of the name.
                    let skipped = name[sj..].chars().next().map_or(1, char::len_utf8);
                    i = si + 1;
                    j = sj + skipped;
                    star = Some((si, j));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromToml for NamePattern {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        String::from_toml(r, v, path).map(|text| NamePattern::new(&text))
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

/// A regular expression that does not compile; it reads as the compiler's reason (the
/// last line of its message, which points into the expression above it).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", reason(.0))]
pub struct RegexError(#[source] regex::Error);

/// The last line of a regex compiler's message, without its `error: `.
fn reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid")
        .trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

thread_local! {
    /// Compiled expressions by text: suites repeat the same few patterns across many
    /// files, and compiling a regex costs far more than reading the file around it.
    static REGEXES: std::cell::RefCell<HashMap<String, Result<Regex, RegexError>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Compiles `pattern`, or gives the compiler's reason (its last line).
pub(crate) fn compile(pattern: &str) -> Result<Regex, RegexError> {
    REGEXES.with(|cache| {
        if let Some(v) = cache.borrow().get(pattern) {
            return v.clone();
        }
        let verdict = RegexBuilder::new(pattern)
            .multi_line(true)
            .build()
            .map_err(RegexError);
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
                    reason.to_string(),
                );
                None
            }
        }
    }
}

/// A JSONPath query (RFC 9535), parsed.
#[derive(Clone, Debug)]
pub struct JsonPathQuery {
    text: String,
    path: serde_json_path::JsonPath,
}

impl JsonPathQuery {
    /// Parses `text`; the error is the parser's.
    pub fn parse(text: &str) -> Result<Self, serde_json_path::ParseError> {
        serde_json_path::JsonPath::parse(text).map(|path| Self {
            text: text.to_owned(),
            path,
        })
    }

    /// The query as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values it selects in `doc`, in document order.
    pub fn select<'v>(&self, doc: &'v serde_json::Value) -> Vec<&'v serde_json::Value> {
        self.path.query(doc).all()
    }
}

/// `text` with each dotted member name that the shorthand cannot hold (`.user-agent`)
/// written in brackets (`['user-agent']`), when that makes a query that parses.
pub fn jsonpath_fix(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find('.') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.starts_with('.') {
            // `..` (descendants) stays as it is.
            out.push('.');
            rest = after;
            continue;
        }
        let end = after.find(['.', '[']).unwrap_or(after.len());
        let name = &after[..end];
        let plain = name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '*');
        if plain || name.is_empty() {
            out.push('.');
            out.push_str(name);
        } else {
            out.push_str(&format!("['{}']", name.replace('\'', "\\'")));
            changed = true;
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    (changed && serde_json_path::JsonPath::parse(&out).is_ok()).then_some(out)
}

/// The diagnostic of a JSONPath query that does not parse: the parser's reason, and
/// the bracket form as the fix when a member name needs it.
pub fn jsonpath_error(
    src: &std::sync::Arc<crate::diag::Source>,
    span: Span,
    text: &str,
    why: &str,
) -> crate::diag::Diagnostic {
    let d =
        crate::diag::Diagnostic::error(Code::BadValue, "JSONPath query does not parse (RFC 9535)")
            .at(src, span, why);
    match jsonpath_fix(text) {
        Some(fixed) => d.suggest(
            &format!("\"{fixed}\" (a name with `-` or spaces goes in brackets)"),
            format!("\"{fixed}\""),
        ),
        None => d,
    }
}

impl PartialEq for JsonPathQuery {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromToml for JsonPathQuery {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        let text = String::from_toml(r, v, path)?;
        match serde_json_path::JsonPath::parse(&text) {
            Ok(path) => Some(Self { text, path }),
            Err(e) => {
                let d = jsonpath_error(r.src, v.span().into(), &text, &e.to_string());
                r.push(d);
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
schema_as_string!(
    NamePattern,
    Pattern,
    CommandLine,
    JsonPathQuery,
    super::url::HttpUrl
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_name_with_a_dash_is_fixed_with_brackets() {
        assert_eq!(
            jsonpath_fix("$.user-agent").as_deref(),
            Some("$['user-agent']")
        );
        assert_eq!(
            jsonpath_fix("$.headers.content-type[0]").as_deref(),
            Some("$.headers['content-type'][0]")
        );
        assert_eq!(jsonpath_fix("$..a.b"), None, "nothing to fix");
    }

    #[test]
    fn only_star_and_question_mark_are_wildcards() {
        let p = NamePattern::new("db.query");
        assert!(p.is_match("db.query") && !p.is_match("db.query2"));
        let g = NamePattern::new("db.*");
        assert!(g.is_match("db.query") && g.is_match("db.") && !g.is_match("http"));
        // Braces and brackets are literal: route names match themselves.
        let route = NamePattern::new("GET /orders/{id}");
        assert!(route.is_match("GET /orders/{id}"));
        assert!(!route.is_match("GET /orders/id"));
        assert!(NamePattern::new("db.[rw]").is_match("db.[rw]"));
        assert!(!NamePattern::new("db.[rw]").is_match("db.r"));
        let q = NamePattern::new("GET /orders/?*");
        assert!(q.is_match("GET /orders/7") && !q.is_match("GET /orders/"));
        assert!(NamePattern::new("*a*b*").is_match("xxaxxbxx"));
        assert!(!NamePattern::new("*a*b").is_match("xxaxxbxx"));
        assert!(NamePattern::new("é?").is_match("éü"));
    }

    proptest::proptest! {
        #[test]
        fn wildcards_agree_with_an_anchored_regex(
            pattern in "[ab*?{}\\[\\]]{0,8}",
            name in "[ab{}\\[\\]]{0,10}",
        ) {
            let mut re = String::from("^");
            for c in pattern.chars() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            let want = regex::Regex::new(&re).unwrap().is_match(&name);
            proptest::prop_assert_eq!(NamePattern::new(&pattern).is_match(&name), want);
        }
    }

    #[test]
    fn a_regex_is_multi_line_and_its_error_is_the_compilers_last_line() {
        assert!(compile("^b$").unwrap().is_match("a\nb\nc"));
        let e = compile("(").unwrap_err().to_string();
        assert!(e.contains("unclosed group"), "{e}");
    }
}
