//! Reading the `[expect]` tables, of a file or a scenario: span, graph, counts,
//! window, order, status, hermeticity and log expectations.

use super::select::{read_predicate_map, read_selector, read_selector_keys};
use crate::diag::{Code, Span};
use crate::model::reader::{Reader, Table, keyword_value};
use crate::model::{
    Count, CountsExpect, Expect, GraphExpect, HermeticityExpect, LogExpect, NameCount, NamePattern,
    OrderExpect, Pair, PerSpanExpect, ResourceAttrs, Selector, Sp, SpMap, SpanAttrs, SpanExpect,
    StatusCode, StatusExpect, WindowExpect,
};
use toml::Spanned;
use toml::de::DeValue;

pub(super) fn read_expect(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Expect {
    let logs = t
        .tables(r, "log")
        .into_iter()
        .filter_map(|mut l| {
            let service = l.req(r, "service", "\"app\"");
            let out = LogExpect {
                service: service?,
                contains: l.get(r, "contains"),
                regex: l.get(r, "regex"),
                absent: l.get(r, "absent"),
                span: l.anchor(),
            };
            l.finish(r);
            Some(out)
        })
        .collect();
    let spans = t
        .tables(r, "span")
        .into_iter()
        .filter_map(|s| read_span_expect(r, s))
        .collect();
    let windows = t
        .tables(r, "window")
        .into_iter()
        .filter_map(|mut w| {
            let outer = required_selector(r, &mut w, "outer", "\"span-name\"");
            let contains = match w.entry("contains") {
                Some((_, v)) => selector_list(r, v, &format!("{}.contains", w.path())),
                None => {
                    w.req::<String>(r, "contains", "[\"child\"]");
                    None
                }
            };
            let span = w.anchor();
            w.finish(r);
            Some(WindowExpect {
                outer: outer?,
                contains: contains?,
                span,
            })
        })
        .collect();
    let per_span = t
        .tables(r, "per_span")
        .into_iter()
        .filter_map(|mut p| {
            let of = required_selector(r, &mut p, "of", "{ kind = \"server\" }");
            let descendants =
                required_selector(r, &mut p, "descendants", "{ name = \"SELECT *\" }");
            let count = match p.table(r, "count") {
                Some(c) => Some(read_count(r, c)),
                None => {
                    p.req::<String>(r, "count", "{ lte = 1 }");
                    None
                }
            };
            let span = p.anchor();
            p.finish(r);
            Some(PerSpanExpect {
                of: of?,
                descendants: descendants?,
                count: count?,
                span,
            })
        })
        .collect();
    let graph = t.table(r, "graph").map(|mut g| {
        let out = GraphExpect {
            must_include: pairs(r, &mut g, "must_include"),
            must_not_cross: pairs(r, &mut g, "must_not_cross"),
            acyclic: g.get(r, "acyclic"),
        };
        g.finish(r);
        out
    });
    let counts = t.table(r, "counts").map(|mut c| {
        let out = CountsExpect {
            spans_total: c.table(r, "spans_total").map(|t| read_count(r, t)),
            events_total: c.table(r, "events_total").map(|t| read_count(r, t)),
            errors_total: c.table(r, "errors_total").map(|t| read_count(r, t)),
            by_name: {
                let map = c.map(r, "by_name", |r, v, p| match v.get_ref() {
                    DeValue::Table(inner) => {
                        read_name_count(r, Table::new(inner, v.span().into(), p))
                    }
                    _ => {
                        r.error(
                            Code::WrongType,
                            v.span().into(),
                            format!("`{p}` must be a table"),
                            "expected { eq, gte, lte } (and selector keys: kind, service, attrs, …)",
                        );
                        None
                    }
                });
                let mut map = pattern_keys(map);
                // The key is the selector's name.
                for (k, v) in map.entries.iter_mut() {
                    v.select.name = Some(k.clone());
                }
                map
            },
        };
        c.finish(r);
        out
    });
    let order = t.table(r, "order").map(|mut o| {
        let out = OrderExpect {
            must_precede: pairs(r, &mut o, "must_precede"),
            must_follow: pairs(r, &mut o, "must_follow"),
        };
        o.finish(r);
        out
    });
    let status = t.table(r, "status").map(|mut s| {
        let out = StatusExpect {
            all: {
                let path = format!("{}.all", s.path());
                s.entry("all").and_then(|(_, v)| read_statuses(r, v, &path))
            },
            by_name: {
                let map = s.map(r, "by_name", keyword_value);
                pattern_keys(map)
            },
        };
        s.finish(r);
        out
    });
    let hermeticity = t.table(r, "hermeticity").map(|mut h| {
        let resource_attrs = h.table(r, "resource_attrs").map(|mut ra| {
            let out = ResourceAttrs {
                must_match: match ra.entry("must_match") {
                    Some((_, v)) => read_predicate_map(r, v, &format!("{}.must_match", ra.path())),
                    None => SpMap::default(),
                },
            };
            ra.finish(r);
            out
        });
        let span_attrs = h.table(r, "span_attrs").map(|mut sa| {
            let out = SpanAttrs {
                forbid_keys: sa.get(r, "forbid_keys").unwrap_or_default(),
            };
            sa.finish(r);
            out
        });
        let out = HermeticityExpect {
            no_external_services: h.get(r, "no_external_services"),
            resource_attrs,
            span_attrs,
            allow_hosts: h.get(r, "allow_hosts").unwrap_or_default(),
        };
        h.finish(r);
        out
    });
    t.finish(r);
    Expect {
        spans,
        graph,
        counts,
        windows,
        per_span,
        order,
        status,
        hermeticity,
        logs,
    }
}

/// A `counts.by_name` value: the count's keys and, beside them, a selector's (its
/// name is the entry's key, so `name` is refused here).
fn read_name_count(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<NameCount> {
    if let Some((k, _)) = t.entry("name") {
        r.error(
            Code::Conflict,
            k.span().into(),
            format!(
                "`{}.name`: the key of a `by_name` entry is its name",
                t.path()
            ),
            "remove `name`, or write the name as the entry's key",
        );
    }
    let select = read_selector_keys(r, &mut t);
    let count = Count {
        eq: t.get(r, "eq"),
        gte: t.get(r, "gte"),
        lte: t.get(r, "lte"),
        span: t.anchor(),
    };
    t.finish(r);
    Some(NameCount { count, select })
}

fn read_count(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Count {
    let c = Count {
        eq: t.get(r, "eq"),
        gte: t.get(r, "gte"),
        lte: t.get(r, "lte"),
        span: t.anchor(),
    };
    t.finish(r);
    c
}

/// The map with its keys read as span-name patterns.
fn pattern_keys<V>(map: SpMap<V>) -> SpMap<V, NamePattern> {
    let entries = map
        .entries
        .into_iter()
        .map(|(k, v)| (Sp::new(NamePattern::new(&k.value), k.span), v))
        .collect();
    SpMap { entries }
}

fn pairs(r: &mut Reader<'_>, t: &mut Table<'_, '_>, key: &'static str) -> Vec<Sp<Pair>> {
    let Some((_, v)) = t.entry(key) else {
        return Vec::new();
    };
    let path = format!("{}.{key}", t.path());
    let DeValue::Array(items) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a list of pairs"),
            "expected [[\"a\", \"b\"]]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let span: Span = item.span().into();
        let Some(list) = selector_list(r, item, &at) else {
            continue;
        };
        match <[Selector; 2]>::try_from(list) {
            Ok(pair) => out.push(Sp::new(Pair(pair), span)),
            Err(v) => r.error(
                Code::BadValue,
                span,
                format!("`{path}` entries must be pairs of spans"),
                format!("expected [\"a\", \"b\"], found {} entries", v.len()),
            ),
        }
    }
    out
}

/// A list of selectors (names or tables).
fn selector_list(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Vec<Selector>> {
    let DeValue::Array(items) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be a list of span names or selectors"),
            "expected [\"a\", { name = \"b\" }]",
        );
        return None;
    };
    let read: Vec<Option<Selector>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| read_selector(r, item, &format!("{path}[{i}]")))
        .collect();
    read.into_iter().collect()
}

