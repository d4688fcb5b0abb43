//! One function per expectation kind; each returns what is unmet.

use super::select::{Matcher, NearMiss, holds_all};
use super::{ExpectKind, ExpectSet, Position, Unmet};
use crate::model::{
    Count, CountsExpect, GraphExpect, HermeticityExpect, OrderExpect, PerSpanExpect, Selector,
    SpanExpect, StatusExpect, WindowExpect,
};
use crate::model::{NamePattern, StatusCode};
use crate::otel::SpanRecord;
use std::collections::{HashMap, HashSet};

fn unmet(kind: ExpectKind, what: String, at: Position, expected: String, found: String) -> Unmet {
    Unmet {
        kind,
        what,
        at,
        expected,
        found,
        matched: None,
        near: Vec::new(),
    }
}

/// Attribute keys that name a network peer outside the system under test.
pub const NETWORK_PEER_KEYS: &[&str] = &[
    "net.peer.name",
    "net.peer.ip",
    "net.sock.peer.addr",
    "network.peer.address",
    "server.address",
    "http.url",
    "http.host",
    "url.full",
    "db.connection_string",
    "peer.service",
];

/// Attributes that, on a SERVER span, give the server's own address.
const SERVER_OWN_KEYS: &[&str] = &["http.host", "server.address"];

/// The host in a peer attribute's value: a URL's host, `host:port`'s host, an
/// address, or a name.
fn peer_host(value: &str) -> &str {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    // Credentials, path, query.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if let Some(inner) = rest.strip_prefix('[') {
        // [v6]:port
        return inner.split(']').next().unwrap_or(inner);
    }
    match rest.rsplit_once(':') {
        // One colon: host:port; more: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => rest,
    }
}

/// Whether `host` is this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn names_seen(spans: &[SpanRecord]) -> String {
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let more = names.len().saturating_sub(12);
    names.truncate(12);
    let mut text = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

fn no_span_named(pattern: &NamePattern, spans: &[SpanRecord]) -> String {
    format!(
        "no span named \"{pattern}\"; spans seen: {}",
        names_seen(spans)
    )
}

fn parent_of<'a>(
    span: &SpanRecord,
    by_id: &HashMap<(&str, &str), &'a SpanRecord>,
) -> Option<&'a SpanRecord> {
    let p = span.parent_span_id.as_deref()?;
    by_id.get(&(span.trace_id.as_str(), p)).copied()
}

fn index(spans: &[SpanRecord]) -> HashMap<(&str, &str), &SpanRecord> {
    spans
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s))
        .collect()
}

/// How many of the closest spans a failure shows.
const NEAREST: usize = 3;

/// How many of the spans that fail `each` a report holds as data.
const MAX_OFFENDERS: usize = 20;

/// The closest spans as text: each with the criteria it failed.
fn near_text(near: &[NearMiss]) -> String {
    let each: Vec<String> = near
        .iter()
        .map(|n| {
            let misses: Vec<String> = n.misses.iter().map(ToString::to_string).collect();
            format!("{}: {}", n.span, misses.join("; "))
        })
        .collect();
    each.join(" | ")
}

/// Why nothing matches `sel`: no span of its name (with the names seen), or the
/// closest spans and what each failed. The closest are also returned, for the
/// report's data.
fn none_found<'s>(m: &mut Matcher<'_, '_, 's>, sel: &'s Selector) -> (String, Vec<NearMiss>) {
    let spans = m.trace.spans;
    if let Some(name) = &sel.name
        && !spans.iter().any(|s| name.value.is_match(&s.name))
    {
        return (no_span_named(&name.value, spans), Vec::new());
    }
    let near = m.nearest(sel, NEAREST);
    let text = format!(
        "none of the {} spans matches; closest: {}",
        spans.len(),
        near_text(&near)
    );
    (text, near)
}

/// Up to five of the spans at `picked`, described.
fn listed(spans: &[SpanRecord], picked: &[usize]) -> String {
    let mut shown: Vec<String> = picked
        .iter()
        .take(5)
        .map(|i| spans[*i].describe())
        .collect();
    if picked.len() > 5 {
        shown.push(format!("and {} more", picked.len() - 5));
    }
    shown.join(", ")
}

