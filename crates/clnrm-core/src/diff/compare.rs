//! Tree matching and the diff. Siblings are paired in three passes: identical subtrees
//! by hash; then, among spans of the same name and kind, by best attribute and child
//! similarity (so one changed attribute is one change, not a missing plus an extra
//! span); then same-name spans whose kind changed. What is left is a missing subtree
//! (baseline only) or an extra one (current only).

use super::tree::{Node, SpanTree};
use crate::model::{SpanKind, StatusCode};
use crate::otel::AttrValue;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// What happened to a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Equal (its children may still differ).
    Same,
    /// Paired, with changes of its own.
    Changed,
    /// In the baseline only (with its subtree).
    Missing,
    /// In the current run only (with its subtree).
    Extra,
}

/// One attribute that differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    /// Key.
    pub key: String,
    /// Baseline value (none: added).
    pub old: Option<AttrValue>,
    /// Current value (none: removed).
    pub new: Option<AttrValue>,
}

/// A span in the diff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffNode {
    /// Span name.
    pub name: String,
    /// Kind (the current one when it changed).
    pub kind: SpanKind,
    /// What happened.
    pub mark: Mark,
    /// Attributes that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<AttrChange>,
    /// Kind, old → new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_change: Option<(SpanKind, SpanKind)>,
    /// Status, old → new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_change: Option<(StatusCode, StatusCode)>,
    /// Event names, old → new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_change: Option<(Vec<String>, Vec<String>)>,
    /// Duration in ms, old → new (with `--durations`, beyond the threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_change: Option<(f64, f64)>,
    /// Children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<DiffNode>,
}

/// The diff of two trees.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeDiff {
    /// Roots.
    pub roots: Vec<DiffNode>,
}

/// How many of each difference (a missing or extra subtree counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Spans with changes of their own.
    pub changed: usize,
    /// Missing subtrees.
    pub missing: usize,
    /// Extra subtrees.
    pub extra: usize,
}

impl Counts {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.changed + self.missing + self.extra == 0
    }
}

impl TreeDiff {
    /// Counts the differences.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        let mut stack: Vec<&DiffNode> = self.roots.iter().collect();
        while let Some(n) = stack.pop() {
            match n.mark {
                Mark::Missing => c.missing += 1,
                Mark::Extra => c.extra += 1,
                Mark::Changed => {
                    c.changed += 1;
                    stack.extend(&n.children);
                }
                Mark::Same => stack.extend(&n.children),
            }
        }
        c
    }

    /// Whether the trees are equal.
    pub fn is_empty(&self) -> bool {
        self.counts().is_empty()
    }
}

/// Options of a comparison.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compare {
    /// Report durations that moved by more than this fraction (0.5 = 50%), when both
    /// trees have durations.
    pub durations: Option<f64>,
}

/// Diffs `baseline` against `current`.
pub fn diff(baseline: &SpanTree, current: &SpanTree, opts: Compare) -> TreeDiff {
    TreeDiff {
        roots: diff_lists(&baseline.roots, &current.roots, opts),
    }
}

fn whole(n: &Node, mark: Mark) -> DiffNode {
    DiffNode {
        name: n.name.clone(),
        kind: n.kind,
        mark,
        attrs: Vec::new(),
        kind_change: None,
        status_change: None,
        events_change: None,
        duration_change: None,
        children: n.children.iter().map(|c| whole(c, mark)).collect(),
    }
}

fn similarity(a: &Node, b: &Node, b_children: &HashSet<[u8; 16]>) -> i64 {
    let mut s = 0i64;
    for (k, v) in &a.attributes {
        match b.attributes.get(k) {
            Some(w) if w == v => s += 2,
            Some(_) => s += 1,
            None => s -= 1,
        }
    }
    s -= b
        .attributes
        .keys()
        .filter(|k| !a.attributes.contains_key(*k))
        .count() as i64;
    s += i64::from(a.status == b.status) + i64::from(a.events == b.events);
    s += a
        .children
        .iter()
        .filter(|c| b_children.contains(&c.hash))
        .count() as i64;
    s
}

/// Greedy best-similarity pairing of `ais` with `bjs`.
fn pair_greedy(
    a: &[Node],
    b: &[Node],
    ais: &[usize],
    bjs: &[usize],
    same_kind: bool,
    pair_of_a: &mut [Option<usize>],
    used_b: &mut [bool],
) {
    if let ([i], [j]) = (ais, bjs)
        && (!same_kind || a[*i].kind == b[*j].kind)
    {
        pair_of_a[*i] = Some(*j);
        used_b[*j] = true;
        return;
    }
    let sets: HashMap<usize, HashSet<[u8; 16]>> = bjs
        .iter()
        .map(|&j| (j, b[j].children.iter().map(|c| c.hash).collect()))
        .collect();
    let mut scored: Vec<(i64, usize, usize)> = Vec::new();
    for &i in ais {
        for &j in bjs {
            if !same_kind || a[i].kind == b[j].kind {
                scored.push((similarity(&a[i], &b[j], &sets[&j]), i, j));
            }
        }
    }
    scored.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    for (_, i, j) in scored {
        if pair_of_a[i].is_none() && !used_b[j] {
            pair_of_a[i] = Some(j);
            used_b[j] = true;
        }
    }
}

