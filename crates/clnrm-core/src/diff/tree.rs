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

/// Attributes that change with every connection (a client's port and address, a
/// server's view of its peer): left out of trees unless `diff.keep_attributes`
/// names them. `net.host.port` is left out of CLIENT spans only (their own port).
pub const PER_CONNECTION: &[&str] = &[
    "net.peer.port",
    "net.peer.ip",
    "net.sock.peer.*",
    "client.port",
    "client.address",
    "network.peer.port",
    "network.peer.address",
];

/// `net.host.port` of a CLIENT span: the client's own port, new each connection.
const CLIENT_HOST_PORT: &str = "net.host.port";

/// How to normalise.
#[derive(Clone, Debug, Default)]
pub struct Normalize {
    /// Drop durations (`diff.ignore_timestamps`, the default).
    pub ignore_timestamps: bool,
    /// Attribute keys to leave out (globs).
    pub ignore_attributes: Option<globset::GlobSet>,
    /// Per-connection keys left out ([`PER_CONNECTION`] less `diff.keep_attributes`);
    /// `None` keeps them all.
    pub per_connection: Option<globset::GlobSet>,
    /// Whether a CLIENT span's `net.host.port` is left out.
    pub client_host_port: bool,
}

fn glob_set<'a>(globs: impl IntoIterator<Item = &'a str>) -> Option<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        if let Ok(g) = globset::Glob::new(g) {
            set.add(g);
        }
    }
    set.build().ok().filter(|s| !s.is_empty())
}

impl Normalize {
    /// From `diff.ignore_timestamps` and `diff.ignore_attributes`; bad globs are
    /// skipped. Per-connection attributes are left out.
    pub fn new(ignore_timestamps: bool, ignore_attributes: &[String]) -> Self {
        Self::with_kept(ignore_timestamps, ignore_attributes, &[])
    }

    /// [`Normalize::new`], keeping the per-connection attributes `keep` names
    /// (`diff.keep_attributes`, globs).
    pub fn with_kept(
        ignore_timestamps: bool,
        ignore_attributes: &[String],
        keep: &[String],
    ) -> Self {
        let keep = glob_set(keep.iter().map(String::as_str));
        let kept = |k: &str| keep.as_ref().is_some_and(|g| g.is_match(k));
        Self {
            ignore_timestamps,
            ignore_attributes: glob_set(ignore_attributes.iter().map(String::as_str)),
            per_connection: glob_set(PER_CONNECTION.iter().copied().filter(|k| {
                // A glob kept whole, or any key of a family kept ("net.sock.peer.*").
                !kept(k) && !kept(&k.replace('*', "addr"))
            })),
            client_host_port: !kept(CLIENT_HOST_PORT),
        }
    }

    /// Whether attribute `key` of a span of `kind` is left out of its tree.
    pub fn ignores(&self, key: &str, kind: SpanKind) -> bool {
        self.ignore_attributes
            .as_ref()
            .is_some_and(|g| g.is_match(key))
            || self
                .per_connection
                .as_ref()
                .is_some_and(|g| g.is_match(key))
            || (self.client_host_port && kind == SpanKind::Client && key == CLIENT_HOST_PORT)
    }
}

/// `value` with each occurrence of a container identity (a whole word: not inside a
/// longer name or address) replaced by the service id it stands for.
pub(crate) fn with_service_ids(
    value: &str,
    identities: &BTreeMap<String, String>,
) -> Option<String> {
    let name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::new();
    let mut rest = value;
    let mut changed = false;
    'scan: while !rest.is_empty() {
        for (ident, service) in identities.iter().rev() {
            if let Some(after) = rest.strip_prefix(ident.as_str()) {
                let before_ok = !out.chars().next_back().is_some_and(|c| name(c) || c == '.');
                // Followed by a port or a path, not by more of a name or an address.
                let after_ok = match after.chars().next() {
                    None => true,
                    Some('.') => !after[1..].starts_with(|c: char| c.is_ascii_alphanumeric()),
                    Some(c) => !name(c),
                };
                if before_ok && after_ok {
                    out.push_str(service);
                    rest = after;
                    changed = true;
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
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
        Self::from_spans_in(spans, opts, &BTreeMap::new())
    }

    /// The normalised tree of `spans` from a scenario whose containers' identities
    /// (ids, host names, addresses) stand for the services in `identities`: a value
    /// holding one holds the service id instead, so that it is the same every run.
    pub fn from_spans_in(
        spans: &[SpanRecord],
        opts: &Normalize,
        identities: &BTreeMap<String, String>,
    ) -> Self {
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
                .map(|&r| build(r, spans, &children, (opts, identities), &mut seen))
                .collect(),
        };
        for i in 0..spans.len() {
            if !seen[i] {
                tree.roots
                    .push(build(i, spans, &children, (opts, identities), &mut seen));
            }
        }
        tree.canonicalize();
        tree
    }

    /// This tree (a stored one) with the attributes `opts` leaves out removed, so that
    /// a baseline recorded before an attribute was ignored compares as if it had been.
    pub fn normalized(mut self, opts: &Normalize) -> Self {
        fn strip(node: &mut Node, opts: &Normalize) {
            let kind = node.kind;
            node.attributes.retain(|k, _| !opts.ignores(k, kind));
            for c in &mut node.children {
                strip(c, opts);
            }
        }
        for r in &mut self.roots {
            strip(r, opts);
        }
        self.canonicalize();
        self
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
    (opts, identities): (&Normalize, &BTreeMap<String, String>),
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
            .filter(|(k, _)| !opts.ignores(k, s.kind))
            .map(|(k, v)| {
                let v = match v {
                    AttrValue::Str(text) if !identities.is_empty() => {
                        with_service_ids(text, identities).map_or_else(|| v.clone(), AttrValue::Str)
                    }
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect(),
        events: events.into_iter().map(|(_, n)| n.to_owned()).collect(),
        duration_ms: (!opts.ignore_timestamps).then(|| s.duration_ms()),
        children: Vec::new(),
        hash: [0; 16],
        own_hash: [0; 16],
    };
    for c in kids {
        if !seen[c] {
            node.children
                .push(build(c, spans, children, (opts, identities), seen));
        }
    }
    node
}
