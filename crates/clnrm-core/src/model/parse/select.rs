//! Reading span selectors and predicates (SPEC §15). Predicate tables are checked
//! strictly: an unknown predicate is an error with the closest one (a typo there would
//! otherwise weaken an assertion in silence), `gt` and its kin take numbers, `regex`
//! compiles, `in` is a non-empty list.

use crate::diag::{Code, Diagnostic, Span};
use crate::model::reader::{FromToml, Reader, Table, closest, keyword_value, type_name};
use crate::model::{
    AttrsExpect, EventExpect, EventsExpect, LinkExpect, NamePattern, PREDICATE_WORDS, Pattern,
    Predicate, Predicates, Scalar, Selector, Sp, SpMap,
};
use toml::Spanned;
use toml::de::DeValue;

/// How deep selectors may nest (`parent = { parent = { … } }`): deeper is refused, so
/// that a hostile file cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

/// A selector where one is taken: a name glob, or a table.
pub(super) fn read_selector(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Selector> {
    read_nested(r, v, path, 0)
}

fn read_nested(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    depth: usize,
) -> Option<Selector> {
    match v.get_ref() {
        DeValue::String(_) => NamePattern::from_toml(r, v, path)
            .map(|name| Selector::named(Sp::new(name, v.span().into()))),
        DeValue::Table(inner) if depth < MAX_DEPTH => {
            let mut t = Table::new(inner, v.span().into(), path);
            let mut sel = read_keys(r, &mut t, depth + 1);
            sel.span = v.span().into();
            t.finish(r);
            Some(sel)
        }
        DeValue::Table(_) => {
            r.error(
                Code::BadValue,
                v.span().into(),
                format!("`{path}` nests selectors more than {MAX_DEPTH} deep"),
                "too deep",
            );
            None
        }
        other => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!(
                    "`{path}` must be a span name or a selector table, found {}",
                    type_name(other)
                ),
                "expected \"name\" or { name = \"…\", kind = \"server\" }",
            );
            None
        }
    }
}

/// The selector keys of `t` (where they sit beside other keys, as in
/// `[[expect.span]]`); the caller finishes the table.
pub(super) fn read_selector_keys(r: &mut Reader<'_>, t: &mut Table<'_, '_>) -> Selector {
    let mut sel = read_keys(r, t, 1);
    sel.span = t.anchor();
    sel
}

fn read_keys(r: &mut Reader<'_>, t: &mut Table<'_, '_>, depth: usize) -> Selector {
    let path = t.path().to_owned();
    let sub = |key: &str| format!("{path}.{key}");
    let nested = |r: &mut Reader<'_>, t: &mut Table<'_, '_>, key: &'static str| {
        let (_, v) = t.entry(key)?;
        read_nested(r, v, &sub(key), depth).map(Box::new)
    };
    let parent = nested(r, t, "parent");
    let ancestor = nested(r, t, "ancestor");
    let attrs = t
        .entry("attrs")
        .and_then(|(_, v)| read_attrs(r, v, &sub("attrs")));
    let duration_ms = t
        .entry("duration_ms")
        .and_then(|(_, v)| read_duration(r, v, &sub("duration_ms")));
    let events = t
        .entry("events")
        .and_then(|(_, v)| read_events(r, v, &sub("events")));
    let links = match t.entry("links") {
        Some((_, v)) => read_links(r, v, &sub("links"), depth),
        None => Vec::new(),
    };
    Selector {
        name: t.get(r, "name"),
        kind: t.keyword(r, "kind"),
        service: t.get(r, "service"),
        status: t
            .entry("status")
            .and_then(|(_, v)| keyword_value(r, v, &sub("status"))),
        attrs,
        duration_ms,
        events,
        links,
        parent,
        ancestor,
        span: t.anchor(),
    }
}

