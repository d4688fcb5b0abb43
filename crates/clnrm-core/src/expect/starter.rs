//! `clnrm expect`: a starter block of span expectations from a scenario's saved spans
//! (SPEC §15), the way Tracetest makes a test from a trace. One `[[scenario.expect.span]]`
//! per group of spans with the same name, kind and parent name, in tree order, with
//! the attributes every span of the group had with one value in each saved run (the
//! latest and, when kept, the one before), an ERROR status, events and links that
//! every span of the group had, and a `count` when the group is more than one span
//! (the same in both runs, and only where the selector counts exactly the group).
//! Ids, times and durations are never written; neither are attributes that change
//! with every connection (the diff's per-connection keys, `diff.ignore_attributes`),
//! values that name one of the scenario's containers or hold a masked secret (the
//! saved spans have the mask, the checked ones the secret), and, from a group of one
//! run only, values that look like ids or timestamps.

use crate::diff::Normalize;
use crate::diff::tree::with_service_ids;
use crate::model::{MASK, StatusCode};
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

/// Attribute → its one value in a group (`None` once it differed or was missing).
type Agreed = BTreeMap<String, Option<AttrValue>>;

/// What the spans of one group had in one run.
struct GroupRun {
    count: usize,
    attrs: Agreed,
    /// Every span was ERROR.
    error: bool,
    /// Event name → its attributes, for the events every span had.
    events: BTreeMap<String, Agreed>,
    /// Names of the link targets every span had.
    links: Vec<String>,
    /// Where the group first appears in tree order.
    order: usize,
}

/// The starter block for `runs` (latest first; the one before, when kept, second),
/// as TOML to paste under the scenario.
pub fn starter(runs: &[SavedRun<'_>], normalize: &Normalize) -> String {
    let Some(latest) = runs.first() else {
        return String::new();
    };
    let latest = groups_of(latest, normalize);
    let previous = runs.get(1).map(|r| groups_of(r, normalize));
    let mut ordered: Vec<(&Group, &GroupRun)> = latest.iter().collect();
    ordered.sort_by_key(|(_, g)| g.order);
    let mut out = String::new();
    for (group, now) in &ordered {
        // A group of the latest run only: its values are judged as a single run's
        // are; its count is not written (one run cannot agree on it with the other).
        let before = previous.as_ref().and_then(|p| p.get(*group));
        let single = before.is_none();
        let count = match (&previous, before) {
            (None, _) => Some(now.count),
            (Some(_), Some(b)) if b.count == now.count => Some(now.count),
            _ => None,
        }
        .filter(|n| *n > 1 && countable(group, &ordered));
        write_group(&mut out, group, now, before, single, count);
    }
    out
}

/// Whether a group's `count` would count exactly its spans: no wildcard in its names
/// (a name is a glob), and no other group of its name and kind when it has no parent
/// (its selector would pick those too).
fn countable(group: &Group, all: &[(&Group, &GroupRun)]) -> bool {
    let (name, kind, parent) = group;
    let wild = |s: &str| s.contains(['*', '?']);
    !wild(name)
        && !parent.as_deref().is_some_and(wild)
        && (parent.is_some()
            || !all
                .iter()
                .any(|(g, _)| g.0 == *name && g.1 == *kind && g.2.is_some()))
}

fn write_group(
    out: &mut String,
    (name, kind, parent): &Group,
    now: &GroupRun,
    before: Option<&GroupRun>,
    single: bool,
    count: Option<usize>,
) {
    out.push_str("\n[[scenario.expect.span]]\n");
    let _ = writeln!(out, "name = {}", quoted(name));
    let _ = writeln!(out, "kind = \"{kind}\"");
    if let Some(p) = parent {
        let _ = writeln!(out, "parent = {}", quoted(p));
    }
    if now.error && before.is_none_or(|b| b.error) {
        out.push_str("status = \"ERROR\"\n");
    }
    let attrs = inline(&agreed(&now.attrs, before.map(|b| &b.attrs), single));
    if !attrs.is_empty() {
        let _ = writeln!(out, "attrs = {{ {attrs} }}");
    }
    let events: Vec<String> = now
        .events
        .iter()
        .filter(|(n, _)| before.is_none_or(|b| b.events.contains_key(*n)))
        .map(|(n, a)| {
            let a = inline(&agreed(a, before.and_then(|b| b.events.get(n)), single));
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
    let mut links: Vec<&String> = now
        .links
        .iter()
        .filter(|n| before.is_none_or(|b| b.links.contains(n)))
        .collect();
    links.sort();
    links.dedup();
    if !links.is_empty() {
        let to: Vec<String> = links
            .iter()
            .map(|n| format!("{{ to = {} }}", quoted(n)))
            .collect();
        let _ = writeln!(out, "links = [{}]", to.join(", "));
    }
    if let Some(n) = count {
        let _ = writeln!(out, "count = {{ eq = {n} }}");
    }
}

/// The attributes with one value in `now` and, when there is one, `before` too; from a
/// single run, those that do not look like ids or times.
fn agreed(now: &Agreed, before: Option<&Agreed>, single: bool) -> BTreeMap<String, AttrValue> {
    now.iter()
        .filter_map(|(k, v)| {
            let v = v.as_ref()?;
            let kept = match before {
                Some(b) => b.get(k).is_some_and(|x| x.as_ref() == Some(v)),
                None => !(single && looks_volatile(v)),
            };
            kept.then(|| (k.clone(), v.clone()))
        })
        .collect()
}

/// The groups of one run's spans, each with what all its spans had.
fn groups_of(run: &SavedRun<'_>, normalize: &Normalize) -> HashMap<Group, GroupRun> {
    let spans = run.spans;
    let by_id: HashMap<(&str, &str), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.trace_id.as_str(), s.span_id.as_str()), i))
        .collect();
    let mut groups: HashMap<Group, GroupRun> = HashMap::new();
    for (pos, i) in tree_order(spans).into_iter().enumerate() {
        let s = &spans[i];
        let parent = s
            .parent_span_id
            .as_deref()
            .and_then(|p| by_id.get(&(s.trace_id.as_str(), p)))
            .filter(|&&p| p != i)
            .map(|&p| spans[p].name.clone());
        let attrs: BTreeMap<String, AttrValue> = s
            .attributes
            .iter()
            .filter(|(k, _)| !normalize.ignores(k, s.kind))
            .filter_map(|(k, v)| Some((k.clone(), stable(v, run.identities)?)))
            .collect();
        let mut events: BTreeMap<String, Agreed> = BTreeMap::new();
        for e in &s.events {
            let a: BTreeMap<String, AttrValue> = e
                .attributes
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), stable(v, run.identities)?)))
                .collect();
            match events.get_mut(&e.name) {
                Some(had) => merge(had, &a),
                None => {
                    events.insert(e.name.clone(), fresh(&a));
                }
            }
        }
        let links: Vec<String> = s
            .links
            .iter()
            .filter_map(|l| by_id.get(&(l.trace_id.as_str(), l.span_id.as_str())))
            .map(|&t| spans[t].name.clone())
            .collect();
        let key = (s.name.clone(), s.kind.as_str(), parent);
        match groups.get_mut(&key) {
            None => {
                groups.insert(
                    key,
                    GroupRun {
                        count: 1,
                        attrs: fresh(&attrs),
                        error: s.status == StatusCode::Error,
                        events,
                        links,
                        order: pos,
                    },
                );
            }
            Some(g) => {
                g.count += 1;
                merge(&mut g.attrs, &attrs);
                g.error &= s.status == StatusCode::Error;
                g.events.retain(|name, _| events.contains_key(name));
                for (name, had) in &mut g.events {
                    let now: BTreeMap<String, AttrValue> = events[name]
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                        .collect();
                    merge(had, &now);
                }
                g.links.retain(|n| links.contains(n));
            }
        }
    }
    groups
}

