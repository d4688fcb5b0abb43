//! `clnrm expect`: a starter block of span expectations from a scenario's saved spans
//! (SPEC §15), the way Tracetest makes a test from a trace. One `[[scenario.expect.span]]`
//! per group of spans with the same name, kind and parent name, in tree order, with
//! the attributes every span of the group had with one value in each saved run (the
//! latest and, when kept, the one before), an ERROR status, events and links that
//! every span of the group had, and a `count` when the group is more than one span.
//! Ids, times and durations are never written; attributes that change with every
//! connection (the diff's per-connection keys and `diff.ignore_attributes`) are left
//! out, a value naming one of the scenario's containers is written as its service id,
//! and values that look like ids or timestamps are left out of a single run.

use crate::diff::Normalize;
use crate::diff::tree::with_service_ids;
use crate::model::StatusCode;
use crate::otel::{AttrValue, SpanRecord};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// One saved run of a scenario: its spans and the identities of its containers.
pub struct SavedRun<'a> {
    /// The spans.
    pub spans: &'a [SpanRecord],
    /// Container identities → service ids.
    pub identities: &'a BTreeMap<String, String>,
}

/// Longest attribute value written (a stack trace is not a starter expectation).
const MAX_VALUE: usize = 200;

/// The group of a span: name, kind, and its parent's name.
type Group = (String, &'static str, Option<String>);

#[derive(Default)]
struct Seen {
    /// Spans in each run (index of the run).
    counts: Vec<usize>,
    /// Attribute → its one value so far (`None` once it differed or was missing).
    attrs: Option<BTreeMap<String, Option<AttrValue>>>,
    /// Every span was ERROR.
    error: bool,
    /// Event name → attributes the same on every such event so far; events every
    /// span had.
    events: Option<BTreeMap<String, BTreeMap<String, Option<AttrValue>>>>,
    /// Names of link targets every span had.
    links: Option<Vec<String>>,
    /// Where it first appeared in tree order (latest run).
    order: usize,
}

/// The starter block for `runs` (latest first), as TOML to paste under the scenario.
pub fn starter(runs: &[SavedRun<'_>], normalize: &Normalize) -> String {
    let mut groups: HashMap<Group, Seen> = HashMap::new();
    let single = runs.len() == 1;
    for (r, run) in runs.iter().enumerate() {
        let order = tree_order(run.spans);
        let by_id: HashMap<(&str, &str), usize> = run
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.trace_id.as_str(), s.span_id.as_str()), i))
            .collect();
        for (pos, &i) in order.iter().enumerate() {
            let s = &run.spans[i];
            let parent = s
                .parent_span_id
                .as_deref()
                .and_then(|p| by_id.get(&(s.trace_id.as_str(), p)))
                .map(|&p| run.spans[p].name.clone());
            let key = (s.name.clone(), s.kind.as_str(), parent);
            // A group the latest run did not have is no expectation of it.
            if r > 0 && !groups.contains_key(&key) {
                continue;
            }
            let seen = groups.entry(key).or_insert_with(|| Seen {
                order: pos,
                error: true,
                ..Seen::default()
            });
            if seen.counts.len() <= r {
                seen.counts.resize(r + 1, 0);
            }
            seen.counts[r] += 1;
            let attrs: BTreeMap<String, AttrValue> = s
                .attributes
                .iter()
                .filter(|(k, _)| !normalize.ignores(k, s.kind))
                .filter_map(|(k, v)| Some((k.clone(), stable(v, run.identities, single)?)))
                .collect();
            merge(&mut seen.attrs, &attrs);
            seen.error &= s.status == StatusCode::Error;
            let mut events: BTreeMap<String, BTreeMap<String, Option<AttrValue>>> = BTreeMap::new();
            for e in &s.events {
                let a: BTreeMap<String, AttrValue> = e
                    .attributes
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), stable(v, run.identities, single)?)))
                    .collect();
                let slot = events.entry(e.name.clone()).or_default();
                let mut one = Some(std::mem::take(slot));
                if one.as_ref().is_some_and(BTreeMap::is_empty) {
                    one = None;
                }
                merge(&mut one, &a);
                *slot = one.unwrap_or_default();
            }
            seen.events = Some(match seen.events.take() {
                None => events,
                Some(mut had) => {
                    had.retain(|name, _| events.contains_key(name));
                    for (name, attrs) in &mut had {
                        let now = &events[name];
                        attrs.retain(|k, v| v.is_some() && now.get(k) == Some(v));
                    }
                    had
                }
            });
            let links: Vec<String> = s
                .links
                .iter()
                .filter_map(|l| by_id.get(&(l.trace_id.as_str(), l.span_id.as_str())))
                .map(|&t| run.spans[t].name.clone())
                .collect();
            seen.links = Some(match seen.links.take() {
                None => links,
                Some(had) => had.into_iter().filter(|n| links.contains(n)).collect(),
            });
        }
    }
    let mut ordered: Vec<(Group, Seen)> = groups.into_iter().collect();
    ordered.sort_by_key(|(_, s)| s.order);
    let mut out = String::new();
    for ((name, kind, parent), seen) in ordered {
        out.push_str("\n[[scenario.expect.span]]\n");
        let _ = writeln!(out, "name = {}", quoted(&name));
        let _ = writeln!(out, "kind = \"{kind}\"");
        if let Some(p) = &parent {
            let _ = writeln!(out, "parent = {}", quoted(p));
        }
        if seen.error {
            out.push_str("status = \"ERROR\"\n");
        }
        let attrs = inline(seen.attrs.as_ref());
        if !attrs.is_empty() {
            let _ = writeln!(out, "attrs = {{ {attrs} }}");
        }
        let events: Vec<String> = seen
            .events
            .iter()
            .flatten()
            .map(|(n, a)| {
                let a = inline(Some(a));
                if a.is_empty() {
                    format!("{{ name = {} }}", quoted(n))
                } else {
                    format!("{{ name = {}, attrs = {{ {a} }} }}", quoted(n))
                }
            })
            .collect();
        if !events.is_empty() {
            let _ = writeln!(out, "events = [{}]", events.join(", "));
        }
        let mut links: Vec<&String> = seen.links.iter().flatten().collect();
        links.sort();
        links.dedup();
        if !links.is_empty() {
            let to: Vec<String> = links
                .iter()
                .map(|n| format!("{{ to = {} }}", quoted(n)))
                .collect();
            let _ = writeln!(out, "links = [{}]", to.join(", "));
        }
        let first = seen.counts.first().copied().unwrap_or(0);
        if first > 1 && seen.counts.iter().all(|c| *c == first) {
            let _ = writeln!(out, "count = {{ eq = {first} }}");
        }
    }
    out
}