/// `[[expect.span]]`: at least one span matches (or `count` of them, or none with
/// `absent`), and each that does meets `each`.
pub fn span<'s>(set: &ExpectSet, e: &'s SpanExpect, m: &mut Matcher<'_, '_, 's>) -> Vec<Unmet> {
    let sel = &e.select;
    let what = match &sel.name {
        Some(n) => format!("[[expect.span]] \"{}\"", n.value),
        None => format!("[[expect.span]] {sel}"),
    };
    let spans = m.trace.spans;
    let picked = m.select(sel);
    let n = picked.len();
    let mut out = Vec::new();
    let mut fail = |expected: String, found: String, near: Vec<NearMiss>, at| {
        out.push(Unmet {
            matched: Some(n),
            near,
            ..unmet(ExpectKind::Span, what.clone(), set.at(at), expected, found)
        });
    };
    if e.absent.as_ref().is_some_and(|a| a.value) {
        if n > 0 {
            fail(
                format!("no span {sel}"),
                format!("{n} matching: {}", listed(spans, &picked)),
                Vec::new(),
                e.span,
            );
        }
    } else if let Some(c) = &e.count {
        if let Some((expected, at)) = count_misses(c, n as u64, "matching spans") {
            let (found, near) = if n == 0 {
                none_found(m, sel)
            } else {
                (format!("{n}: {}", listed(spans, &picked)), Vec::new())
            };
            fail(format!("{sel}: {expected}"), found, near, at);
        }
    } else if n == 0 {
        let (found, near) = none_found(m, sel);
        fail(format!("a span {sel}"), found, near, e.span);
    }
    if let Some(each) = &e.each {
        let offenders: Vec<NearMiss> = picked
            .iter()
            .filter_map(|i| {
                let misses = m.misses(each, *i);
                (!misses.is_empty()).then(|| NearMiss {
                    span: spans[*i].describe(),
                    span_id: spans[*i].span_id.clone(),
                    misses,
                })
            })
            .collect();
        if !offenders.is_empty() {
            let k = offenders.len();
            let shown = &offenders[..k.min(NEAREST)];
            out.push(Unmet {
                matched: Some(n),
                // The first of them as data; `found` says how many.
                near: offenders.iter().take(MAX_OFFENDERS).cloned().collect(),
                ..unmet(
                    ExpectKind::Span,
                    format!("{what} each"),
                    set.at(each.span),
                    format!("every span {sel} to meet {each}"),
                    format!("{k} of {n} do not: {}", near_text(shown)),
                )
            });
        }
    }
    out
}

/// `[[expect.per_span]]`: under each span `of` picks, `count` descendants that
/// `descendants` picks.
pub fn per_span<'s>(
    set: &ExpectSet,
    e: &'s PerSpanExpect,
    m: &mut Matcher<'_, '_, 's>,
) -> Option<Unmet> {
    let what = format!(
        "[[expect.per_span]] of {} descendants {}",
        e.of, e.descendants
    );
    let trace = m.trace;
    let spans = trace.spans;
    let of = m.select(&e.of);
    if of.is_empty() {
        let (found, near) = none_found(m, &e.of);
        return Some(Unmet {
            matched: Some(0),
            near,
            ..unmet(
                ExpectKind::PerSpan,
                what,
                set.at(e.of.span),
                format!("spans {} to check", e.of),
                found,
            )
        });
    }
    let hits = m.hits(&e.descendants);
    let mut offenders = Vec::new();
    for i in &of {
        let under: Vec<usize> = trace
            .descendants(*i)
            .into_iter()
            .filter(|j| hits[*j])
            .collect();
        if count_misses(&e.count, under.len() as u64, "descendants").is_some() {
            offenders.push((*i, under));
        }
    }
    if offenders.is_empty() {
        return None;
    }
    let expected = count_text(&e.count, "descendants");
    let at = [&e.count.eq, &e.count.gte, &e.count.lte]
        .into_iter()
        .flatten()
        .next()
        .map_or(e.span, |b| b.span);
    let shown: Vec<String> = offenders
        .iter()
        .take(5)
        .map(|(i, under)| {
            let s = &spans[*i];
            let mut names: Vec<&str> = under.iter().map(|j| spans[*j].name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            format!(
                "\"{}\" (span {}) has {}{}",
                s.name,
                s.span_id,
                under.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                }
            )
        })
        .collect();
    Some(Unmet {
        matched: Some(of.len()),
        ..unmet(
            ExpectKind::PerSpan,
            what,
            set.at(at),
            format!("under each span {}: {} {expected}", e.of, e.descendants),
            format!(
                "{} of {} spans do not: {}",
                offenders.len(),
                of.len(),
                shown.join("; ")
            ),
        )
    })
}

