//! The selector engine (SPEC §15): which of a scenario's spans a selector picks and,
//! for a span it does not pick, which criteria failed (what the report shows of the
//! closest spans). Nested selectors (`parent`, `ancestor`, a link's `to`) are matched
//! once per trace and remembered, so a check costs the spans times the criteria.

use crate::model::{
    AttrsExpect, EventsExpect, LinkExpect, Predicate, Predicates, Scalar, Selector,
};
use crate::otel::{AttrValue, SpanRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

/// A scenario's spans with their tree: each span's parent and children, by position.
pub(crate) struct Trace<'a> {
    pub spans: &'a [SpanRecord],
    by_id: HashMap<(&'a str, &'a str), usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
}

impl<'a> Trace<'a> {
    pub fn new(spans: &'a [SpanRecord]) -> Self {
        let by_id: HashMap<(&str, &str), usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.trace_id.as_str(), s.span_id.as_str()), i))
            .collect();
        let parent: Vec<Option<usize>> = spans
            .iter()
            .map(|s| {
                let p = s.parent_span_id.as_deref()?;
                by_id.get(&(s.trace_id.as_str(), p)).copied()
            })
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        Self {
            spans,
            by_id,
            parent,
            children,
        }
    }

    /// The span with these ids, if collected.
    pub fn find(&self, trace_id: &str, span_id: &str) -> Option<usize> {
        self.by_id.get(&(trace_id, span_id)).copied()
    }

    /// Its parent among the collected spans.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parent[i]
    }

    /// Its ancestors, nearest first; a cycle of parent ids (hostile input) ends the
    /// walk.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut seen = HashSet::from([i]);
        let mut cur = self.parent[i];
        std::iter::from_fn(move || {
            let p = cur?;
            if !seen.insert(p) {
                return None;
            }
            cur = self.parent[p];
            Some(p)
        })
    }

    /// Its descendants, each once (a cycle ends the walk).
    pub fn descendants(&self, i: usize) -> Vec<usize> {
        let mut seen = HashSet::from([i]);
        let mut out = Vec::new();
        let mut stack = self.children[i].clone();
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                out.push(c);
                stack.extend(&self.children[c]);
            }
        }
        out
    }
}

/// One criterion a span failed: what, expected, found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    /// The criterion: `name`, `kind`, `attribute "http.route"`, `parent`, ….
    pub what: String,
    /// What it asks for.
    pub expected: String,
    /// What the span has.
    pub found: String,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.what, self.expected, self.found
        )
    }
}

/// A span a selector did not pick, with what it failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearMiss {
    /// The span, described.
    pub span: String,
    /// Its span id.
    pub span_id: String,
    /// The criteria it failed.
    pub misses: Vec<Miss>,
}

/// Matches selectors against one trace, remembering the nested ones.
pub(crate) struct Matcher<'t, 'a> {
    pub trace: &'t Trace<'a>,
    memo: HashMap<usize, Rc<Vec<bool>>>,
}

impl<'t, 'a> Matcher<'t, 'a> {
    pub fn new(trace: &'t Trace<'a>) -> Self {
        Self {
            trace,
            memo: HashMap::new(),
        }
    }

    /// For each span, whether `sel` picks it.
    pub fn hits(&mut self, sel: &Selector) -> Rc<Vec<bool>> {
        let key = sel as *const Selector as usize;
        if let Some(h) = self.memo.get(&key) {
            return h.clone();
        }
        let hits: Vec<bool> = (0..self.trace.spans.len())
            .map(|i| self.check(sel, i, true).is_empty())
            .collect();
        let hits = Rc::new(hits);
        self.memo.insert(key, hits.clone());
        hits
    }

    /// The positions of the spans `sel` picks.
    pub fn select(&mut self, sel: &Selector) -> Vec<usize> {
        let hits = self.hits(sel);
        (0..hits.len()).filter(|i| hits[*i]).collect()
    }