/// A required selector key.
fn required_selector(
    r: &mut Reader<'_>,
    t: &mut Table<'_, '_>,
    key: &'static str,
    example: &str,
) -> Option<Selector> {
    match t.entry(key) {
        Some((_, v)) => read_selector(r, v, &format!("{}.{key}", t.path())),
        None => {
            t.req::<String>(r, key, example);
            None
        }
    }
}

fn read_span_expect(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<SpanExpect> {
    let select = read_selector_keys(r, &mut t);
    let each = t
        .entry("each")
        .and_then(|(_, v)| read_selector(r, v, &format!("{}.each", t.path())));
    let out = SpanExpect {
        select,
        count: t.table(r, "count").map(|c| read_count(r, c)),
        absent: t.get(r, "absent"),
        each,
        span: t.anchor(),
    };
    t.finish(r);
    Some(out)
}

/// A status, or a non-empty list of statuses.
fn read_statuses(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<Vec<Sp<StatusCode>>>> {
    let span: Span = v.span().into();
    match v.get_ref() {
        DeValue::String(_) => keyword_value(r, v, path).map(|k| Sp::new(vec![k], span)),
        DeValue::Array(items) if items.is_empty() => {
            r.error(
                Code::BadValue,
                span,
                format!("`{path}` lists no status"),
                "expected at least one of \"OK\", \"ERROR\", \"UNSET\"",
            );
            None
        }
        DeValue::Array(items) => {
            let read: Vec<Option<Sp<StatusCode>>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| keyword_value(r, item, &format!("{path}[{i}]")))
                .collect();
            read.into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|all| Sp::new(all, span))
        }
        _ => {
            r.error(
                Code::WrongType,
                span,
                format!("`{path}` must be a status or a list of statuses"),
                "expected \"OK\" or [\"OK\", \"UNSET\"]",
            );
            None
        }
    }
}