/// `[expect.graph]`.
pub fn graph<'s>(set: &ExpectSet, g: &'s GraphExpect, m: &mut Matcher<'_, '_, 's>) -> Vec<Unmet> {
    let trace = m.trace;
    let spans = trace.spans;
    let mut out = Vec::new();
    for pair in &g.must_include {
        let (p, c) = (pair.value.a(), pair.value.b());
        let parents = m.hits(p);
        let children = m.select(c);
        let ok = children
            .iter()
            .any(|j| trace.parent(*j).is_some_and(|par| parents[par]));
        if !ok {
            let found = if children.is_empty() {
                none_found(m, c).0
            } else {
                let shown: Vec<String> = children
                    .iter()
                    .take(5)
                    .map(|j| {
                        trace
                            .parent(*j)
                            .map_or("(none)".to_owned(), |x| format!("\"{}\"", spans[x].name))
                    })
                    .collect();
                format!("{c} has parent {}", shown.join(", "))
            };
            out.push(unmet(
                ExpectKind::Graph,
                "[expect.graph] must_include".into(),
                set.at(pair.span),
                format!("an edge {p} → {c}"),
                found,
            ));
        }
    }
    for pair in &g.must_not_cross {
        let (a, b) = (pair.value.a(), pair.value.b());
        let parents = m.hits(a);
        let crossing = m
            .select(b)
            .into_iter()
            .find(|j| trace.parent(*j).is_some_and(|par| parents[par]));
        if let Some(j) = crossing {
            out.push(unmet(
                ExpectKind::Graph,
                "[expect.graph] must_not_cross".into(),
                set.at(pair.span),
                format!("no edge {a} → {b}"),
                format!("{} under {a}", spans[j].describe()),
            ));
        }
    }
    if let Some(acyclic) = &g.acyclic
        && acyclic.value
        && let Some(cycle) = find_cycle(spans, &index(spans))
    {
        out.push(unmet(
            ExpectKind::Graph,
            "[expect.graph] acyclic".into(),
            set.at(acyclic.span),
            "parent links without a cycle".into(),
            format!("a cycle through {}", cycle.join(" → ")),
        ));
    }
    out
}

fn find_cycle(
    spans: &[SpanRecord],
    by_id: &HashMap<(&str, &str), &SpanRecord>,
) -> Option<Vec<String>> {
    let mut done: HashSet<(&str, &str)> = HashSet::new();
    for start in spans {
        let mut path: Vec<&SpanRecord> = Vec::new();
        let mut on_path: HashSet<(&str, &str)> = HashSet::new();
        let mut cur = Some(start);
        while let Some(s) = cur {
            let key = (s.trace_id.as_str(), s.span_id.as_str());
            if done.contains(&key) {
                break;
            }
            if !on_path.insert(key) {
                let from = path
                    .iter()
                    .position(|p| p.span_id == s.span_id)
                    .unwrap_or(0);
                let mut names: Vec<String> = path[from..].iter().map(|p| p.name.clone()).collect();
                names.push(s.name.clone());
                return Some(names);
            }
            path.push(s);
            cur = parent_of(s, by_id);
        }
        done.extend(
            path.iter()
                .map(|s| (s.trace_id.as_str(), s.span_id.as_str())),
        );
    }
    None
}

/// Every bound of `c`, as `what >= 1 and what <= 1`.
fn count_text(c: &Count, what: &str) -> String {
    let parts: Vec<String> = [(&c.eq, "=="), (&c.gte, ">="), (&c.lte, "<=")]
        .into_iter()
        .filter_map(|(v, op)| v.as_ref().map(|v| format!("{what} {op} {}", v.value)))
        .collect();
    parts.join(" and ")
}