    /// Every criterion of `sel` span `i` fails.
    pub fn misses(&mut self, sel: &Selector, i: usize) -> Vec<Miss> {
        self.check(sel, i, false)
    }

    /// The spans `sel` does not pick that come closest (fewest failed criteria, then
    /// collection order), at most `n`.
    pub fn nearest(&mut self, sel: &Selector, n: usize) -> Vec<NearMiss> {
        let hits = self.hits(sel);
        let mut near: Vec<(usize, Vec<Miss>)> = (0..hits.len())
            .filter(|i| !hits[*i])
            .map(|i| (i, self.misses(sel, i)))
            .collect();
        // A span of the name comes first: it is the one the user meant.
        near.sort_by_key(|(i, m)| (m.first().is_some_and(|x| x.what == "name"), m.len(), *i));
        near.truncate(n);
        near.into_iter()
            .map(|(i, misses)| NearMiss {
                span: self.trace.spans[i].describe(),
                span_id: self.trace.spans[i].span_id.clone(),
                misses,
            })
            .collect()
    }

    fn check(&mut self, sel: &Selector, i: usize, first: bool) -> Vec<Miss> {
        let trace = self.trace;
        let s = &trace.spans[i];
        let mut out = Vec::new();
        let mut miss = |what: &str, expected: String, found: String| {
            out.push(Miss {
                what: what.to_owned(),
                expected,
                found,
            });
        };
        if let Some(n) = &sel.name
            && !n.value.is_match(&s.name)
        {
            miss(
                "name",
                format!("\"{}\"", n.value),
                format!("\"{}\"", s.name),
            );
        }
        if let Some(k) = &sel.kind
            && s.kind != k.value
        {
            miss("kind", k.value.as_str().into(), s.kind.as_str().into());
        }
        if let Some(svc) = &sel.service {
            match s.resource.get("service.name") {
                Some(AttrValue::Str(name)) if svc.value.is_match(name) => {}
                Some(other) => miss("service", format!("\"{}\"", svc.value), other.to_string()),
                None => miss(
                    "service",
                    format!("\"{}\"", svc.value),
                    "not set (no service.name in its resource)".into(),
                ),
            }
        }
        if let Some(st) = &sel.status
            && s.status != st.value
        {
            miss("status", st.value.as_str().into(), s.status.as_str().into());
        }
        if first && !out.is_empty() {
            return out;
        }
        if let Some(a) = &sel.attrs {
            out.extend(attrs_misses(a, &s.attributes, "attribute"));
        }
        if let Some(d) = &sel.duration_ms {
            let ms = s.duration_ms();
            let failed: Vec<String> = d
                .all
                .iter()
                .filter(|p| !number_holds(&p.value, ms))
                .map(|p| p.value.to_string())
                .collect();
            if !failed.is_empty() {
                out.push(Miss {
                    what: "duration".into(),
                    expected: format!("{} ms", failed.join(" and ")),
                    found: format!("{ms:.1} ms"),
                });
            }
        }
        if let Some(e) = &sel.events {
            out.extend(events_misses(e, s));
        }
        if first && !out.is_empty() {
            return out;
        }
        for l in &sel.links {
            if let Some(m) = self.link_miss(l, i) {
                out.push(m);
            }
        }
        if let Some(p) = &sel.parent {
            let hits = self.hits(p);
            match self.trace.parent(i) {
                Some(j) if hits[j] => {}
                Some(j) => out.push(Miss {
                    what: "parent".into(),
                    expected: p.to_string(),
                    found: format!("\"{}\"", trace.spans[j].name),
                }),
                None => out.push(Miss {
                    what: "parent".into(),
                    expected: p.to_string(),
                    found: "none among the collected spans".into(),
                }),
            }
        }
        if let Some(a) = &sel.ancestor {
            let hits = self.hits(a);
            if !self.trace.ancestors(i).any(|j| hits[j]) {
                let chain: Vec<String> = self
                    .trace
                    .ancestors(i)
                    .take(6)
                    .map(|j| format!("\"{}\"", trace.spans[j].name))
                    .collect();
                out.push(Miss {
                    what: "ancestor".into(),
                    expected: a.to_string(),
                    found: if chain.is_empty() {
                        "no ancestor among the collected spans".into()
                    } else {
                        format!("ancestors {}", chain.join(" ← "))
                    },
                });
            }
        }
        out
    }

