//! `.dockerignore` as the engine reads it: one pattern a line (`#` starts a comment),
//! relative to the build context, a leading `/` or `./` meaning the same; `*` and `?`
//! stay within a path component, `**` spans any number of them; `!` makes an
//! exception. A path is left out when the last pattern matching it, or one of its
//! parent directories, is not an exception.

use globset::{GlobBuilder, GlobMatcher};

/// A parsed `.dockerignore`.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<(GlobMatcher, bool)>,
    exceptions: bool,
}

/// A line that is no pattern.
#[derive(Debug, thiserror::Error)]
#[error(".dockerignore line {line}: \"{text}\" is not a pattern ({source})")]
pub struct BadPattern {
    /// Its line, from 1.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// What the glob parser said.
    #[source]
    pub source: globset::Error,
}

impl DockerIgnore {
    /// The patterns of `text` (a `.dockerignore` file's content).
    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut out = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| BadPattern {
                    line: i + 1,
                    text: raw.to_owned(),
                    source,
                })?;
            out.exceptions |= exception;
            out.patterns.push((glob.compile_matcher(), exception));
        }
        Ok(out)
    }

    /// Whether `rel` (a `/`-separated path in the context) is left out.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        for (glob, exception) in &self.patterns {
            if excluded != *exception {
                // Only a pattern that can change the answer is tried.
                continue;
            }
            if glob.is_match(rel) || parents(rel).any(|p| glob.is_match(p)) {
                excluded = !exception;
            }
        }
        excluded
    }

    /// Whether a directory at `rel` and all under it are left out: it is excluded and
    /// no exception could bring anything under it back.
    pub fn excludes_tree(&self, rel: &str) -> bool {
        !self.exceptions && self.excludes(rel)
    }
}

/// `pattern` as the engine cleans it: no leading `/` or `./`, no empty or `.`
/// components, `..` resolved.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
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
        assert!(i.excludes_tree("node_modules"));
    }

    #[test]
    fn double_star_spans_directories_and_an_exception_brings_a_path_back() {
        let i = ignore("**/*.pyc\n**/__pycache__\ndocs\n!docs/README.md\n");
        assert!(i.excludes("a/b/c.pyc"));
        assert!(i.excludes("c.pyc"));
        assert!(i.excludes("pkg/__pycache__/m.cpython-311.pyc"));
        assert!(i.excludes("docs/guide.md"));
        assert!(!i.excludes("docs/README.md"));
        // With an exception somewhere, no directory is skipped whole.
        assert!(!i.excludes_tree("docs"));
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
    fn patterns_are_cleaned_as_the_engine_cleans_them() {
        let i = ignore("./tmp//cache/\n  spaced.txt  \n/a/../b\n");
        assert!(i.excludes("tmp/cache/x"));
        assert!(i.excludes("spaced.txt"));
        assert!(i.excludes("b"));
        assert!(!i.excludes("a"));
    }

    #[test]
    fn a_line_that_is_no_pattern_is_an_error_naming_its_line() {
        let e = DockerIgnore::parse("ok\n[z-a\n").expect_err("bad class");
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().starts_with(".dockerignore line 2: \"[z-a\""),
            "{e}"
        );
    }
}