/// The bounds of `c` that `actual` misses, as `what == 3 and …`, with where the
/// first is written.
fn count_misses(c: &Count, actual: u64, what: &str) -> Option<(String, crate::diag::Span)> {
    let checks = [
        (&c.eq, "==", c.eq.as_ref().is_none_or(|v| actual == v.value)),
        (
            &c.gte,
            ">=",
            c.gte.as_ref().is_none_or(|v| actual >= v.value),
        ),
        (
            &c.lte,
            "<=",
            c.lte.as_ref().is_none_or(|v| actual <= v.value),
        ),
    ];
    let failed: Vec<(&crate::model::Sp<u64>, &str)> = checks
        .iter()
        .filter(|(_, _, ok)| !ok)
        .filter_map(|(v, op, _)| v.as_ref().map(|v| (v, *op)))
        .collect();
    let (first, _) = failed.first()?;
    let expected: Vec<String> = failed
        .iter()
        .map(|(v, op)| format!("{what} {op} {}", v.value))
        .collect();
    Some((expected.join(" and "), first.span))
}

fn count_unmet(set: &ExpectSet, what: &str, c: &Count, actual: u64) -> Option<Unmet> {
    let (expected, at) = count_misses(c, actual, what)?;
    Some(unmet(
        ExpectKind::Counts,
        format!("[expect.counts] {what}"),
        set.at(at),
        expected,
        actual.to_string(),
    ))
}

/// `[expect.counts]`.
pub fn counts<'s>(set: &ExpectSet, c: &'s CountsExpect, m: &mut Matcher<'_, '_, 's>) -> Vec<Unmet> {
    let spans = m.trace.spans;
    let mut out = Vec::new();
    let total = spans.len() as u64;
    let events = spans.iter().map(|s| s.events.len() as u64).sum();
    let errors = spans
        .iter()
        .filter(|s| s.status == crate::model::StatusCode::Error)
        .count() as u64;
    for (what, count, actual) in [
        ("spans_total", &c.spans_total, total),
        ("events_total", &c.events_total, events),
        ("errors_total", &c.errors_total, errors),
    ] {
        if let Some(count) = count {
            out.extend(count_unmet(set, what, count, actual));
        }
    }
    for (_, by) in c.by_name.iter() {
        let actual = m.select(&by.select).len() as u64;
        out.extend(count_unmet(
            set,
            &format!("by_name {}", by.select),
            &by.count,
            actual,
        ));
    }
    out
}

/// `[[expect.window]]`: every span each `contains` selector picks starts and ends
/// inside an `outer` span.
pub fn window<'s>(set: &ExpectSet, w: &'s WindowExpect, m: &mut Matcher<'_, '_, 's>) -> Vec<Unmet> {
    let spans = m.trace.spans;
    let what = format!("[[expect.window]] {}", w.outer);
    let outers: Vec<&SpanRecord> = m.select(&w.outer).into_iter().map(|i| &spans[i]).collect();
    if outers.is_empty() {
        let (found, near) = none_found(m, &w.outer);
        return vec![Unmet {
            matched: Some(0),
            near,
            ..unmet(
                ExpectKind::Window,
                what,
                set.at(w.span),
                format!("an outer span {}", w.outer),
                found,
            )
        }];
    }
    let mut out = Vec::new();
    for c in &w.contains {
        let inner: Vec<&SpanRecord> = m.select(c).into_iter().map(|i| &spans[i]).collect();
        let outside = inner.iter().find(|s| {
            !outers.iter().any(|o| {
                s.start_time_unix_nano >= o.start_time_unix_nano
                    && s.end_time_unix_nano <= o.end_time_unix_nano
            })
        });
        let found = match (inner.is_empty(), outside) {
            (true, _) => Some(none_found(m, c).0),
            (false, Some(s)) => Some(format!(
                "\"{}\" runs {} outside every {}",
                s.name,
                relative(s, &outers),
                w.outer
            )),
            (false, None) => None,
        };
        if let Some(found) = found {
            out.push(unmet(
                ExpectKind::Window,
                what.clone(),
                set.at(c.span),
                format!("{c} within {}", w.outer),
                found,
            ));
        }
    }
    out
}