/// `attrs`: `{ all = {..}, any = {..} }` (`any` may be a list of `"k=v"`), or the
/// attribute keys directly. The structured form is recognised by its keys being only
/// `all` and `any`, each a table (or, for `any`, a list).
pub(super) fn read_attrs(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<AttrsExpect> {
    let DeValue::Table(inner) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a table of attribute predicates"),
            "expected { \"http.route\" = \"/orders\" } or { all = {..}, any = {..} }",
        );
        return None;
    };
    let structural = |k: &str, v: &DeValue<'_>| {
        matches!(
            (k, v),
            ("all", DeValue::Table(_)) | ("any", DeValue::Table(_) | DeValue::Array(_))
        )
    };
    let marked = inner
        .iter()
        .filter(|(k, v)| structural(k.get_ref(), v.get_ref()))
        .count();
    if marked > 0 && marked < inner.len() {
        r.push(
            Diagnostic::error(
                Code::Conflict,
                format!("`{path}` mixes `all`/`any` with attribute keys"),
            )
            .at(r.src, v.span().into(), "two forms in one table")
            .help("write the attributes directly (each must hold), or all of them under `all` and `any`"),
        );
        return None;
    }
    if marked == 0 {
        return Some(AttrsExpect {
            all: read_predicate_map(r, v, path),
            any: SpMap::default(),
        });
    }
    let mut t = Table::new(inner, v.span().into(), path);
    let all = match t.entry("all") {
        Some((_, v)) => read_predicate_map(r, v, &format!("{path}.all")),
        None => SpMap::default(),
    };
    let any = match t.entry("any") {
        Some((_, v)) => read_attrs_any(r, v, &format!("{path}.any")),
        None => SpMap::default(),
    };
    t.finish(r);
    Some(AttrsExpect { all, any })
}

/// A table of attribute keys, each with its predicates.
pub(super) fn read_predicate_map(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> SpMap<Predicates> {
    let DeValue::Table(inner) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a table of attribute predicates"),
            "expected { \"key\" = value }",
        );
        return SpMap::default();
    };
    Table::new(inner, v.span().into(), path).map_entries(r, read_predicates)
}

/// `any` as a list of `"k=v"` strings (equality), or a table.
fn read_attrs_any(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> SpMap<Predicates> {
    let DeValue::Array(_) = v.get_ref() else {
        return read_predicate_map(r, v, path);
    };
    let items: Vec<Sp<String>> = FromToml::from_toml(r, v, path).unwrap_or_default();
    let mut out = SpMap::default();
    for item in items {
        match item.value.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => out.entries.push((
                Sp::new(k.trim().to_owned(), item.span),
                Predicates {
                    all: vec![Sp::new(
                        Predicate::Eq(Scalar::String(val.trim().to_owned())),
                        item.span,
                    )],
                    keys: vec!["eq"],
                    span: item.span,
                },
            )),
            _ => r.error(
                Code::BadValue,
                item.span,
                format!("`{path}` entries must look like \"key=value\""),
                "no `=` here",
            ),
        }
    }
    out
}

