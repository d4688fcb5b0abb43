//! Normalised span trees: ids and (optionally) times removed, ignored attribute keys
//! dropped, children in a canonical order, so that two runs that behave the same give
//! equal trees whatever their ids, timestamps or sibling arrival order.

use crate::model::{SpanKind, StatusCode};
use crate::otel::{AttrValue, SpanRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// One span of a normalised tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Span name.
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// Status code.
    pub status: StatusCode,
    /// Attributes, sorted, ignored keys left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
    /// Event names in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Duration in milliseconds, kept only when timestamps are not ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Children in canonical order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
    /// Hash of everything above but the duration (not saved).
    #[serde(skip)]
    pub hash: [u8; 16],
    /// Hash of the span's own fields, without its children (not saved).
    #[serde(skip)]
    pub own_hash: [u8; 16],
}

/// A normalised forest: the spans of one scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanTree {
    /// Spans without a parent among the collected ones, in canonical order.
    pub roots: Vec<Node>,
}

/// How to normalise.
#[derive(Clone, Debug, Default)]
pub struct Normalize {
    /// Drop durations (`diff.ignore_timestamps`, the default).
    pub ignore_timestamps: bool,
    /// Attribute keys to leave out (globs).
    pub ignore_attributes: Option<globset::GlobSet>,
}

impl Normalize {
    /// From `diff.ignore_timestamps` and `diff.ignore_attributes`; bad globs are skipped.
    pub fn new(ignore_timestamps: bool, ignore_attributes: &[String]) -> Self {
        let mut set = globset::GlobSetBuilder::new();
        for g in ignore_attributes {
            if let Ok(g) = globset::Glob::new(g) {
                set.add(g);
            }
        }
        Self {
            ignore_timestamps,
            ignore_attributes: set.build().ok().filter(|s| !s.is_empty()),
        }
    }
}

impl Node {
    /// Recomputes the hash from the fields and the children's hashes.
    pub fn rehash(&mut self) {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0, self.kind as u8, self.status as u8]);
        for (k, v) in &self.attributes {
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.to_string().as_bytes());
            h.update([2]);
        }
        for e in &self.events {
            h.update(e.as_bytes());
            h.update([3]);
        }
        self.own_hash.copy_from_slice(&h.clone().finalize()[..16]);
        for c in &self.children {
            h.update(c.hash);
        }
        self.hash.copy_from_slice(&h.finalize()[..16]);
    }

    /// Sorts children canonically and rehashes, bottom-up.
    pub fn canonicalize(&mut self) {
        for c in &mut self.children {
            c.canonicalize();
        }
        self.children
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.hash.cmp(&b.hash)));
        self.rehash();
    }
}

impl SpanTree {
    /// The normalised tree of `spans`.
    pub fn from_spans(spans: &[SpanRecord], opts: &Normalize) -> Self {
        let key = |trace: &str, id: &str| format!("{trace}/{id}");
        let present: HashMap<String, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (key(&s.trace_id, &s.span_id), i))
            .collect();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            let parent = s
                .parent_span_id
                .as_ref()
                .and_then(|p| present.get(&key(&s.trace_id, p)))
                .filter(|&&p| p != i);
            match parent {
                Some(&p) => children.entry(p).or_default().push(i),
                None => roots.push(i),
            }
        }
        // Spans in a parent cycle are reachable from no root: make them roots.
        let mut seen = vec![false; spans.len()];
        let mut tree = SpanTree {
            roots: roots
                .iter()
                .map(|&r| build(r, spans, &children, opts, &mut seen))
                .collect(),
        };
        for i in 0..spans.len() {
            if !seen[i] {
                tree.roots.push(build(i, spans, &children, opts, &mut seen));
            }
        }
        tree.canonicalize();
        tree
    }

    /// Sorts and rehashes every node (after loading or editing).
    pub fn canonicalize(&mut self) {
        for r in &mut self.roots {
            r.canonicalize();
        }
        self.roots
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.hash.cmp(&b.hash)));
    }
}

fn build(
    i: usize,
    spans: &[SpanRecord],
    children: &HashMap<usize, Vec<usize>>,
    opts: &Normalize,
    seen: &mut [bool],
) -> Node {
    seen[i] = true;
    let s = &spans[i];
    let mut events: Vec<(u64, &str)> = s
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    events.sort();
    let kids: Vec<usize> = children
        .get(&i)
        .map(|v| v.iter().copied().filter(|&c| !seen[c]).collect())
        .unwrap_or_default();
    let mut node = Node {
        name: s.name.clone(),
        kind: s.kind,
        status: s.status,
        attributes: s
            .attributes
            .iter()
            .filter(|(k, _)| {
                !opts
                    .ignore_attributes
                    .as_ref()
                    .is_some_and(|g| g.is_match(k.as_str()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        events: events.into_iter().map(|(_, n)| n.to_owned()).collect(),
        duration_ms: (!opts.ignore_timestamps).then(|| s.duration_ms()),
        children: Vec::new(),
        hash: [0; 16],
        own_hash: [0; 16],
    };
    for c in kids {
        if !seen[c] {
            node.children.push(build(c, spans, children, opts, seen));
        }
    }
    node
}
