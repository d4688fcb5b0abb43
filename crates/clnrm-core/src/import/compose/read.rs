//! Reading files from disk: each bounded in size (the Compose file, env files, `.env`),
//! the `KEY=VALUE` lines of an env file, and the variables of the `.env` beside the
//! Compose file.

use super::interpolate::interpolate;
use std::collections::BTreeSet;
use std::path::Path;

/// The largest Compose (or env) file read.
pub const MAX_BYTES: usize = 4 << 20;

/// The variables of `dir/.env`, if there is one.
/// `.env`'s values may use the environment and the lines above them.
pub(super) fn read_dotenv(
    dir: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let Ok(text) = read_bounded(&dir.join(".env")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v, interp) in parse_env_file(&text) {
        let v = if interp {
            let lookup = |n: &str| {
                var(n).or_else(|| {
                    out.iter()
                        .rev()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                })
            };
            interpolate(&v, &lookup, &mut BTreeSet::new()).unwrap_or(v)
        } else {
            v
        };
        out.push((k, v));
    }
    out
}

/// A file's text, refused over [`MAX_BYTES`].
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_BYTES as u64 {
        return Err(std::io::Error::other(format!(
            "{len} bytes is over the {MAX_BYTES}-byte limit"
        )));
    }
    std::fs::read_to_string(path)
}

/// The `KEY=VALUE` lines of an env file (`# comments`, `export KEY=…`, quoted values);
/// the bool says whether the value is to be interpolated (not single-quoted).
pub fn parse_env_file(text: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let (value, interpolate) = if let Some(inner) = quoted(v, '\'') {
            (inner.to_owned(), false)
        } else if let Some(inner) = quoted(v, '"') {
            (unescape(inner), true)
        } else {
            let v = v.split(" #").next().unwrap_or_default().trim_end();
            (v.to_owned(), true)
        };
        out.push((k.trim().to_owned(), value, interpolate));
    }
    out
}

fn quoted(v: &str, q: char) -> Option<&str> {
    let inner = v.strip_prefix(q)?;
    inner.rfind(q).map(|end| &inner[..end])
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_compose() {
        let text =
            "# c\nA=1\nexport B = two \nC='lit ${X}'\nD=\"q\\n${X}\"\nE=v # note\nnot a pair\n";
        let got = parse_env_file(text);
        let want = [
            ("A", "1", true),
            ("B", "two", true),
            ("C", "lit ${X}", false),
            ("D", "q\n${X}", true),
            ("E", "v", true),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v, i), (wk, wv, wi)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str(), *i), (wk, wv, wi));
        }
    }
}