/// One value's predicates: a plain value (equality) or a table of predicates.
pub(super) fn read_predicates(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Predicates> {
    let span: Span = v.span().into();
    let inner = match v.get_ref() {
        DeValue::Table(inner) => inner,
        DeValue::Array(_) => {
            r.push(
                Diagnostic::error(
                    Code::WrongType,
                    format!("`{path}` must be a value or a table of predicates, found an array"),
                )
                .at(r.src, span, "a list is not one value")
                .help("for one of several values write `{ in = [..] }`; for a list attribute holding a value, `{ contains = .. }`"),
            );
            return None;
        }
        _ => {
            let value = Scalar::from_toml(r, v, path)?;
            return Some(Predicates {
                all: vec![Sp::new(Predicate::Eq(value), span)],
                keys: vec!["eq"],
                span,
            });
        }
    };
    if inner.is_empty() {
        r.error(
            Code::BadValue,
            span,
            format!("`{path}` has no predicate"),
            format!("expected one of {}", PREDICATE_WORDS.join(", ")),
        );
        return None;
    }
    let mut all = Vec::new();
    let mut keys = Vec::new();
    for (k, item) in inner.iter() {
        let key = k.get_ref().as_ref();
        let at = format!("{path}.{key}");
        let item_span: Span = item.span().into();
        let number = |r: &mut Reader<'_>| number_value(r, item, &at, key);
        let predicate = match key {
            "eq" => Scalar::from_toml(r, item, &at).map(Predicate::Eq),
            "ne" => Scalar::from_toml(r, item, &at).map(Predicate::Ne),
            "exists" => bool::from_toml(r, item, &at).map(Predicate::Exists),
            "gt" => number(r).map(Predicate::Gt),
            "gte" => number(r).map(Predicate::Gte),
            "lt" => number(r).map(Predicate::Lt),
            "lte" => number(r).map(Predicate::Lte),
            "regex" => Pattern::from_toml(r, item, &at).map(Predicate::Regex),
            "contains" => Scalar::from_toml(r, item, &at).map(Predicate::Contains),
            "in" => match Vec::<Scalar>::from_toml(r, item, &at) {
                Some(list) if list.is_empty() => {
                    r.error(
                        Code::BadValue,
                        item_span,
                        format!("`{at}` lists no value"),
                        "expected at least one",
                    );
                    None
                }
                other => other.map(Predicate::In),
            },
            unknown => {
                let mut d = Diagnostic::error(
                    Code::BadValue,
                    format!("unknown predicate `{unknown}` in `{path}`"),
                )
                .at(
                    r.src,
                    k.span().into(),
                    format!("expected one of {}", PREDICATE_WORDS.join(", ")),
                );
                d = match closest(unknown, PREDICATE_WORDS) {
                    Some(best) => d.suggest(&format!("`{best}`"), best),
                    None => d.help(format!("known keys here: {}", PREDICATE_WORDS.join(", "))),
                };
                r.push(d);
                None
            }
        };
        if let Some(p) = predicate {
            all.push(Sp::new(p, item_span));
            keys.extend(PREDICATE_WORDS.iter().find(|w| **w == key));
        }
    }
    if all.len() > 1
        && all
            .iter()
            .any(|p| matches!(p.value, Predicate::Exists(false)))
    {
        r.error(
            Code::Conflict,
            span,
            format!("`{path}` says `exists = false` beside other predicates"),
            "an attribute that is not set has no value to compare",
        );
    }
    Some(Predicates { all, keys, span })
}

/// A number for `gt` and its kin; a string literal is refused with the number it may
/// have meant.
fn number_value(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    key: &str,
) -> Option<f64> {
    match v.get_ref() {
        DeValue::Integer(_) => i64::from_toml(r, v, path).map(|i| i as f64),
        DeValue::Float(_) => {
            let n = f64::from_toml(r, v, path)?;
            if n.is_finite() {
                return Some(n);
            }
            r.error(
                Code::BadValue,
                v.span().into(),
                format!("`{path}` is not a finite number"),
                "no value compares with it",
            );
            None
        }
        DeValue::String(s) => {
            let mut d = Diagnostic::error(
                Code::WrongType,
                format!("`{key}` compares numbers; `{path}` is the string \"{s}\""),
            )
            .at(r.src, v.span().into(), "a string here");
            d = match s.trim().parse::<f64>() {
                Ok(_) => d.suggest(s.trim(), s.trim().to_owned()),
                Err(_) => d.help("for text, use `eq`, `contains`, `regex` or `in`"),
            };
            r.push(d);
            None
        }
        other => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a number, found {}", type_name(other)),
                "expected a number",
            );
            None
        }
    }
}

