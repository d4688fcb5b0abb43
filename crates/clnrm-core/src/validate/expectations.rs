//! Rules on the `[expect]` tables of a file and of each scenario: log expectations
//! name a service and one of `contains`/`regex`; allowed hosts parse; duration and
//! count bounds can be met; ordering constraints have no cycle and agree with windows.

use super::ctx::{Ctx, bounds_error, check_reference, service_ids};
use super::cycles::first_cycle_edge;
use crate::diag::Code;
use crate::model::{Count, Expect, Pair, Sp, SpanExpect, TestFile};
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
            check_count(cx, c);
        }
    }
    check_order(e, cx);
}

fn check_span_expect(cx: &mut Ctx<'_>, s: &SpanExpect) {
    if let Some(b) = &s.duration_ms {
        for v in [&b.min, &b.max].into_iter().flatten() {
            if v.value < 0.0 {
                cx.error(
                    Code::OutOfRange,
                    v.span,
                    "durations cannot be negative".into(),
                    "expected 0 or more",
                );
            }
        }
        if let (Some(min), Some(max)) = (&b.min, &b.max)
            && min.value > max.value
        {
            bounds_error(cx, min.span, max.span, "min", "max", &min.value, &max.value);
        }
    }
}

fn check_count(cx: &mut Ctx<'_>, c: &Count) {
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
    let edges: Vec<(&str, &str, &Sp<Pair>)> = order
        .must_precede
        .iter()
        .map(|p| (p.a().as_str(), p.b().as_str(), p))
        .chain(
            order
                .must_follow
                .iter()
                .map(|p| (p.b().as_str(), p.a().as_str(), p)),
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
    let proper: Vec<_> = edges.iter().filter(|(a, b, _)| a != b).cloned().collect();
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
        let inside: HashSet<&str> = w.contains.iter().map(|c| c.as_str()).collect();
        for (a, b, p) in &edges {
            let contradicts = (*a == w.outer.as_str() && inside.contains(b))
                || (*b == w.outer.as_str() && inside.contains(a));
            if contradicts {
                let src = cx.src;
                let d = cx.error(
                    Code::OrderContradictsWindow,
                    p.span,
                    format!("ordering [\"{a}\" before \"{b}\"] contradicts a window"),
                    "this constraint",
                );
                *d = d.clone().also(src, w.outer.span, format!("\"{}\" contains the other span", w.outer.value))
                    .help("a span inside a window overlaps its outer span, so neither can end before the other starts");
            }
        }
    }
}
