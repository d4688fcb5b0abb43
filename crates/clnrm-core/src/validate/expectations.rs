//! Rules on the `[expect]` tables of a file and of each scenario: log expectations
//! name a service and one of `contains`/`regex`; allowed hosts parse; duration and
//! count bounds can be met; ordering constraints have no cycle and agree with windows.

use super::ctx::{Ctx, bounds_error, check_reference, service_ids};
use super::cycles::first_cycle_edge;
use crate::diag::Code;
use crate::model::{
    Count, Expect, Pair, Predicate, Predicates, Selector, Sp, SpanExpect, TestFile,
};
use std::collections::HashSet;

pub(super) fn check_expectations(file: &TestFile, cx: &mut Ctx<'_>) {
    let defined = service_ids(file);
    for e in std::iter::once(&file.expect).chain(file.scenarios.iter().map(|s| &s.expect)) {
        check_expect(e, cx);
        for l in &e.logs {
            check_reference(cx, &l.service, &defined, "[[expect.log]]");
            if l.contains.is_some() == l.regex.is_some() {
                cx.error(
                    Code::BadValue,
                    l.span,
                    "[[expect.log]] needs exactly one of `contains` and `regex`".into(),
                    if l.contains.is_some() {
                        "both given"
                    } else {
                        "neither given"
                    },
                );
            }
        }
    }
}

fn check_expect(e: &Expect, cx: &mut Ctx<'_>) {
    for s in &e.spans {
        check_span_expect(cx, s);
    }
    for host in e.hermeticity.iter().flat_map(|h| &h.allow_hosts) {
        if let Err(why) = crate::model::HostPattern::parse(&host.value) {
            cx.error(
                Code::BadValue,
                host.span,
                format!("allow_hosts: {why}"),
                "not a host, address or range",
            )
            .help = Some(
                "write a host name (\"orders.example\"), an address (\"10.1.2.3\") or a CIDR range (\"10.0.0.0/8\")".into(),
            );
        }
    }
    if let Some(counts) = &e.counts {
        let named = [
            &counts.spans_total,
            &counts.events_total,
            &counts.errors_total,
        ];
        for c in named.into_iter().flatten() {
            check_count(cx, c);
        }
        for (_, c) in counts.by_name.iter() {
            check_count(cx, &c.count);
            check_selector(cx, &c.select);
        }
    }
    for p in &e.per_span {
        check_selector(cx, &p.of);
        check_selector(cx, &p.descendants);
        not_empty(cx, &p.of, "of");
        not_empty(cx, &p.descendants, "descendants");
        check_count(cx, &p.count);
    }
    let resource = e
        .hermeticity
        .iter()
        .flat_map(|h| &h.resource_attrs)
        .flat_map(|r| r.must_match.iter());
    for (_, p) in resource {
        check_predicates(cx, p);
    }
    let pairs = e
        .graph
        .iter()
        .flat_map(|g| g.must_include.iter().chain(&g.must_not_cross))
        .chain(
            e.order
                .iter()
                .flat_map(|o| o.must_precede.iter().chain(&o.must_follow)),
        );
    for p in pairs {
        check_selector(cx, p.value.a());
        check_selector(cx, p.value.b());
    }
    for w in &e.windows {
        for sel in std::iter::once(&w.outer).chain(&w.contains) {
            check_selector(cx, sel);
        }
    }
    check_order(e, cx);
}

