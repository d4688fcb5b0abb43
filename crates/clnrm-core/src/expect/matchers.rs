//! One function per expectation kind; each returns what is unmet.

use super::{ExpectKind, ExpectSet, Unmet};
use crate::model::{
    Count, CountsExpect, GraphExpect, HermeticityExpect, OrderExpect, SpanExpect, StatusExpect,
    WindowExpect,
};
use crate::model::{NamePattern, StatusCode};
use crate::otel::SpanRecord;
use std::collections::{HashMap, HashSet};

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

/// `[[expect.span]]`: some span matches every criterion.
pub fn span(set: &ExpectSet, e: &SpanExpect, spans: &[SpanRecord]) -> Option<Unmet> {
    let unmet = |expected: String, found: String| Unmet {
        kind: ExpectKind::Span,
        what: format!("[[expect.span]] \"{}\"", e.name.value),
        at: set.at(e.span),
        expected,
        found,
    };
    let candidates = set.named(spans, &e.name.value);
    let expected = describe_span_expect(e);
    if candidates.is_empty() {
        return Some(unmet(expected, no_span_named(&e.name.value, spans)));
    }
    let by_id = index(spans);
    let mut best: Option<(&SpanRecord, Vec<String>)> = None;
    for c in candidates {
        let misses = span_misses(set, e, c, &by_id);
        if misses.is_empty() {
            return None;
        }
        if best.as_ref().is_none_or(|(_, m)| misses.len() < m.len()) {
            best = Some((c, misses));
        }
    }
    let (nearest, misses) = best?;
    Some(unmet(
        expected,
        format!("{}: {}", nearest.describe(), misses.join("; ")),
    ))
}

fn describe_span_expect(e: &SpanExpect) -> String {
    let mut parts = vec![format!("a span \"{}\"", e.name.value)];
    if let Some(p) = &e.parent {
        parts.push(format!("with parent \"{}\"", p.value));
    }
    if let Some(k) = &e.kind {
        parts.push(format!("of kind {}", k.value.as_str()));
    }
    if let Some(a) = &e.attrs {
        let all: Vec<String> = a
            .all
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        let any: Vec<String> = a
            .any
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        if !all.is_empty() {
            parts.push(format!("with attrs {}", all.join(", ")));
        }
        if !any.is_empty() {
            parts.push(format!("with one of {}", any.join(", ")));
        }
    }
    if let Some(ev) = &e.events {
        let all: Vec<&str> = ev.all.iter().map(|n| n.value.as_str()).collect();
        let any: Vec<&str> = ev.any.iter().map(|n| n.value.as_str()).collect();
        if !all.is_empty() {
            parts.push(format!("with events {}", all.join(", ")));
        }
        if !any.is_empty() {
            parts.push(format!("with one of the events {}", any.join(", ")));
        }
    }
    if let Some(d) = &e.duration_ms {
        parts.push(format!(
            "lasting {}..{} ms",
            d.min
                .as_ref()
                .map_or(String::new(), |v| v.value.to_string()),
            d.max
                .as_ref()
                .map_or(String::new(), |v| v.value.to_string())
        ));
    }
    parts.join(" ")
}

fn span_misses(
    set: &ExpectSet,
    e: &SpanExpect,
    s: &SpanRecord,
    by_id: &HashMap<(&str, &str), &SpanRecord>,
) -> Vec<String> {
    let mut misses = Vec::new();
    if let Some(p) = &e.parent {
        match parent_of(s, by_id) {
            Some(parent) if set.named(std::slice::from_ref(parent), &p.value).len() == 1 => {}
            Some(parent) => misses.push(format!("its parent is \"{}\"", parent.name)),
            None => misses.push("it has no parent among the collected spans".into()),
        }
    }
    if let Some(k) = &e.kind
        && s.kind != k.value
    {
        misses.push(format!("its kind is {}", s.kind.as_str()));
    }
    if let Some(a) = &e.attrs {
        for (k, v) in a.all.iter() {
            match s.attributes.get(&k.value) {
                Some(actual) if actual.matches(&v.value) => {}
                Some(actual) => misses.push(format!("{} is {actual}", k.value)),
                None => misses.push(format!("{} is missing", k.value)),
            }
        }
        if !a.any.is_empty()
            && !a.any.iter().any(|(k, v)| {
                s.attributes
                    .get(&k.value)
                    .is_some_and(|x| x.matches(&v.value))
            })
        {
            misses.push("none of attrs.any matches".into());
        }
    }
    if let Some(ev) = &e.events {
        let have: HashSet<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
        for n in &ev.all {
            if !have.contains(n.value.as_str()) {
                misses.push(format!("event \"{}\" is missing", n.value));
            }
        }
        if !ev.any.is_empty() && !ev.any.iter().any(|n| have.contains(n.value.as_str())) {
            misses.push("none of events.any happened".into());
        }
    }
    if let Some(d) = &e.duration_ms {
        let ms = s.duration_ms();
        let low = d.min.as_ref().is_some_and(|m| ms < m.value);
        let high = d.max.as_ref().is_some_and(|m| ms > m.value);
        if low || high {
            misses.push(format!("it lasted {ms:.1} ms"));
        }
    }
    misses
}