    fn link_miss(&mut self, l: &LinkExpect, i: usize) -> Option<Miss> {
        let trace = self.trace;
        let s = &trace.spans[i];
        let to = l.to.as_deref().map(|t| self.hits(t));
        let fits = |link: &crate::otel::SpanLink| {
            let target_ok = to.as_ref().is_none_or(|hits| {
                trace
                    .find(&link.trace_id, &link.span_id)
                    .is_some_and(|j| hits[j])
            });
            target_ok
                && l.attrs
                    .iter()
                    .all(|(k, p)| holds_all(p, link.attributes.get(&k.value)).is_ok())
        };
        let found = s.links.iter().any(fits);
        let absent = l.absent.as_ref().is_some_and(|a| a.value);
        if found != absent {
            return None;
        }
        let shown: Vec<String> = s
            .links
            .iter()
            .take(5)
            .map(|link| match trace.find(&link.trace_id, &link.span_id) {
                Some(j) => format!("a link to \"{}\"", trace.spans[j].name),
                None => format!("a link to span {} (not collected)", link.span_id),
            })
            .collect();
        Some(Miss {
            what: "links".into(),
            expected: l.to_string(),
            found: if absent {
                "such a link".into()
            } else if shown.is_empty() {
                "no link".into()
            } else {
                shown.join(", ")
            },
        })
    }
}

/// The failed predicates of `a` on `attrs` (`what` names the table: `attribute`,
/// `resource attribute`).
pub(crate) fn attrs_misses(
    a: &AttrsExpect,
    attrs: &BTreeMap<String, AttrValue>,
    what: &str,
) -> Vec<Miss> {
    let mut out = Vec::new();
    for (k, p) in a.all.iter() {
        if let Err(found) = holds_all(p, attrs.get(&k.value)) {
            out.push(Miss {
                what: format!("{what} \"{}\"", k.value),
                expected: p.to_string(),
                found,
            });
        }
    }
    if !a.any.is_empty()
        && !a
            .any
            .iter()
            .any(|(k, p)| holds_all(p, attrs.get(&k.value)).is_ok())
    {
        let each: Vec<String> = a
            .any
            .iter()
            .map(|(k, p)| {
                let found = attrs
                    .get(&k.value)
                    .map_or_else(|| "not set".to_owned(), ToString::to_string);
                format!("{} {p} (found {found})", k.value)
            })
            .collect();
        out.push(Miss {
            what: format!("{what}s (any)"),
            expected: format!("one of: {}", each.join("; ")),
            found: "none holds".into(),
        });
    }
    out
}