fn check_span_expect(cx: &mut Ctx<'_>, s: &SpanExpect) {
    check_selector(cx, &s.select);
    if let Some(each) = &s.each {
        check_selector(cx, each);
        not_empty(cx, each, "each");
    }
    let absent = s.absent.as_ref().is_some_and(|a| a.value);
    if s.select.is_empty() && s.count.is_none() && !absent && s.each.is_none() {
        // "Some span exists" is no expectation: most likely a key is misspelt.
        cx.error(
            Code::MissingKey,
            s.span,
            "[[expect.span]] selects nothing in particular".into(),
            "no `name`, `kind`, `service`, `attrs`, … here",
        )
        .help = Some("add `name = \"…\"` or another selector key (see the warnings above for a misspelt one)".into());
    }
    if let Some(c) = &s.count {
        check_count(cx, c);
    }
    if let Some(absent) = s.absent.as_ref().filter(|a| a.value) {
        let other = match (&s.count, &s.each) {
            (Some(c), _) => [&c.eq, &c.gte, &c.lte]
                .into_iter()
                .flatten()
                .next()
                .map(|v| (v.span, "`count`")),
            (None, Some(each)) => Some((each.span, "`each`")),
            (None, None) => None,
        };
        if let Some((span, key)) = other {
            let src = cx.src;
            let d = cx.error(
                Code::Conflict,
                absent.span,
                format!("[[expect.span]] says `absent = true` and {key}"),
                "no span may match",
            );
            *d = d
                .clone()
                .also(src, span, format!("{key} is about the spans that match"));
        }
    }
}

/// A selector and every one nested in it: durations are not negative, and no
/// lower bound of a value is above its upper bound.
fn check_selector(cx: &mut Ctx<'_>, sel: &Selector) {
    if let Some(d) = &sel.duration_ms {
        for p in &d.all {
            if let Predicate::Gt(v) | Predicate::Gte(v) | Predicate::Lt(v) | Predicate::Lte(v) =
                p.value
                && v < 0.0
            {
                cx.error(
                    Code::OutOfRange,
                    p.span,
                    "durations cannot be negative".into(),
                    "expected 0 or more",
                );
            }
        }
        check_predicates(cx, d);
    }
    let attrs = sel
        .attrs
        .iter()
        .flat_map(|a| a.all.iter().chain(a.any.iter()));
    let events = sel
        .events
        .iter()
        .flat_map(|e| &e.each)
        .flat_map(|e| e.attrs.iter());
    let links = sel.links.iter().flat_map(|l| l.attrs.iter());
    for (_, p) in attrs.chain(events).chain(links) {
        check_predicates(cx, p);
    }
    for (key, n) in [("parent", &sel.parent), ("ancestor", &sel.ancestor)] {
        if let Some(n) = n {
            check_selector(cx, n);
            not_empty(cx, n, key);
        }
    }
    for to in sel.links.iter().filter_map(|l| l.to.as_ref()) {
        check_selector(cx, to);
        not_empty(cx, to, "to");
    }
}

/// A selector table that says nothing would pick every span: an error (a misspelt
/// key inside it was only a warning).
fn not_empty(cx: &mut Ctx<'_>, sel: &Selector, key: &str) {
    if sel.is_empty() {
        cx.error(
            Code::BadValue,
            sel.span,
            format!("`{key}` selects every span"),
            "an empty selector",
        )
        .help = Some("write a span name, or the criteria (`name`, `kind`, `attrs`, …)".into());
    }
}

/// The greatest lower bound of a value is not above its least upper bound.
fn check_predicates(cx: &mut Ctx<'_>, p: &Predicates) {
    // (value, strict, the key as written, where)
    type Bound<'b> = (f64, bool, &'b str, crate::diag::Span);
    let mut lower: Option<Bound<'_>> = None;
    let mut upper: Option<Bound<'_>> = None;
    for (one, word) in p.all.iter().zip(&p.keys) {
        match one.value {
            // The tightest bound: the greater lower one (strict over not, at a tie).
            Predicate::Gt(v) | Predicate::Gte(v) => {
                let strict = matches!(one.value, Predicate::Gt(_));
                if lower.is_none_or(|(l, s, ..)| v > l || (v == l && strict && !s)) {
                    lower = Some((v, strict, word, one.span));
                }
            }
            Predicate::Lt(v) | Predicate::Lte(v) => {
                let strict = matches!(one.value, Predicate::Lt(_));
                if upper.is_none_or(|(u, s, ..)| v < u || (v == u && strict && !s)) {
                    upper = Some((v, strict, word, one.span));
                }
            }
            _ => {}
        }
    }
    if let (Some((lo, lo_strict, lo_word, lo_span)), Some((hi, hi_strict, hi_word, hi_span))) =
        (lower, upper)
    {
        let strict = lo_strict || hi_strict;
        if lo > hi || (strict && lo == hi) {
            bounds_error(cx, lo_span, hi_span, lo_word, hi_word, &lo, &hi);
        }
    }
}