fn relative(s: &SpanRecord, outers: &[&SpanRecord]) -> String {
    let o = outers[0];
    let ms = |t: u64| (t as i128 - o.start_time_unix_nano as i128) as f64 / 1e6;
    format!(
        "{:.1}..{:.1} ms (the first outer spans 0..{:.1} ms)",
        ms(s.start_time_unix_nano),
        ms(s.end_time_unix_nano),
        ms(o.end_time_unix_nano)
    )
}

/// The first span `sel` picks, by start time.
fn first<'a, 's>(m: &mut Matcher<'_, 'a, 's>, sel: &'s Selector) -> Option<&'a SpanRecord> {
    let spans = m.trace.spans;
    m.select(sel)
        .into_iter()
        .map(|i| &spans[i])
        .min_by_key(|s| s.start_time_unix_nano)
}

/// `[expect.order]`, on the first span each selector picks (by start time).
pub fn order<'s>(set: &ExpectSet, o: &'s OrderExpect, m: &mut Matcher<'_, '_, 's>) -> Vec<Unmet> {
    let mut out = Vec::new();
    for (pairs, verb) in [
        (&o.must_precede, "must_precede"),
        (&o.must_follow, "must_follow"),
    ] {
        for pair in pairs {
            let (a, b) = (pair.value.a(), pair.value.b());
            let expected = if verb == "must_precede" {
                format!("{a} to end before {b} starts")
            } else {
                format!("{a} to start after {b} ends")
            };
            let found = match (first(m, a), first(m, b)) {
                (None, _) => Some(none_found(m, a).0),
                (_, None) => Some(none_found(m, b).0),
                (Some(x), Some(y)) => {
                    let ok = if verb == "must_precede" {
                        x.end_time_unix_nano <= y.start_time_unix_nano
                    } else {
                        x.start_time_unix_nano >= y.end_time_unix_nano
                    };
                    (!ok).then(|| {
                        let gap = (y.start_time_unix_nano as i128 - x.end_time_unix_nano as i128)
                            as f64
                            / 1e6;
                        let back = (x.start_time_unix_nano as i128 - y.end_time_unix_nano as i128)
                            as f64
                            / 1e6;
                        if verb == "must_precede" {
                            format!("{b} starts {:.1} ms before {a} ends", -gap)
                        } else {
                            format!("{a} starts {:.1} ms before {b} ends", -back)
                        }
                    })
                }
            };
            if let Some(found) = found {
                out.push(unmet(
                    ExpectKind::Order,
                    format!("[expect.order] {verb}"),
                    set.at(pair.span),
                    expected,
                    found,
                ));
            }
        }
    }
    out
}

/// `[expect.status]`.
pub fn status(set: &ExpectSet, st: &StatusExpect, spans: &[SpanRecord]) -> Vec<Unmet> {
    let mut out = Vec::new();
    let offenders = |list: &[&SpanRecord], allowed: &[StatusCode]| {
        let bad: Vec<String> = list
            .iter()
            .filter(|s| !allowed.contains(&s.status))
            .take(5)
            .map(|s| {
                let msg = if s.status_message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.status_message)
                };
                format!("\"{}\" is {}{msg}", s.name, s.status.as_str())
            })
            .collect();
        bad
    };
    if let Some(all) = &st.all {
        let every: Vec<&SpanRecord> = spans.iter().collect();
        let allowed: Vec<StatusCode> = all.value.iter().map(|c| c.value).collect();
        let bad = offenders(&every, &allowed);
        if !bad.is_empty() {
            let words: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
            out.push(Unmet {
                kind: ExpectKind::Status,
                what: "[expect.status] all".into(),
                at: set.at(all.span),
                expected: format!("every span {}", words.join(" or ")),
                found: bad.join(", "),
                matched: None,
                near: Vec::new(),
            });
        }
    }
    for (pattern, want) in st.by_name.iter() {
        let matching = set.named(spans, &pattern.value);
        let found = if matching.is_empty() {
            Some(no_span_named(&pattern.value, spans))
        } else {
            let bad = offenders(&matching, &[want.value]);
            (!bad.is_empty()).then(|| bad.join(", "))
        };
        if let Some(found) = found {
            out.push(Unmet {
                kind: ExpectKind::Status,
                what: format!("[expect.status] by_name \"{}\"", pattern.value),
                at: set.at(pattern.span),
                expected: format!("\"{}\" spans {}", pattern.value, want.value.as_str()),
                found,
                matched: None,
                near: Vec::new(),
            });
        }
    }
    out
}