/// Groups the unpaired spans of both sides by `key` and pairs each group.
fn pair_by<K: std::hash::Hash + Eq + Ord + Clone>(
    a: &[Node],
    b: &[Node],
    key: impl Fn(&Node) -> K,
    same_kind: bool,
    pair_of_a: &mut [Option<usize>],
    used_b: &mut [bool],
) {
    let mut groups: HashMap<K, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, n) in a
        .iter()
        .enumerate()
        .filter(|(i, _)| pair_of_a[*i].is_none())
    {
        groups.entry(key(n)).or_default().0.push(i);
    }
    for (j, n) in b.iter().enumerate().filter(|(j, _)| !used_b[*j]) {
        if let Some(g) = groups.get_mut(&key(n)) {
            g.1.push(j);
        }
    }
    let mut keys: Vec<K> = groups.keys().cloned().collect();
    keys.sort();
    for k in keys {
        let (ais, bjs) = &groups[&k];
        if !ais.is_empty() && !bjs.is_empty() {
            pair_greedy(a, b, ais, bjs, same_kind, pair_of_a, used_b);
        }
    }
}

fn diff_lists(a: &[Node], b: &[Node], opts: Compare) -> Vec<DiffNode> {
    let mut pair_of_a: Vec<Option<usize>> = vec![None; a.len()];
    let mut used_b = vec![false; b.len()];
    // 1. Identical subtrees.
    let mut by_hash: HashMap<[u8; 16], Vec<usize>> = HashMap::new();
    for (j, n) in b.iter().enumerate().rev() {
        by_hash.entry(n.hash).or_default().push(j);
    }
    for (i, n) in a.iter().enumerate() {
        if let Some(j) = by_hash.get_mut(&n.hash).and_then(Vec::pop) {
            pair_of_a[i] = Some(j);
            used_b[j] = true;
        }
    }
    // 2. Spans whose own fields are equal (a change below them), then same name and
    //    kind by similarity, then same name with another kind.
    pair_by(
        a,
        b,
        |n| (n.name.clone(), n.own_hash),
        true,
        &mut pair_of_a,
        &mut used_b,
    );
    pair_by(a, b, |n| n.name.clone(), true, &mut pair_of_a, &mut used_b);
    pair_by(a, b, |n| n.name.clone(), false, &mut pair_of_a, &mut used_b);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    for (i, n) in a.iter().enumerate() {
        match pair_of_a[i] {
            Some(j) => out.push(diff_nodes(n, &b[j], opts)),
            None => out.push(whole(n, Mark::Missing)),
        }
    }
    for (j, n) in b.iter().enumerate() {
        if !used_b[j] {
            out.push(whole(n, Mark::Extra));
        }
    }
    out
}

fn diff_nodes(a: &Node, b: &Node, opts: Compare) -> DiffNode {
    let mut d = DiffNode {
        name: b.name.clone(),
        kind: b.kind,
        mark: Mark::Same,
        attrs: Vec::new(),
        kind_change: (a.kind != b.kind).then_some((a.kind, b.kind)),
        status_change: (a.status != b.status).then_some((a.status, b.status)),
        events_change: (a.events != b.events).then(|| (a.events.clone(), b.events.clone())),
        duration_change: None,
        children: Vec::new(),
    };
    if a.hash == b.hash && opts.durations.is_none() {
        d.children = b.children.iter().map(|c| whole(c, Mark::Same)).collect();
        return d;
    }
    for (k, v) in &a.attributes {
        match b.attributes.get(k) {
            Some(w) if w == v => {}
            other => d.attrs.push(AttrChange {
                key: k.clone(),
                old: Some(v.clone()),
                new: other.cloned(),
            }),
        }
    }
    for (k, w) in &b.attributes {
        if !a.attributes.contains_key(k) {
            d.attrs.push(AttrChange {
                key: k.clone(),
                old: None,
                new: Some(w.clone()),
            });
        }
    }
    d.attrs.sort_by(|x, y| x.key.cmp(&y.key));
    if let (Some(limit), Some(old), Some(new)) = (opts.durations, a.duration_ms, b.duration_ms) {
        let moved = (new - old).abs() / old.max(1e-9);
        if moved > limit {
            d.duration_change = Some((old, new));
        }
    }
    if !d.attrs.is_empty()
        || d.kind_change.is_some()
        || d.status_change.is_some()
        || d.events_change.is_some()
        || d.duration_change.is_some()
    {
        d.mark = Mark::Changed;
    }
    d.children = diff_lists(&a.children, &b.children, opts);
    d
}