fn check_count(cx: &mut Ctx<'_>, c: &Count) {
    if c.eq.is_none() && c.gte.is_none() && c.lte.is_none() {
        // An empty count would check nothing: no pass may come of it.
        cx.error(
            Code::BadValue,
            c.span,
            "a count with no bound checks nothing".into(),
            "expected `eq`, `gte` or `lte`",
        )
        .help = Some("write e.g. `count = { lte = 1 }`".into());
    }
    if let (Some(gte), Some(lte)) = (&c.gte, &c.lte)
        && gte.value > lte.value
    {
        bounds_error(cx, gte.span, lte.span, "gte", "lte", &gte.value, &lte.value);
    }
    if let Some(eq) = &c.eq {
        let outside = c
            .gte
            .as_ref()
            .filter(|g| eq.value < g.value)
            .map(|g| (g.span, "gte", g.value))
            .or_else(|| {
                c.lte
                    .as_ref()
                    .filter(|l| eq.value > l.value)
                    .map(|l| (l.span, "lte", l.value))
            });
        if let Some((span, name, v)) = outside {
            let src = cx.src;
            let d = cx.error(
                Code::BadBounds,
                eq.span,
                format!("`eq` ({}) contradicts `{name}` ({v})", eq.value),
                format!("eq = {}", eq.value),
            );
            *d = d.clone().also(src, span, format!("{name} = {v}"));
        }
    }
}

/// `must_precede` and `must_follow` as edges "a ends before b starts", acyclic and
/// consistent with windows (a span inside a window cannot precede or follow its outer span).
fn check_order(e: &Expect, cx: &mut Ctx<'_>) {
    let Some(order) = &e.order else {
        return;
    };
    let node = |sel: &Selector| {
        sel.only_name()
            .map_or_else(|| sel.to_string(), |n| n.as_str().to_owned())
    };
    let edges: Vec<(String, String, &Sp<Pair>)> = order
        .must_precede
        .iter()
        .map(|p| (node(p.a()), node(p.b()), p))
        .chain(
            order
                .must_follow
                .iter()
                .map(|p| (node(p.b()), node(p.a()), p)),
        )
        .collect();
    for (a, b, p) in &edges {
        if a == b {
            cx.error(
                Code::OrderCycle,
                p.span,
                format!("\"{a}\" cannot end before it starts"),
                "a span cannot precede itself",
            );
        }
    }
    let proper: Vec<(&str, &str, &Sp<Pair>)> = edges
        .iter()
        .filter(|(a, b, _)| a != b)
        .map(|(a, b, p)| (a.as_str(), b.as_str(), *p))
        .collect();
    if let Some((a, b, p)) = first_cycle_edge(&proper) {
        cx.error(
            Code::OrderCycle,
            p.span,
            format!("ordering constraints form a cycle through \"{a}\" and \"{b}\""),
            "this constraint closes the cycle",
        )
        .help = Some(
            "no trace can satisfy a cycle of must_precede/must_follow; remove one constraint"
                .into(),
        );
    }
    for w in &e.windows {
        let inside: HashSet<String> = w.contains.iter().map(node).collect();
        let outer = node(&w.outer);
        for (a, b, p) in &edges {
            let contradicts =
                (*a == outer && inside.contains(b)) || (*b == outer && inside.contains(a));
            if contradicts {
                let src = cx.src;
                let d = cx.error(
                    Code::OrderContradictsWindow,
                    p.span,
                    format!("ordering [\"{a}\" before \"{b}\"] contradicts a window"),
                    "this constraint",
                );
                *d = d.clone().also(src, w.outer.span, format!("{} contains the other span", w.outer))
                    .help("a span inside a window overlaps its outer span, so neither can end before the other starts");
            }
        }
    }
}