fn fresh(attrs: &BTreeMap<String, AttrValue>) -> Agreed {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

/// Merges one span's attributes into what a group had: a key keeps its value only
/// when every span had it with that value.
fn merge(had: &mut Agreed, now: &BTreeMap<String, AttrValue>) {
    for (k, v) in had.iter_mut() {
        if now.get(k) != v.as_ref() {
            *v = None;
        }
    }
}

/// `v` as an expectation can hold it, checked against the run's raw values: nothing
/// when it names one of the scenario's containers (its id, host name or address:
/// another every run), holds a masked secret (the saved spans are masked, the checked
/// ones are not), or is too long.
fn stable(v: &AttrValue, identities: &BTreeMap<String, String>) -> Option<AttrValue> {
    if let AttrValue::Str(text) = v
        && (text.contains(MASK) || with_service_ids(text, identities).is_some())
    {
        return None;
    }
    (v.to_string().len() <= MAX_VALUE).then(|| v.clone())
}

/// An id (16 or more hex digits, a UUID) or a timestamp (an integer from 1e9 up: an
/// epoch in seconds or finer; an ISO 8601 date and time).
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

/// The attributes as the inside of an inline table.
fn inline(attrs: &BTreeMap<String, AttrValue>) -> String {
    let parts: Vec<String> = attrs
        .iter()
        .filter_map(|(k, v)| {
            let value = match v {
                AttrValue::Str(s) => quoted(s),
                AttrValue::Int(i) => i.to_string(),
                AttrValue::Double(d) if d.is_finite() => format!("{d:?}"),
                AttrValue::Bool(b) => b.to_string(),
                // Lists and non-finite numbers have no equality predicate to write.
                _ => return None,
            };
            Some(format!("{} = {value}", crate::model::reader::toml_key(k)))
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
    fn container_identities_masks_and_groups_of_one_run_are_not_trusted() {
        let ids = BTreeMap::from([("3f2a9c1b7d2e".to_owned(), "app".to_owned())]);
        let latest = spans(&[
            r#"{"name":"s","trace_id":"t","span_id":"a","attributes":{"host.name":"3f2a9c1b7d2e","token":"***","route":"/x"}}"#,
            r#"{"name":"new","trace_id":"t","span_id":"b","attributes":{"request.id":"0af7651916cd43dd8448eb211c80319c","route":"/y"}}"#,
            r#"{"name":"new","trace_id":"t","span_id":"c","attributes":{"request.id":"0af7651916cd43dd8448eb211c80319c","route":"/y"}}"#,
        ]);
        let before = spans(&[
            r#"{"name":"s","trace_id":"t","span_id":"a","attributes":{"host.name":"3f2a9c1b7d2e","token":"***","route":"/x"}}"#,
        ]);
        let runs = [
            SavedRun {
                spans: &latest,
                identities: &ids,
            },
            SavedRun {
                spans: &before,
                identities: &ids,
            },
        ];
        let text = starter(&runs, &Normalize::new(true, &[]));
        // The container's name and the masked secret are not what the run checks.
        assert!(
            text.contains("name = \"s\"\nkind = \"internal\"\nattrs = { route = \"/x\" }\n"),
            "{text}"
        );
        // "new" is in the latest run only: no id-like value, and no count.
        assert!(
            text.contains("name = \"new\"\nkind = \"internal\"\nattrs = { route = \"/y\" }\n"),
            "{text}"
        );
        assert!(!text.contains("count"), "{text}");
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
