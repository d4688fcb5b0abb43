//! Reading the `[expect]` tables, of a file or a scenario: span, graph, counts,
//! window, order, status, hermeticity and log expectations.

use crate::diag::{Code, Span};
use crate::model::reader::{FromToml, Reader, Table, keyword_value};
use crate::model::{
    AttrsExpect, Bounds, Count, CountsExpect, EventsExpect, Expect, GraphExpect, HermeticityExpect,
    LogExpect, NamePattern, OrderExpect, Pair, ResourceAttrs, Scalar, Sp, SpMap, SpanAttrs,
    SpanExpect, StatusCode, StatusExpect, WindowExpect,
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
            let outer = w.req(r, "outer", "\"span-name\"");
            let contains = w.req(r, "contains", "[\"child\"]");
            let span = w.anchor();
            w.finish(r);
            Some(WindowExpect {
                outer: outer?,
                contains: contains?,
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
                        Some(read_count(r, Table::new(inner, v.span().into(), p)))
                    }
                    _ => {
                        r.error(
                            Code::WrongType,
                            v.span().into(),
                            format!("`{p}` must be a table"),
                            "expected { eq, gte, lte }",
                        );
                        None
                    }
                });
                pattern_keys(map)
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
                must_match: ra.map(r, "must_match", FromToml::from_toml),
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
        order,
        status,
        hermeticity,
        logs,
    }
}

fn read_count(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Count {
    let c = Count {
        eq: t.get(r, "eq"),
        gte: t.get(r, "gte"),
        lte: t.get(r, "lte"),
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
    let Some(list): Option<Vec<Sp<Vec<Sp<NamePattern>>>>> = t.get(r, key) else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|item| match <[Sp<NamePattern>; 2]>::try_from(item.value) {
            Ok(pair) => Some(Sp::new(Pair(pair), item.span)),
            Err(v) => {
                r.error(
                    Code::BadValue,
                    item.span,
                    format!("`{}.{key}` entries must be pairs of span names", t.path()),
                    format!("expected [\"a\", \"b\"], found {} names", v.len()),
                );
                None
            }
        })
        .collect()
}

fn read_span_expect(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<SpanExpect> {
    let name = t.req(r, "name", "\"span-name\"");
    let attrs = t.table(r, "attrs").map(|mut a| {
        let all = a.map(r, "all", FromToml::from_toml);
        let any = match a.entry("any") {
            Some((_, v)) => read_attrs_any(r, v, &format!("{}.any", a.path())),
            None => SpMap::default(),
        };
        a.finish(r);
        AttrsExpect { all, any }
    });
    let events = t.table(r, "events").map(|mut e| {
        let out = EventsExpect {
            all: e.get(r, "all").unwrap_or_default(),
            any: e.get(r, "any").unwrap_or_default(),
        };
        e.finish(r);
        out
    });
    let duration_ms = t.table(r, "duration_ms").map(|mut d| {
        let out = Bounds {
            min: d.get(r, "min"),
            max: d.get(r, "max"),
        };
        d.finish(r);
        out
    });
    let out = SpanExpect {
        name: name?,
        parent: t.get(r, "parent"),
        kind: t.keyword(r, "kind"),
        attrs,
        events,
        duration_ms,
        span: t.anchor(),
    };
    t.finish(r);
    Some(out)
}

/// `attrs.any` is a table, or a list of `"k=v"` strings.
fn read_attrs_any(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> SpMap<Sp<Scalar>> {
    match v.get_ref() {
        DeValue::Table(inner) => {
            Table::new(inner, v.span().into(), path).map_entries(r, FromToml::from_toml)
        }
        DeValue::Array(_) => {
            let items: Vec<Sp<String>> = FromToml::from_toml(r, v, path).unwrap_or_default();
            let mut out = SpMap::default();
            for item in items {
                match item.value.split_once('=') {
                    Some((k, val)) if !k.trim().is_empty() => out.entries.push((
                        Sp::new(k.trim().to_owned(), item.span),
                        Sp::new(Scalar::String(val.trim().to_owned()), item.span),
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
        _ => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a table or a list of \"k=v\""),
                "expected a table",
            );
            SpMap::default()
        }
    }
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
