//! `.dockerignore` read as Docker reads it (its `dockerignore` reader and
//! `patternmatcher`): a line starting with `#` is a comment, others are trimmed, a
//! UTF-8 byte-order mark is dropped; a pattern is cleaned as a path (`./a//b` is `a/b`,
//! a leading `/` is dropped) and turned into a regular expression: `*` and `?` stay
//! within a path component, `**` spans any number of them, `\` escapes, `[...]` is a
//! class as the regular expression reads it, and `. + ( ) | { } $` are themselves. `!`
//! makes an exception. A path is left out when the last pattern matching it, or one
//! of its parent directories, is not an exception.

use crate::inputs::Walk;
use regex::Regex;

/// A parsed `.dockerignore`.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    /// The cleaned pattern, `/`-separated.
    text: String,
    regex: Regex,
    exception: bool,
}

/// A line that is no pattern.
#[derive(Debug, thiserror::Error)]
#[error(".dockerignore line {line}: \"{text}\" is not a pattern ({why})")]
pub struct BadPattern {
    /// Its line, from 1.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

impl DockerIgnore {
    /// The patterns of `text` (a `.dockerignore` file's content).
    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut out = Self::default();
        for (i, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| BadPattern {
                line: i + 1,
                text: raw.to_owned(),
                why: why.to_owned(),
            };
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if exception && pattern.is_empty() {
                return Err(bad("`!` alone excludes nothing"));
            }
            let text = clean(pattern);
            let regex = Regex::new(&to_regex(&text)).map_err(|e| bad(&e.to_string()))?;
            out.patterns.push(Pattern {
                text,
                regex,
                exception,
            });
        }
        Ok(out)
    }

    /// Whether `rel` (a `/`-separated path in the context) is left out.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            if excluded != p.exception {
                // Only a pattern that can change the answer is tried.
                continue;
            }
            if p.regex.is_match(rel) || parents(rel).any(|d| p.regex.is_match(d)) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// What becomes of the directory at `rel`: sent, walked through without being sent
    /// itself (an exception may bring back something under it), or left out whole.
    pub fn dir(&self, rel: &str) -> Walk {
        if !self.excludes(rel) {
            Walk::Take
        } else if self
            .patterns
            .iter()
            .any(|p| p.exception && may_match_under(&p.text, rel))
        {
            Walk::Through
        } else {
            Walk::Skip
        }
    }
}

/// `pattern` cleaned as a path is: no empty or `.` components, `..` taking back the
/// one before it (kept where there is none), no leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The regular expression of a cleaned pattern, as the engine makes it.
fn to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.next() {
                Some(next) => re.push_str(&regex::escape(&next.to_string())),
                None => re.push_str("\\\\"),
            },
            other => re.push(other),
        }
    }
    re.push('$');
    re
}

/// Whether exception `pattern` could match a path below directory `dir`: its leading
/// components match the directory's (a `**` matches any), and it has more.
fn may_match_under(pattern: &str, dir: &str) -> bool {
    let wanted: Vec<&str> = pattern.split('/').collect();
    let have: Vec<&str> = dir.split('/').collect();
    for (i, component) in have.iter().enumerate() {
        let Some(p) = wanted.get(i) else {
            return false;
        };
        if p.contains("**") {
            return true;
        }
        let one = Regex::new(&to_regex(p));
        if !one.is_ok_and(|r| r.is_match(component)) {
            return false;
        }
    }
    wanted.len() > have.len()
}

/// The parent directories of `rel`, nearest last: `a`, `a/b` for `a/b/c`.
fn parents(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_pattern_leaves_out_what_it_matches_and_everything_under_it() {
        let i = ignore("# build output\nnode_modules\n/dist/\n*.pyc\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/x/y.js"));
        assert!(i.excludes("dist/app.js"));
        assert!(i.excludes("a.pyc"));
        // `*` stays within a component: only the context's own `*.pyc`.
        assert!(!i.excludes("pkg/a.pyc"));
        assert!(!i.excludes("src/node_modules_notes.txt"));
        assert!(!i.excludes("app.py"));
        assert_eq!(i.dir("node_modules"), Walk::Skip);
        assert_eq!(i.dir("src"), Walk::Take);
    }

    #[test]
    fn double_star_spans_directories_and_an_exception_brings_a_path_back() {
        let i = ignore("**/*.pyc\n**/__pycache__\ndocs\n!docs/README.md\n");
        assert!(i.excludes("a/b/c.pyc"));
        assert!(i.excludes("c.pyc"));
        assert!(i.excludes("pkg/__pycache__/m.cpython-311.pyc"));
        assert!(i.excludes("docs/guide.md"));
        assert!(!i.excludes("docs/README.md"));
        // `docs` is walked through for its exception, `__pycache__` skipped whole.
        assert_eq!(i.dir("docs"), Walk::Through);
        assert_eq!(i.dir("pkg/__pycache__"), Walk::Skip);
    }

    #[test]
    fn the_last_matching_pattern_decides() {
        let i = ignore("*.md\n!README.md\nREADME.md\n");
        assert!(i.excludes("README.md"));
        let i = ignore("*.md\n!README.md\n");
        assert!(!i.excludes("README.md"));
        assert!(i.excludes("CHANGES.md"));
    }

    #[test]
    fn braces_plus_and_dollar_are_themselves_and_a_bracket_is_a_class() {
        let i = ignore("*.{js,map}\na+b\nx$\n[!q]z\n");
        assert!(
            !i.excludes("a.js"),
            "no alternation, as the engine reads it"
        );
        assert!(i.excludes("b.{js,map}"));
        assert!(i.excludes("a+b"));
        assert!(!i.excludes("aab"));
        assert!(i.excludes("x$"));
        // `[!q]` is the class of `!` and `q`.
        assert!(i.excludes("qz") && i.excludes("!z"));
        assert!(!i.excludes("az"));
        let i = ignore("foo{\n");
        assert!(i.excludes("foo{"));
    }

    #[test]
    fn lines_and_patterns_are_read_as_the_engine_reads_them() {
        let i = ignore(
            "\u{feff}first\n  #not-a-comment\n./tmp//cache/\n  spaced.txt  \n/a/../b\n../up\n",
        );
        assert!(i.excludes("first"), "the byte-order mark is dropped");
        assert!(
            i.excludes("#not-a-comment"),
            "only a line starting with # is a comment"
        );
        assert!(i.excludes("tmp/cache/x"));
        assert!(i.excludes("spaced.txt"));
        assert!(i.excludes("b"));
        assert!(!i.excludes("a"));
        assert!(
            !i.excludes("up"),
            "`..` above the context matches nothing in it"
        );
    }

    #[test]
    fn a_line_that_is_no_pattern_is_an_error_naming_its_line() {
        let e = DockerIgnore::parse("ok\n!\n").expect_err("lone !");
        assert_eq!(e.line, 2);
        let e = DockerIgnore::parse("ok\n[z-a\n").expect_err("bad class");
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().starts_with(".dockerignore line 2: \"[z-a\""),
            "{e}"
        );
    }
}