fn events_misses(e: &EventsExpect, s: &SpanRecord) -> Vec<Miss> {
    let mut out = Vec::new();
    let names: Vec<&str> = s.events.iter().map(|e| e.name.as_str()).collect();
    let seen = || {
        if names.is_empty() {
            "no events".to_owned()
        } else {
            let shown: Vec<String> = names.iter().take(8).map(|n| format!("\"{n}\"")).collect();
            format!("events {}", shown.join(", "))
        }
    };
    for n in &e.all {
        if !names.contains(&n.value.as_str()) {
            out.push(Miss {
                what: format!("event \"{}\"", n.value),
                expected: "present".into(),
                found: seen(),
            });
        }
    }
    if !e.any.is_empty() && !e.any.iter().any(|n| names.contains(&n.value.as_str())) {
        let any: Vec<&str> = e.any.iter().map(|n| n.value.as_str()).collect();
        out.push(Miss {
            what: "events (any)".into(),
            expected: format!("one of {}", any.join(", ")),
            found: seen(),
        });
    }
    for want in &e.each {
        let named: Vec<_> = s
            .events
            .iter()
            .filter(|ev| want.name.value.is_match(&ev.name))
            .collect();
        let fits = named.iter().find(|ev| {
            want.attrs
                .iter()
                .all(|(k, p)| holds_all(p, ev.attributes.get(&k.value)).is_ok())
        });
        let absent = want.absent.as_ref().is_some_and(|a| a.value);
        let found = match (fits, absent) {
            (Some(_), false) | (None, true) => continue,
            (Some(ev), true) => {
                let attrs: Vec<String> = ev
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("event \"{}\" {{{}}}", ev.name, attrs.join(", "))
            }
            (None, false) => match named.first() {
                // The name is there: say which attribute predicate failed.
                Some(ev) => want
                    .attrs
                    .iter()
                    .find_map(|(k, p)| {
                        holds_all(p, ev.attributes.get(&k.value))
                            .err()
                            .map(|f| format!("event \"{}\" with {} {f}", ev.name, k.value))
                    })
                    .unwrap_or_else(seen),
                None => seen(),
            },
        };
        out.push(Miss {
            what: "events".into(),
            expected: want.to_string(),
            found,
        });
    }
    out
}

/// Whether every predicate holds of `v` (`None`: not set); else what was found.
pub(crate) fn holds_all(p: &Predicates, v: Option<&AttrValue>) -> Result<(), String> {
    for one in &p.all {
        holds(&one.value, v)?;
    }
    Ok(())
}

fn type_word(v: &AttrValue) -> &'static str {
    match v {
        AttrValue::Bool(_) => "a boolean",
        AttrValue::Int(_) => "an integer",
        AttrValue::Double(_) => "a float",
        AttrValue::Str(_) => "a string",
        AttrValue::Array(_) => "a list",
    }
}

/// Whether `p` holds of `v`; else what was found (with the type, where that is why).
pub(crate) fn holds(p: &Predicate, v: Option<&AttrValue>) -> Result<(), String> {
    let Some(v) = v else {
        return match p {
            Predicate::Exists(false) => Ok(()),
            _ => Err("not set".into()),
        };
    };
    let typed = |v: &AttrValue, want: &str| format!("{v} ({}, not {want})", type_word(v));
    let ok = match p {
        Predicate::Exists(b) => *b,
        Predicate::Eq(s) => v.matches(s),
        Predicate::Ne(s) => !v.matches(s),
        Predicate::In(list) => list.iter().any(|s| v.matches(s)),
        Predicate::Gt(_) | Predicate::Gte(_) | Predicate::Lt(_) | Predicate::Lte(_) => match v {
            AttrValue::Int(i) => number_holds(p, *i as f64),
            AttrValue::Double(d) => number_holds(p, *d),
            other => return Err(typed(other, "a number")),
        },
        Predicate::Regex(re) => match v {
            AttrValue::Str(s) => re.regex().is_match(s),
            other => return Err(typed(other, "a string")),
        },
        Predicate::Contains(want) => match (v, want) {
            (AttrValue::Str(s), Scalar::String(w)) => s.contains(w.as_str()),
            (AttrValue::Array(items), w) => items.iter().any(|i| i.matches(w)),
            (other, _) => return Err(typed(other, "a string or a list")),
        },
    };
    if ok { Ok(()) } else { Err(v.to_string()) }
}

/// A numeric comparison of `n`; any other predicate holds.
fn number_holds(p: &Predicate, n: f64) -> bool {
    match p {
        Predicate::Gt(x) => n > *x,
        Predicate::Gte(x) => n >= *x,
        Predicate::Lt(x) => n < *x,
        Predicate::Lte(x) => n <= *x,
        _ => true,
    }
}
