//! A typed walk over the spanned TOML tree that reports every problem it meets.
//!
//! Deriving `Deserialize` would stop at the first type error; a test file should get
//! every mistake back in one pass, each at its key or value, and unknown keys with the
//! closest known one. So the model is read by hand through this small API: each
//! accessor records the key as known, checks the type, and on a mismatch records a
//! diagnostic and returns `None` so reading carries on.

use super::{Sp, SpMap};
use crate::diag::{Code, Diagnostic, Diagnostics, Source, Span};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// Where diagnostics go while reading one source.
pub struct Reader<'s> {
    /// The source the spans point into.
    pub src: &'s Arc<Source>,
    /// Problems found so far.
    pub diags: &'s mut Diagnostics,
}

impl Reader<'_> {
    /// Records an error at `span`.
    pub fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        let d = Diagnostic::error(code, message).at(self.src, span, label);
        self.diags.push(d);
    }

    /// Records a finished diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
}

/// The name of a TOML value's type, for messages.
pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Converts a spanned TOML value to a [`toml::Value`].
pub fn to_toml_value(v: &DeValue<'_>) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => parse_int(i.as_str(), i.radix()).map_or_else(
            || toml::Value::String(i.as_str().to_owned()),
            toml::Value::Integer,
        ),
        DeValue::Float(f) => {
            toml::Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN))
        }
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(a) => {
            toml::Value::Array(a.iter().map(|e| to_toml_value(e.get_ref())).collect())
        }
        DeValue::Table(t) => to_toml_table(t),
    }
}

/// Converts a spanned TOML table to a [`toml::Value`].
pub fn to_toml_table(t: &DeTable<'_>) -> toml::Value {
    toml::Value::Table(
        t.iter()
            .map(|(k, v)| (k.get_ref().to_string(), to_toml_value(v.get_ref())))
            .collect(),
    )
}

fn parse_int(text: &str, radix: u32) -> Option<i64> {
    let clean = text.replace('_', "");
    let digits = clean.trim_start_matches('+');
    let digits = ["0x", "0o", "0b"]
        .iter()
        .fold(digits, |d, p| d.strip_prefix(p).unwrap_or(d));
    i64::from_str_radix(digits, radix).ok()
}

/// A word-valued enum read from a string.
pub trait Keyword: Sized + Copy + 'static {
    /// Every accepted word and its value.
    const WORDS: &'static [(&'static str, Self)];
    /// Whether words match regardless of case.
    const ANY_CASE: bool = false;
    /// What the key is, for the schema.
    const DESCRIPTION: &'static str;
    /// What each word means, in the order of `WORDS`, for the schema.
    const DOCS: &'static [&'static str];

    /// The value of `word`, if accepted.
    fn from_word(word: &str) -> Option<Self> {
        Self::WORDS
            .iter()
            .find(|(w, _)| {
                if Self::ANY_CASE {
                    w.eq_ignore_ascii_case(word)
                } else {
                    *w == word
                }
            })
            .map(|(_, v)| *v)
    }

    /// The accepted words, quoted and comma separated.
    fn word_list() -> String {
        Self::WORDS
            .iter()
            .map(|(w, _)| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads a value of any kind; implemented for the scalar types the model uses.
pub trait FromToml: Sized {
    /// Converts `v` or records why it cannot be converted.
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self>;
}

fn mismatch(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str, expected: &str) {
    let found = type_name(v.get_ref());
    r.error(
        Code::WrongType,
        v.span().into(),
        format!("`{path}` must be {expected}, found {found}"),
        format!("expected {expected}"),
    );
}

impl FromToml for String {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                mismatch(r, v, path, "a string");
                None
            }
        }
    }
}

impl FromToml for bool {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                mismatch(r, v, path, "a boolean");
                None
            }
        }
    }
}

fn read_int(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    expected: &str,
) -> Option<i64> {
    match v.get_ref() {
        DeValue::Integer(i) => {
            let value = parse_int(i.as_str(), i.radix());
            if value.is_none() {
                r.error(
                    Code::OutOfRange,
                    v.span().into(),
                    format!("`{path}` is too large"),
                    "does not fit in 64 bits",
                );
            }
            value
        }
        _ => {
            mismatch(r, v, path, expected);
            None
        }
    }
}

impl FromToml for i64 {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        read_int(r, v, path, "an integer")
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl FromToml for $t {
            fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
                let n = read_int(r, v, path, "a non-negative integer")?;
                let converted = <$t>::try_from(n).ok();
                if converted.is_none() {
                    r.error(
                        Code::OutOfRange,
                        v.span().into(),
                        format!("`{path}` is out of range: {n}"),
                        format!("expected 0 to {}", <$t>::MAX),
                    );
                }
                converted
            }
        }
    )*};
}
unsigned!(u16, u64);

