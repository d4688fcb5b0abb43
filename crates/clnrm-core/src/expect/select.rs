//! The selector engine (SPEC §15): which of a scenario's spans a selector picks and,
//! for a span it does not pick, which criteria failed (what the report shows of the
//! closest spans). Nested selectors (`parent`, `ancestor`, a link's `to`) are matched
//! once per trace and remembered: a selector costs the spans times its criteria, and
//! `ancestor` the depth of each span's chain more.

use crate::model::{
    AttrsExpect, EventsExpect, LinkExpect, NamePattern, Predicate, Predicates, Scalar, Selector,
};
use crate::otel::{AttrValue, SpanRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

/// A scenario's spans with their tree: each span's parent and children, by position.
pub(crate) struct Trace<'a> {
    pub spans: &'a [SpanRecord],
    by_id: HashMap<(&'a str, &'a str), usize>,
    /// The spans of each name: a selector with a name looks at those only.
    by_name: HashMap<&'a str, Vec<usize>>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    /// Spans on a cycle of parent ids (hostile input).
    on_cycle: Vec<bool>,
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
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in spans.iter().enumerate() {
            by_name.entry(s.name.as_str()).or_default().push(i);
        }
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let on_cycle = on_cycle(&parent);
        Self {
            spans,
            by_id,
            by_name,
            parent,
            children,
            on_cycle,
        }
    }

    /// The span with these ids, if collected.
    pub fn find(&self, trace_id: &str, span_id: &str) -> Option<usize> {
        self.by_id.get(&(trace_id, span_id)).copied()
    }

    /// The spans whose name `pattern` matches, in groups of one name.
    fn named<'p>(&'p self, pattern: &'p NamePattern) -> impl Iterator<Item = &'p [usize]> + 'p {
        let one = pattern.literal().map(|n| self.by_name.get(n));
        let all = one.is_none().then(|| {
            self.by_name
                .iter()
                .filter(|(name, _)| pattern.is_match(name))
                .map(|(_, at)| at.as_slice())
        });
        one.flatten()
            .map(Vec::as_slice)
            .into_iter()
            .chain(all.into_iter().flatten())
    }

    /// Its parent among the collected spans.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parent[i]
    }

    /// Its ancestors, nearest first; a cycle of parent ids (hostile input) ends the
    /// walk.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        // No set of the seen is kept (this runs for every span of every `ancestor`):
        // the walk ends where it comes back to the first span on a cycle it met.
        let mut entered: Option<usize> = self.on_cycle[i].then_some(i);
        let mut cur = self.parent[i];
        std::iter::from_fn(move || {
            let p = cur?;
            if entered == Some(p) {
                return None;
            }
            if entered.is_none() && self.on_cycle[p] {
                entered = Some(p);
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

/// Which spans are on a cycle of `parent` links, in one pass: each span is walked
/// up once, and a walk that meets its own path has found a cycle.
fn on_cycle(parent: &[Option<usize>]) -> Vec<bool> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; parent.len()];
    let mut cyclic = vec![false; parent.len()];
    let mut path = Vec::new();
    for start in 0..parent.len() {
        let mut cur = Some(start);
        while let Some(i) = cur.filter(|i| state[*i] == NEW) {
            state[i] = ON_PATH;
            path.push(i);
            cur = parent[i];
        }
        if let Some(i) = cur.filter(|i| state[*i] == ON_PATH) {
            let from = path.iter().position(|p| *p == i).unwrap_or(0);
            for p in &path[from..] {
                cyclic[*p] = true;
            }
        }
        for p in path.drain(..) {
            state[p] = DONE;
        }
    }
    cyclic
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

/// Where the criteria a span fails go.
pub(crate) enum Sink<'o> {
    /// Nowhere: the first ends the check (whether a selector picks a span).
    Stop,
    /// Counted, no text made (ranking the spans a failure may show).
    Count(&'o mut usize),
    /// Written out.
    Write(&'o mut Vec<Miss>),
}

impl Sink<'_> {
    /// A failed criterion (`miss` makes its text, only when written out); whether
    /// the check goes on.
    fn fail(&mut self, miss: impl FnOnce() -> Miss) -> bool {
        match self {
            Sink::Stop => false,
            Sink::Count(n) => {
                **n += 1;
                true
            }
            Sink::Write(out) => {
                out.push(miss());
                true
            }
        }
    }
}

/// Matches selectors (that live as long as `'s`) against one trace, remembering each
/// selector's matches by its address, which `'s` keeps fixed.
pub(crate) struct Matcher<'t, 'a, 's> {
    pub trace: &'t Trace<'a>,
    memo: HashMap<*const Selector, Rc<Vec<bool>>>,
    selectors: std::marker::PhantomData<&'s Selector>,
}

impl<'t, 'a, 's> Matcher<'t, 'a, 's> {
    pub fn new(trace: &'t Trace<'a>) -> Self {
        Self {
            trace,
            memo: HashMap::new(),
            selectors: std::marker::PhantomData,
        }
    }

    /// For each span, whether `sel` picks it.
    pub fn hits(&mut self, sel: &'s Selector) -> Rc<Vec<bool>> {
        let key: *const Selector = sel;
        if let Some(h) = self.memo.get(&key) {
            return h.clone();
        }
        let trace = self.trace;
        let mut hits = vec![false; trace.spans.len()];
        match &sel.name {
            Some(name) => {
                for at in trace.named(&name.value) {
                    for &i in at {
                        hits[i] = self.check(sel, i, &mut Sink::Stop);
                    }
                }
            }
            None => {
                for (i, hit) in hits.iter_mut().enumerate() {
                    *hit = self.check(sel, i, &mut Sink::Stop);
                }
            }
        }
        let hits = Rc::new(hits);
        self.memo.insert(key, hits.clone());
        hits
    }

    /// The positions of the spans `sel` picks.
    pub fn select(&mut self, sel: &'s Selector) -> Vec<usize> {
        let hits = self.hits(sel);
        (0..hits.len()).filter(|i| hits[*i]).collect()
    }

    /// Every criterion of `sel` span `i` fails.
    pub fn misses(&mut self, sel: &'s Selector, i: usize) -> Vec<Miss> {
        let key: *const Selector = sel;
        if self.memo.get(&key).is_some_and(|h| h[i]) {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.check(sel, i, &mut Sink::Write(&mut out));
        out
    }

    /// The spans `sel` does not pick that come closest (fewest failed criteria, then
    /// collection order), at most `n`.
    pub fn nearest(&mut self, sel: &'s Selector, n: usize) -> Vec<NearMiss> {
        let hits = self.hits(sel);
        let trace = self.trace;
        // A span of the name comes first (it is the one the user meant), then the
        // fewest failed criteria: when the name gives enough such spans, only they are
        // ranked. Ranked on counts; described only if shown.
        let named: Vec<usize> = match &sel.name {
            Some(name) => trace
                .named(&name.value)
                .flatten()
                .copied()
                .filter(|i| !hits[*i])
                .collect(),
            None => Vec::new(),
        };
        let candidates: Vec<usize> = if named.len() >= n {
            named
        } else {
            (0..hits.len()).filter(|i| !hits[*i]).collect()
        };
        let mut ranked: Vec<(bool, usize, usize)> = candidates
            .into_iter()
            .map(|i| {
                let mut count = 0;
                self.check(sel, i, &mut Sink::Count(&mut count));
                let other_name = sel
                    .name
                    .as_ref()
                    .is_some_and(|name| !name.value.is_match(&trace.spans[i].name));
                (other_name, count, i)
            })
            .collect();
        if ranked.len() > n && n > 0 {
            ranked.select_nth_unstable(n - 1);
            ranked.truncate(n);
        }
        ranked.sort_unstable();
        ranked.truncate(n);
        ranked
            .into_iter()
            .map(|(_, _, i)| NearMiss {
                span: trace.spans[i].describe(),
                span_id: trace.spans[i].span_id.clone(),
                misses: self.misses(sel, i),
            })
            .collect()
    }

    /// Whether `sel` picks span `i`; each criterion it fails goes to `sink` (with
    /// [`Sink::Stop`], the path of every span of every selector, the first failure
    /// ends the check and no text is made).
    fn check(&mut self, sel: &'s Selector, i: usize, sink: &mut Sink<'_>) -> bool {
        let trace = self.trace;
        let s = &trace.spans[i];
        let mut fits = true;
        // A failed criterion: the end of a plain check, or a miss counted or written.
        macro_rules! failed {
            ($what:expr, $expected:expr, $found:expr) => {{
                fits = false;
                let go_on = sink.fail(|| Miss {
                    what: $what.into(),
                    expected: $expected,
                    found: $found,
                });
                if !go_on {
                    return false;
                }
            }};
        }
        if let Some(n) = &sel.name
            && !n.value.is_match(&s.name)
        {
            failed!(
                "name",
                format!("\"{}\"", n.value),
                format!("\"{}\"", s.name)
            );
        }
        if let Some(k) = &sel.kind
            && s.kind != k.value
        {
            failed!("kind", k.value.as_str().into(), s.kind.as_str().into());
        }
        if let Some(svc) = &sel.service {
            match s.resource.get("service.name") {
                Some(AttrValue::Str(name)) if svc.value.is_match(name) => {}
                Some(other) => {
                    failed!("service", format!("\"{}\"", svc.value), other.to_string())
                }
                None => failed!(
                    "service",
                    format!("\"{}\"", svc.value),
                    "not set (no service.name in its resource)".into()
                ),
            }
        }
        if let Some(st) = &sel.status
            && s.status != st.value
        {
            failed!("status", st.value.as_str().into(), s.status.as_str().into());
        }
        if let Some(a) = &sel.attrs {
            fits &= attrs_check(a, &s.attributes, "attribute", sink);
            if !fits && matches!(sink, Sink::Stop) {
                return false;
            }
        }
        if let Some(d) = &sel.duration_ms {
            let ms = s.duration_ms();
            if d.all.iter().any(|p| !number_holds(&p.value, ms)) {
                failed!(
                    "duration",
                    {
                        let failed: Vec<String> = d
                            .all
                            .iter()
                            .filter(|p| !number_holds(&p.value, ms))
                            .map(|p| p.value.to_string())
                            .collect();
                        format!("{} ms", failed.join(" and "))
                    },
                    format!("{ms:.1} ms")
                );
            }
        }
        if let Some(e) = &sel.events {
            fits &= events_check(e, s, sink);
            if !fits && matches!(sink, Sink::Stop) {
                return false;
            }
        }
        for l in &sel.links {
            if !self.link_fits(l, i) {
                failed!("links", l.to_string(), self.links_found(l, i));
            }
        }
        if let Some(p) = &sel.parent {
            let hits = self.hits(p);
            match trace.parent(i) {
                Some(j) if hits[j] => {}
                Some(j) => failed!("parent", p.to_string(), self.parent_found(p, j)),
                None => failed!(
                    "parent",
                    p.to_string(),
                    "none among the collected spans".into()
                ),
            }
        }
        if let Some(a) = &sel.ancestor {
            let hits = self.hits(a);
            if !trace.ancestors(i).any(|j| hits[j]) {
                let chain: Vec<String> = trace
                    .ancestors(i)
                    .take(6)
                    .map(|j| format!("\"{}\"", trace.spans[j].name))
                    .collect();
                failed!(
                    "ancestor",
                    a.to_string(),
                    if chain.is_empty() {
                        "no ancestor among the collected spans".into()
                    } else {
                        format!("ancestors {}", chain.join(" ← "))
                    }
                );
            }
        }
        fits
    }

    /// What the parent `j` is instead of what `p` asks: its name and, when the name
    /// is the one asked for, what else of `p` it fails.
    fn parent_found(&mut self, p: &'s Selector, j: usize) -> String {
        let name = &self.trace.spans[j].name;
        let misses = self.misses(p, j);
        if misses.is_empty() || misses.iter().any(|m| m.what == "name") {
            format!("\"{name}\"")
        } else {
            let why: Vec<String> = misses.iter().map(ToString::to_string).collect();
            format!("\"{name}\", which fails {}", why.join("; "))
        }
    }

    /// Whether span `i` has the link `l` asks for (or, with `absent`, has none).
    fn link_fits(&mut self, l: &'s LinkExpect, i: usize) -> bool {
        let trace = self.trace;
        let to = l.to.as_deref().map(|t| self.hits(t));
        let found = trace.spans[i].links.iter().any(|link| {
            to.as_ref().is_none_or(|hits| {
                trace
                    .find(&link.trace_id, &link.span_id)
                    .is_some_and(|j| hits[j])
            }) && l
                .attrs
                .iter()
                .all(|(k, p)| holds_all(p, link.attributes.get(&k.value)).is_ok())
        });
        found != l.absent.as_ref().is_some_and(|a| a.value)
    }

    /// What span `i` has instead of the link `l` asks for.
    fn links_found(&self, l: &LinkExpect, i: usize) -> String {
        let trace = self.trace;
        if l.absent.as_ref().is_some_and(|a| a.value) {
            return "such a link".into();
        }
        let shown: Vec<String> = trace.spans[i]
            .links
            .iter()
            .take(5)
            .map(|link| match trace.find(&link.trace_id, &link.span_id) {
                Some(j) => format!("a link to \"{}\"", trace.spans[j].name),
                None => format!("a link to span {} (not collected)", link.span_id),
            })
            .collect();
        if shown.is_empty() {
            "no link".into()
        } else {
            shown.join(", ")
        }
    }
}

/// Whether the predicates of `a` hold on `attrs`; each failure goes to `sink`
/// (`what` names the table: `attribute`, `resource attribute`).
pub(crate) fn attrs_check(
    a: &AttrsExpect,
    attrs: &BTreeMap<String, AttrValue>,
    what: &str,
    sink: &mut Sink<'_>,
) -> bool {
    let mut fits = true;
    for (k, p) in a.all.iter() {
        let v = attrs.get(&k.value);
        if let Err(why) = holds_all(p, v) {
            fits = false;
            let go_on = sink.fail(|| Miss {
                what: format!("{what} \"{}\"", k.value),
                expected: p.to_string(),
                found: why.found(v),
            });
            if !go_on {
                return false;
            }
        }
    }
    if !a.any.is_empty()
        && !a
            .any
            .iter()
            .any(|(k, p)| holds_all(p, attrs.get(&k.value)).is_ok())
    {
        sink.fail(|| {
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
            Miss {
                what: format!("{what}s (any)"),
                expected: format!("one of: {}", each.join("; ")),
                found: "none holds".into(),
            }
        });
        return false;
    }
    fits
}

/// Whether span `s` has the events `e` asks for; each failure goes to `sink`.
fn events_check(e: &EventsExpect, s: &SpanRecord, sink: &mut Sink<'_>) -> bool {
    let has = |n: &str| s.events.iter().any(|ev| ev.name == n);
    let seen = || {
        if s.events.is_empty() {
            "no events".to_owned()
        } else {
            let shown: Vec<String> = s
                .events
                .iter()
                .take(8)
                .map(|ev| format!("\"{}\"", ev.name))
                .collect();
            format!("events {}", shown.join(", "))
        }
    };
    let mut fits = true;
    for n in &e.all {
        if !has(&n.value) {
            fits = false;
            let go_on = sink.fail(|| Miss {
                what: format!("event \"{}\"", n.value),
                expected: "present".into(),
                found: seen(),
            });
            if !go_on {
                return false;
            }
        }
    }
    if !e.any.is_empty() && !e.any.iter().any(|n| has(&n.value)) {
        fits = false;
        let go_on = sink.fail(|| {
            let any: Vec<&str> = e.any.iter().map(|n| n.value.as_str()).collect();
            Miss {
                what: "events (any)".into(),
                expected: format!("one of {}", any.join(", ")),
                found: seen(),
            }
        });
        if !go_on {
            return false;
        }
    }
    for want in &e.each {
        let named = || {
            s.events
                .iter()
                .filter(|ev| want.name.value.is_match(&ev.name))
        };
        let fits_one = named().find(|ev| {
            want.attrs
                .iter()
                .all(|(k, p)| holds_all(p, ev.attributes.get(&k.value)).is_ok())
        });
        let absent = want.absent.as_ref().is_some_and(|a| a.value);
        if fits_one.is_some() != absent {
            continue;
        }
        fits = false;
        let found = || match (fits_one, absent) {
            (Some(ev), _) => {
                let attrs: Vec<String> = ev
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("event \"{}\" {{{}}}", ev.name, attrs.join(", "))
            }
            (None, _) => match named().next() {
                // The name is there: say which attribute predicate failed.
                Some(ev) => want
                    .attrs
                    .iter()
                    .find_map(|(k, p)| {
                        let v = ev.attributes.get(&k.value);
                        holds_all(p, v).err().map(|why| {
                            format!("event \"{}\" with {} {}", ev.name, k.value, why.found(v))
                        })
                    })
                    .unwrap_or_else(seen),
                None => seen(),
            },
        };
        let go_on = sink.fail(|| Miss {
            what: "events".into(),
            expected: want.to_string(),
            found: found(),
        });
        if !go_on {
            return false;
        }
    }
    fits
}

/// Whether every predicate holds of `v` (`None`: not set); else why not.
pub(crate) fn holds_all(p: &Predicates, v: Option<&AttrValue>) -> Result<(), Why> {
    for one in &p.all {
        holds(&one.value, v)?;
    }
    Ok(())
}

/// Why a predicate failed; its text is made only where a report needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The attribute is not set.
    NotSet,
    /// The value is of another type than the predicate compares (what it wants).
    Type(&'static str),
    /// The value does not satisfy it.
    Value,
}

impl Why {
    /// What was found, for a report: the value, with its type where that is why.
    pub fn found(self, v: Option<&AttrValue>) -> String {
        match (self, v) {
            (Why::NotSet, _) | (_, None) => "not set".into(),
            (Why::Type(want), Some(v)) => format!("{v} ({}, not {want})", type_word(v)),
            (Why::Value, Some(v)) => v.to_string(),
        }
    }
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

/// Whether `p` holds of `v`; else why not.
pub(crate) fn holds(p: &Predicate, v: Option<&AttrValue>) -> Result<(), Why> {
    let Some(v) = v else {
        return match p {
            Predicate::Exists(false) => Ok(()),
            _ => Err(Why::NotSet),
        };
    };
    let ok = match p {
        Predicate::Exists(b) => *b,
        Predicate::Eq(s) => v.matches(s),
        Predicate::Ne(s) => !v.matches(s),
        Predicate::In(list) => list.iter().any(|s| v.matches(s)),
        Predicate::Gt(_) | Predicate::Gte(_) | Predicate::Lt(_) | Predicate::Lte(_) => match v {
            AttrValue::Int(i) => number_holds(p, *i as f64),
            AttrValue::Double(d) => number_holds(p, *d),
            _ => return Err(Why::Type("a number")),
        },
        Predicate::Regex(re) => match v {
            AttrValue::Str(s) => re.regex().is_match(s),
            _ => return Err(Why::Type("a string")),
        },
        Predicate::Contains(want) => match (v, want) {
            (AttrValue::Str(s), Scalar::String(w)) => s.contains(w.as_str()),
            // A number or a boolean in a string: its text.
            (AttrValue::Str(s), w) => s.contains(&w.to_string()),
            (AttrValue::Array(items), w) => items.iter().any(|i| i.matches(w)),
            _ => return Err(Why::Type("a string or a list")),
        },
    };
    if ok { Ok(()) } else { Err(Why::Value) }
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