/// Merges one span's attributes into what a group had: a key stays with its value
/// only when every span had it with that value.
fn merge(had: &mut Option<BTreeMap<String, Option<AttrValue>>>, now: &BTreeMap<String, AttrValue>) {
    match had {
        None => {
            *had = Some(
                now.iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
            )
        }
        Some(had) => {
            for (k, v) in had.iter_mut() {
                if now.get(k) != v.as_ref() {
                    *v = None;
                }
            }
        }
    }
}

/// `v` as a starter expectation would hold it: a container's identity as its service
/// id; nothing when it is too long or, from a single run, looks like an id or a time.
fn stable(v: &AttrValue, identities: &BTreeMap<String, String>, single: bool) -> Option<AttrValue> {
    let v = match v {
        AttrValue::Str(text) => {
            AttrValue::Str(with_service_ids(text, identities).unwrap_or_else(|| text.clone()))
        }
        other => other.clone(),
    };
    let text = v.to_string();
    if text.len() > MAX_VALUE || (single && looks_volatile(&v)) {
        return None;
    }
    Some(v)
}

/// An id (16 or more hex digits, a UUID) or a timestamp (an epoch in seconds or finer,
/// an ISO 8601 date and time).
fn looks_volatile(v: &AttrValue) -> bool {
    match v {
        AttrValue::Int(i) => *i >= 1_000_000_000,
        AttrValue::Str(s) => {
            let hex = s.chars().filter(char::is_ascii_hexdigit).count();
            let uuid_like = s.len() == 36 && s.matches('-').count() == 4 && hex == 32;
            let id_like = s.len() >= 16 && s.chars().all(|c| c.is_ascii_hexdigit());
            let time_like = s.len() >= 19
                && s.as_bytes().get(4) == Some(&b'-')
                && s.as_bytes()
                    .get(10)
                    .is_some_and(|b| *b == b'T' || *b == b' ');
            uuid_like || id_like || time_like
        }
        _ => false,
    }
}