/// `[expect.graph]`.
pub fn graph(set: &ExpectSet, g: &GraphExpect, spans: &[SpanRecord]) -> Vec<Unmet> {
    let by_id = index(spans);
    let mut out = Vec::new();
    for pair in &g.must_include {
        let (p, c) = (&pair.value.a().value, &pair.value.b().value);
        let children = set.named(spans, c);
        let ok = children.iter().any(|ch| {
            parent_of(ch, &by_id)
                .is_some_and(|par| set.named(std::slice::from_ref(par), p).len() == 1)
        });
        if !ok {
            let found = if children.is_empty() {
                no_span_named(c, spans)
            } else {
                let parents: Vec<String> = children
                    .iter()
                    .map(|ch| {
                        parent_of(ch, &by_id)
                            .map_or("(none)".to_owned(), |x| format!("\"{}\"", x.name))
                    })
                    .collect();
                format!("\"{c}\" has parent {}", parents.join(", "))
            };
            out.push(Unmet {
                kind: ExpectKind::Graph,
                what: "[expect.graph] must_include".into(),
                at: set.at(pair.span),
                expected: format!("an edge \"{p}\" → \"{c}\""),
                found,
            });
        }
    }
    for pair in &g.must_not_cross {
        let (a, b) = (&pair.value.a().value, &pair.value.b().value);
        let crossing = set.named(spans, b).into_iter().find(|ch| {
            parent_of(ch, &by_id)
                .is_some_and(|par| set.named(std::slice::from_ref(par), a).len() == 1)
        });
        if let Some(ch) = crossing {
            out.push(Unmet {
                kind: ExpectKind::Graph,
                what: "[expect.graph] must_not_cross".into(),
                at: set.at(pair.span),
                expected: format!("no edge \"{a}\" → \"{b}\""),
                found: format!("{} under \"{a}\"", ch.describe()),
            });
        }
    }
    if let Some(acyclic) = &g.acyclic
        && acyclic.value
        && let Some(cycle) = find_cycle(spans, &by_id)
    {
        out.push(Unmet {
            kind: ExpectKind::Graph,
            what: "[expect.graph] acyclic".into(),
            at: set.at(acyclic.span),
            expected: "parent links without a cycle".into(),
            found: format!("a cycle through {}", cycle.join(" → ")),
        });
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

fn count_unmet(set: &ExpectSet, what: &str, c: &Count, actual: u64) -> Option<Unmet> {
    let checks = [
        (
            &c.eq,
            "==",
            actual == c.eq.as_ref().map_or(actual, |v| v.value),
        ),
        (
            &c.gte,
            ">=",
            actual >= c.gte.as_ref().map_or(actual, |v| v.value),
        ),
        (
            &c.lte,
            "<=",
            actual <= c.lte.as_ref().map_or(actual, |v| v.value),
        ),
    ];
    let failed: Vec<(&crate::model::Sp<u64>, &str)> = checks
        .iter()
        .filter(|(v, _, ok)| v.is_some() && !ok)
        .filter_map(|(v, op, _)| v.as_ref().map(|v| (v, *op)))
        .collect();
    let (first, _) = failed.first()?;
    let expected: Vec<String> = failed
        .iter()
        .map(|(v, op)| format!("{what} {op} {}", v.value))
        .collect();
    Some(Unmet {
        kind: ExpectKind::Counts,
        what: format!("[expect.counts] {what}"),
        at: set.at(first.span),
        expected: expected.join(" and "),
        found: actual.to_string(),
    })
}

/// `[expect.counts]`.
pub fn counts(set: &ExpectSet, c: &CountsExpect, spans: &[SpanRecord]) -> Vec<Unmet> {
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
    for (name, count) in c.by_name.iter() {
        let actual = set.named(spans, &name.value).len() as u64;
        out.extend(count_unmet(
            set,
            &format!("by_name \"{}\"", name.value),
            count,
            actual,
        ));
    }
    out
}

/// `[[expect.window]]`: every span of each `contains` name starts and ends inside an `outer` span.
pub fn window(set: &ExpectSet, w: &WindowExpect, spans: &[SpanRecord]) -> Vec<Unmet> {
    let what = format!("[[expect.window]] \"{}\"", w.outer.value);
    let outers = set.named(spans, &w.outer.value);
    if outers.is_empty() {
        return vec![Unmet {
            kind: ExpectKind::Window,
            what,
            at: set.at(w.span),
            expected: format!("an outer span \"{}\"", w.outer.value),
            found: no_span_named(&w.outer.value, spans),
        }];
    }
    let mut out = Vec::new();
    for c in &w.contains {
        let inner = set.named(spans, &c.value);
        let outside = inner.iter().find(|s| {
            !outers.iter().any(|o| {
                s.start_time_unix_nano >= o.start_time_unix_nano
                    && s.end_time_unix_nano <= o.end_time_unix_nano
            })
        });
        let found = match (inner.is_empty(), outside) {
            (true, _) => Some(no_span_named(&c.value, spans)),
            (false, Some(s)) => Some(format!(
                "\"{}\" runs {} outside every \"{}\"",
                s.name,
                relative(s, &outers),
                w.outer.value
            )),
            (false, None) => None,
        };
        if let Some(found) = found {
            out.push(Unmet {
                kind: ExpectKind::Window,
                what: what.clone(),
                at: set.at(c.span),
                expected: format!("\"{}\" within \"{}\"", c.value, w.outer.value),
                found,
            });
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

fn first<'a>(
    set: &ExpectSet,
    spans: &'a [SpanRecord],
    pattern: &NamePattern,
) -> Option<&'a SpanRecord> {
    set.named(spans, pattern)
        .into_iter()
        .min_by_key(|s| s.start_time_unix_nano)
}

/// `[expect.order]`, on the first span of each name (by start time).
pub fn order(set: &ExpectSet, o: &OrderExpect, spans: &[SpanRecord]) -> Vec<Unmet> {
    let mut out = Vec::new();
    for (pairs, verb) in [
        (&o.must_precede, "must_precede"),
        (&o.must_follow, "must_follow"),
    ] {
        for pair in pairs {
            let (a, b) = (&pair.value.a().value, &pair.value.b().value);
            let expected = if verb == "must_precede" {
                format!("\"{a}\" to end before \"{b}\" starts")
            } else {
                format!("\"{a}\" to start after \"{b}\" ends")
            };
            let found = match (first(set, spans, a), first(set, spans, b)) {
                (None, _) => Some(no_span_named(a, spans)),
                (_, None) => Some(no_span_named(b, spans)),
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
                            format!("\"{b}\" starts {:.1} ms before \"{a}\" ends", -gap)
                        } else {
                            format!("\"{a}\" starts {:.1} ms before \"{b}\" ends", -back)
                        }
                    })
                }
            };
            if let Some(found) = found {
                out.push(Unmet {
                    kind: ExpectKind::Order,
                    what: format!("[expect.order] {verb}"),
                    at: set.at(pair.span),
                    expected,
                    found,
                });
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
            });
        }
    }
    if let Some(r) = &h.resource_attrs {
        for (k, v) in r.must_match.iter() {
            let bad = spans.iter().find(|s| {
                !s.resource
                    .get(&k.value)
                    .is_some_and(|x| x.matches(&v.value))
            });
            if let Some(s) = bad {
                let actual = s
                    .resource
                    .get(&k.value)
                    .map_or("missing".to_owned(), |x| x.to_string());
                out.push(Unmet {
                    kind: ExpectKind::Hermeticity,
                    what: "[expect.hermeticity] resource_attrs.must_match".into(),
                    at: set.at(k.span),
                    expected: format!("resource {}={} on every span", k.value, v.value),
                    found: format!("\"{}\" has resource {} {actual}", s.name, k.value),
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