impl FromToml for f64 {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            DeValue::Integer(_) => read_int(r, v, path, "a number").map(|i| i as f64),
            _ => {
                mismatch(r, v, path, "a number");
                None
            }
        }
    }
}

impl FromToml for crate::model::Scalar {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        use crate::model::Scalar;
        match v.get_ref() {
            DeValue::String(s) => Some(Scalar::String(s.to_string())),
            DeValue::Integer(_) => read_int(r, v, path, "an integer").map(Scalar::Int),
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok().map(Scalar::Float),
            DeValue::Boolean(b) => Some(Scalar::Bool(*b)),
            _ => {
                mismatch(r, v, path, "a string, number or boolean");
                None
            }
        }
    }
}

impl<T: FromToml> FromToml for Sp<T> {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        T::from_toml(r, v, path).map(|value| Sp::new(value, v.span().into()))
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        let DeValue::Array(items) = v.get_ref() else {
            mismatch(r, v, path, "an array");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match T::from_toml(r, item, &format!("{path}[{i}]")) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A table being read: tracks which keys were asked for.
pub struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    anchor: Span,
    path: String,
    known: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Starts reading `table`; `anchor` is where to point when a key is missing.
    pub fn new(table: &'a DeTable<'i>, anchor: Span, path: impl Into<String>) -> Self {
        Self {
            table,
            anchor,
            path: path.into(),
            known: Vec::new(),
        }
    }

    /// Where to point at the table as a whole.
    pub fn anchor(&self) -> Span {
        self.anchor
    }

    /// The dotted path of the table (`service.api`).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn child_path(&self, key: &str) -> String {
        let key = toml_key(key);
        if self.path.is_empty() {
            key
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw entry of `key`, marking it known.
    pub fn entry(
        &mut self,
        key: &'static str,
    ) -> Option<(&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>)> {
        self.known.push(key);
        self.table.get_key_value(key)
    }

    /// Whether `key` is present (without marking it known).
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Reads an optional value.
    pub fn get<T: FromToml>(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<T> {
        let (_, v) = self.entry(key)?;
        T::from_toml(r, v, &self.child_path(key))
    }

    /// Reads a required value; a missing one is reported at the table.
    pub fn req<T: FromToml>(
        &mut self,
        r: &mut Reader<'_>,
        key: &'static str,
        what: &str,
    ) -> Option<T> {
        if !self.table.contains_key(key) {
            self.known.push(key);
            let table = if self.path.is_empty() {
                "the file".to_owned()
            } else {
                format!("[{}]", self.path)
            };
            r.push(
                Diagnostic::error(
                    Code::MissingKey,
                    format!("{table} is missing required key `{key}`"),
                )
                .at(r.src, self.anchor, format!("add `{key} = {what}`")),
            );
            return None;
        }
        self.get(r, key)
    }

    /// Reads a word from a fixed set.
    pub fn keyword<K: Keyword>(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<Sp<K>> {
        let (_, v) = self.entry(key)?;
        keyword_value(r, v, &self.child_path(key))
    }

    /// Reads a sub-table.
    pub fn table(&mut self, r: &mut Reader<'_>, key: &'static str) -> Option<Table<'a, 'i>> {
        let (k, v) = self.entry(key)?;
        let path = self.child_path(key);
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::new(t, k.span().into(), path)),
            _ => {
                mismatch(r, v, &path, "a table");
                None
            }
        }
    }

    /// Reads an array of tables (`[[key]]`); a single table is an error with help.
    pub fn tables(&mut self, r: &mut Reader<'_>, key: &'static str) -> Vec<Table<'a, 'i>> {
        let Some((k, v)) = self.entry(key) else {
            return Vec::new();
        };
        let path = self.child_path(key);
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item.get_ref() {
                    DeValue::Table(t) => {
                        Some(Table::new(t, item.span().into(), format!("{path}[{i}]")))
                    }
                    _ => {
                        mismatch(r, item, &format!("{path}[{i}]"), "a table");
                        None
                    }
                })
                .collect(),
            DeValue::Table(_) => {
                r.push(
                    Diagnostic::error(
                        Code::WrongType,
                        format!("`{path}` must be an array of tables"),
                    )
                    .at(r.src, k.span().into(), "written as a single table")
                    .help(format!(
                        "write `[[{path}]]` (double brackets) for each entry"
                    )),
                );
                Vec::new()
            }
            _ => {
                mismatch(r, v, &path, "an array of tables");
                Vec::new()
            }
        }
    }