/// The spans in tree order: roots by start time, each followed by its children by
/// start time (a parent cycle's spans at the end).
fn tree_order(spans: &[SpanRecord]) -> Vec<usize> {
    let by_id: HashMap<(&str, &str), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.trace_id.as_str(), s.span_id.as_str()), i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s
            .parent_span_id
            .as_deref()
            .and_then(|p| by_id.get(&(s.trace_id.as_str(), p)))
            .filter(|&&p| p != i)
        {
            Some(&p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let start = |i: &usize| (spans[*i].start_time_unix_nano, *i);
    roots.sort_by_key(start);
    let mut seen = vec![false; spans.len()];
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<usize> = roots.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push(i);
        let mut kids = children.get(&i).cloned().unwrap_or_default();
        kids.sort_by_key(start);
        stack.extend(kids.into_iter().rev());
    }
    out.extend((0..spans.len()).filter(|i| !seen[*i]));
    out
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The keys with one value, as the inside of an inline table.
fn inline(attrs: Option<&BTreeMap<String, Option<AttrValue>>>) -> String {
    let parts: Vec<String> = attrs
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let value = match v.as_ref()? {
                AttrValue::Str(s) => quoted(s),
                AttrValue::Int(i) => i.to_string(),
                AttrValue::Double(d) if d.is_finite() => format!("{d:?}"),
                AttrValue::Bool(b) => b.to_string(),
                // Lists and non-finite numbers have no equality predicate to write.
                _ => return None,
            };
            let bare = k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let key = if bare && !k.is_empty() {
                k.clone()
            } else {
                quoted(k)
            };
            Some(format!("{key} = {value}"))
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::parse_line;

    fn spans(lines: &[&str]) -> Vec<SpanRecord> {
        lines
            .iter()
            .flat_map(|l| parse_line(l).expect("span"))
            .collect()
    }

    #[test]
    fn a_starter_block_keeps_what_was_the_same_and_leaves_out_ids_and_connections() {
        let latest = spans(&[
            r#"{"name":"GET /x","trace_id":"t","span_id":"a","kind":"server","start_time_unix_nano":1,"attributes":{"http.route":"/x","net.peer.port":51234,"request.id":"0af7651916cd43dd8448eb211c80319c"}}"#,
            r#"{"name":"SELECT","trace_id":"t","span_id":"b","parent_span_id":"a","kind":"client","start_time_unix_nano":2,"attributes":{"db.system":"postgresql","row":1}}"#,
            r#"{"name":"SELECT","trace_id":"t","span_id":"c","parent_span_id":"a","kind":"client","start_time_unix_nano":3,"attributes":{"db.system":"postgresql","row":2}}"#,
            r#"{"name":"work","trace_id":"u","span_id":"d","kind":"consumer","start_time_unix_nano":4,"status":"ERROR","links":[{"trace_id":"t","span_id":"a"}],"events":[{"name":"exception","attributes":{"exception.type":"E","exception.stacktrace":"x"}}]}"#,
        ]);
        let none = BTreeMap::new();
        let runs = [SavedRun {
            spans: &latest,
            identities: &none,
        }];
        let text = starter(&runs, &Normalize::new(true, &[]));
        let expected = r#"
[[scenario.expect.span]]
name = "GET /x"
kind = "server"
attrs = { "http.route" = "/x" }

[[scenario.expect.span]]
name = "SELECT"
kind = "client"
parent = "GET /x"
attrs = { "db.system" = "postgresql" }
count = { eq = 2 }

[[scenario.expect.span]]
name = "work"
kind = "consumer"
status = "ERROR"
events = [{ name = "exception", attrs = { "exception.stacktrace" = "x", "exception.type" = "E" } }]
links = [{ to = "GET /x" }]
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn across_two_runs_only_values_both_had_are_kept() {
        let a = spans(&[
            r#"{"name":"s","trace_id":"t","span_id":"a","attributes":{"same":"v","moves":"1"}}"#,
        ]);
        let b = spans(&[
            r#"{"name":"s","trace_id":"t","span_id":"a","attributes":{"same":"v","moves":"2"}}"#,
        ]);
        let none = BTreeMap::new();
        let runs = [
            SavedRun {
                spans: &a,
                identities: &none,
            },
            SavedRun {
                spans: &b,
                identities: &none,
            },
        ];
        let text = starter(&runs, &Normalize::new(true, &[]));
        assert!(text.contains("attrs = { same = \"v\" }\n"), "{text}");
    }
}