/// `[expect.hermeticity]`.
pub fn hermeticity(
    set: &ExpectSet,
    h: &HermeticityExpect,
    spans: &[SpanRecord],
    scope: &super::Scope<'_>,
) -> Vec<Unmet> {
    use crate::model::same_host;
    let mut out = Vec::new();
    if let Some(flag) = &h.no_external_services
        && flag.value
    {
        // Entries validate refused are not here to allow anything.
        let allowed: Vec<crate::model::HostPattern> = h
            .allow_hosts
            .iter()
            .filter_map(|a| crate::model::HostPattern::parse(&a.value).ok())
            .collect();
        let internal = |host: &str, kind: crate::model::SpanKind| {
            is_loopback(host)
                || scope.own_hosts.iter().any(|o| same_host(o, host))
                || (kind == crate::model::SpanKind::Server
                    && scope.gateway.is_some_and(|g| same_host(g, host)))
                || allowed.iter().any(|a| a.matches(host))
        };
        let hit = spans.iter().find_map(|s| {
            NETWORK_PEER_KEYS.iter().find_map(|k| {
                // A server span's own address names itself, not a peer.
                if s.kind == crate::model::SpanKind::Server && SERVER_OWN_KEYS.contains(k) {
                    return None;
                }
                let v = s.attributes.get(*k)?;
                let text = v.to_string();
                let text = text.trim_matches('"');
                let host = peer_host(text);
                (!internal(host, s.kind)).then(|| format!("{} has {k}={v}", s.describe()))
            })
        });
        if let Some(found) = hit {
            out.push(Unmet {
                kind: ExpectKind::Hermeticity,
                what: "[expect.hermeticity] no_external_services".into(),
                at: set.at(flag.span),
                expected: "no span naming a network peer".into(),
                found,
                matched: None,
                near: Vec::new(),
            });
        }
    }
    if let Some(r) = &h.resource_attrs {
        for (k, v) in r.must_match.iter() {
            let bad = spans
                .iter()
                .find(|s| holds_all(v, s.resource.get(&k.value)).is_err());
            if let Some(s) = bad {
                let actual = s
                    .resource
                    .get(&k.value)
                    .map_or("missing".to_owned(), |x| x.to_string());
                out.push(Unmet {
                    kind: ExpectKind::Hermeticity,
                    what: "[expect.hermeticity] resource_attrs.must_match".into(),
                    at: set.at(k.span),
                    expected: format!("resource {} {v} on every span", k.value),
                    found: format!("\"{}\" has resource {} {actual}", s.name, k.value),
                    matched: None,
                    near: Vec::new(),
                });
            }
        }
    }
    if let Some(a) = &h.span_attrs {
        for key in &a.forbid_keys {
            let hit = spans.iter().find_map(|s| {
                s.attributes
                    .keys()
                    .find(|k| key.is_match(k))
                    .map(|k| format!("\"{}\" carries {k}", s.name))
            });
            if let Some(found) = hit {
                out.push(Unmet {
                    kind: ExpectKind::Hermeticity,
                    what: "[expect.hermeticity] span_attrs.forbid_keys".into(),
                    at: set.at(key.span),
                    expected: format!("no span attribute \"{}\"", key.value),
                    found,
                    matched: None,
                    near: Vec::new(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_attribute_gives_its_host() {
        for (value, host) in [
            ("db", "db"),
            ("db:5432", "db"),
            ("postgresql://app:secret@db:5432/orders?sslmode=off", "db"),
            ("http://api.stripe.com/v1/charges", "api.stripe.com"),
            ("http://[::1]:8080/x", "::1"),
            ("fe80::1", "fe80::1"),
            ("10.1.2.3", "10.1.2.3"),
            ("10.1.2.3:80", "10.1.2.3"),
        ] {
            assert_eq!(peer_host(value), host, "{value}");
        }
        assert!(is_loopback("localhost") && is_loopback("127.0.0.9") && is_loopback("::1"));
        assert!(!is_loopback("db"));
    }
}