    /// Reads a table of user-chosen keys.
    pub fn map<V>(
        &mut self,
        r: &mut Reader<'_>,
        key: &'static str,
        mut read: impl FnMut(&mut Reader<'_>, &Spanned<DeValue<'i>>, &str) -> Option<V>,
    ) -> SpMap<V> {
        let Some(mut t) = self.table(r, key) else {
            return SpMap::default();
        };
        t.map_entries(r, &mut read)
    }

    /// Reads every entry of this table as a user-chosen key.
    pub fn map_entries<V>(
        &mut self,
        r: &mut Reader<'_>,
        mut read: impl FnMut(&mut Reader<'_>, &Spanned<DeValue<'i>>, &str) -> Option<V>,
    ) -> SpMap<V> {
        let mut out = SpMap::default();
        for (k, v) in self.table.iter() {
            let name = k.get_ref().to_string();
            if let Some(value) = read(r, v, &self.child_path(&name)) {
                out.entries.push((Sp::new(name, k.span().into()), value));
            }
        }
        self.accept_all();
        out
    }

    /// Marks every key of this table as known (its keys are user-chosen ids).
    pub fn accept_all(&mut self) {
        self.known.clear();
        self.known.push("*");
    }

    /// Every key of this table with its spans.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>)> {
        self.table.iter()
    }

    /// Reports keys that no accessor asked for, as warnings with a suggestion.
    pub fn finish(self, r: &mut Reader<'_>) {
        if self.known.contains(&"*") {
            return;
        }
        for (k, _) in self.table.iter() {
            let key = k.get_ref();
            if self.known.iter().any(|known| *known == key.as_ref()) {
                continue;
            }
            let full = self.child_path(key);
            let mut d = Diagnostic::warning(Code::UnknownKey, format!("unknown key `{full}`")).at(
                r.src,
                k.span().into(),
                "not part of the format; ignored",
            );
            d = match closest(key, &self.known) {
                Some(best) => d.suggest(&format!("`{best}`"), best),
                None => {
                    let mut known: Vec<&str> = Vec::new();
                    for k in &self.known {
                        if !known.contains(k) {
                            known.push(k);
                        }
                    }
                    d.help(format!("known keys here: {}", known.join(", ")))
                }
            };
            r.push(d);
        }
    }
}

/// `key` as TOML writes it: bare when it can be, else quoted (`"http.route"`).
pub fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        toml::Value::String(key.to_owned()).to_string()
    }
}

/// Reads a word from a fixed set out of a value.
pub fn keyword_value<K: Keyword>(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<K>> {
    let word: String = FromToml::from_toml(r, v, path)?;
    if let Some(k) = K::from_word(&word) {
        return Some(Sp::new(k, v.span().into()));
    }
    let words: Vec<&str> = K::WORDS.iter().map(|(w, _)| *w).collect();
    let mut d = Diagnostic::error(Code::BadEnum, format!("`{path}` cannot be \"{word}\"")).at(
        r.src,
        v.span().into(),
        format!("expected one of {}", K::word_list()),
    );
    if let Some(best) = closest(&word, &words) {
        let quoted = format!("\"{best}\"");
        d = d.suggest(&quoted, quoted.clone());
    }
    r.push(d);
    None
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a
/// typo; else the shortest one that `word` is a whole part of (`flask` for
/// `flask-app`, `app` for `web_app`), as a name shortened by habit.
pub fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    let typo = candidates
        .iter()
        .filter(|c| **c != "*")
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    typo.or_else(|| {
        candidates
            .iter()
            .filter(|c| !lower.is_empty() && has_part(&c.to_ascii_lowercase(), &lower))
            .min_by_key(|c| (c.len(), **c))
            .copied()
    })
}

/// Whether `part` is one or more whole `-`, `_` or `.`-separated parts of `name`.
fn has_part(name: &str, part: &str) -> bool {
    let sep = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '_' | '.'));
    name.match_indices(part).any(|(i, _)| {
        sep(name[..i].chars().next_back()) && sep(name[i + part.len()..].chars().next())
    }) && name != part
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// A TOML value as JSON (a template value): a datetime as its text, a float that
/// JSON cannot hold as null.
pub fn toml_to_value(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_value).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_but_not_unrelated_words() {
        assert_eq!(closest("servce", &["service", "scenario"]), Some("service"));
        assert_eq!(closest("imgae", &["image", "args"]), Some("image"));
        assert_eq!(closest("zzzzzz", &["image", "args"]), None);
        assert_eq!(
            closest("flask", &["nginx", "flask-app", "db"]),
            Some("flask-app")
        );
        assert_eq!(closest("app", &["web_app", "apple"]), Some("web_app"));
        assert_eq!(closest("las", &["flask-app"]), None, "whole parts only");
    }

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