/// `duration_ms`: `{ min, max, gt, gte, lt, lte }` in milliseconds.
fn read_duration(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Predicates> {
    let DeValue::Table(inner) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a table"),
            "expected { lt = 100 } or { min = 1, max = 100 }",
        );
        return None;
    };
    const WORDS: &[&str] = &["min", "max", "gt", "gte", "lt", "lte"];
    if inner.is_empty() {
        r.error(
            Code::BadValue,
            v.span().into(),
            format!("`{path}` has no bound"),
            "expected e.g. { lt = 100 }",
        );
        return None;
    }
    let mut all = Vec::new();
    let mut keys = Vec::new();
    for (k, item) in inner.iter() {
        let key = k.get_ref().as_ref();
        let at = format!("{path}.{key}");
        let Some(word) = WORDS.iter().find(|w| **w == key) else {
            let mut d =
                Diagnostic::error(Code::BadValue, format!("unknown bound `{key}` in `{path}`")).at(
                    r.src,
                    k.span().into(),
                    format!("expected one of {}", WORDS.join(", ")),
                );
            d = match closest(key, WORDS) {
                Some(best) => d.suggest(&format!("`{best}`"), best),
                None => d.help(format!("known keys here: {}", WORDS.join(", "))),
            };
            r.push(d);
            continue;
        };
        let Some(n) = number_value(r, item, &at, key) else {
            continue;
        };
        let p = match *word {
            "min" | "gte" => Predicate::Gte(n),
            "max" | "lte" => Predicate::Lte(n),
            "gt" => Predicate::Gt(n),
            _ => Predicate::Lt(n),
        };
        all.push(Sp::new(p, item.span().into()));
        keys.push(*word);
    }
    Some(Predicates {
        all,
        keys,
        span: v.span().into(),
    })
}

/// `events`: `{ all = [names], any = [names] }`, or a list of `{ name, attrs, absent }`.
fn read_events(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<EventsExpect> {
    match v.get_ref() {
        DeValue::Table(inner) => {
            let mut e = Table::new(inner, v.span().into(), path);
            let out = EventsExpect {
                all: e.get(r, "all").unwrap_or_default(),
                any: e.get(r, "any").unwrap_or_default(),
                each: Vec::new(),
            };
            e.finish(r);
            Some(out)
        }
        DeValue::Array(items) => {
            let each = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let at = format!("{path}[{i}]");
                    let mut t = entry_table(r, item, &at, "{ name = \"exception\" }")?;
                    let name = t.req(r, "name", "\"exception\"");
                    let attrs = match t.entry("attrs") {
                        Some((_, v)) => read_predicate_map(r, v, &format!("{at}.attrs")),
                        None => SpMap::default(),
                    };
                    let absent = t.get(r, "absent");
                    t.finish(r);
                    Some(EventExpect {
                        name: name?,
                        attrs,
                        absent,
                        span: item.span().into(),
                    })
                })
                .collect();
            Some(EventsExpect {
                each,
                ..EventsExpect::default()
            })
        }
        other => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a table or a list, found {}", type_name(other)),
                "expected [{ name = \"exception\", attrs = { \"exception.type\" = \"ValueError\" } }]",
            );
            None
        }
    }
}

/// `links`: a list of `{ to = <selector>, attrs, absent }`.
fn read_links(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
    depth: usize,
) -> Vec<LinkExpect> {
    let DeValue::Array(items) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a list, found {}", type_name(v.get_ref())),
            "expected [{ to = \"produce\" }]",
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let at = format!("{path}[{i}]");
            let mut t = entry_table(r, item, &at, "{ to = \"produce\" }")?;
            let to = t
                .entry("to")
                .and_then(|(_, v)| read_nested(r, v, &format!("{at}.to"), depth))
                .map(Box::new);
            let attrs = match t.entry("attrs") {
                Some((_, v)) => read_predicate_map(r, v, &format!("{at}.attrs")),
                None => SpMap::default(),
            };
            let absent = t.get(r, "absent");
            t.finish(r);
            Some(LinkExpect {
                to,
                attrs,
                absent,
                span: item.span().into(),
            })
        })
        .collect()
}

fn entry_table<'a, 'i>(
    r: &mut Reader<'_>,
    item: &'a Spanned<DeValue<'i>>,
    path: &str,
    example: &str,
) -> Option<Table<'a, 'i>> {
    match item.get_ref() {
        DeValue::Table(inner) => Some(Table::new(inner, item.span().into(), path)),
        other => {
            r.error(
                Code::WrongType,
                item.span().into(),
                format!("`{path}` must be a table, found {}", type_name(other)),
                format!("expected {example}"),
            );
            None
        }
    }
}
