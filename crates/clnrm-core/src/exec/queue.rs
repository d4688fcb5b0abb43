//! The dispatch queue of a run: each scenario's cache key, which scenarios the cache
//! lets skip, the order the rest run in (priority, then the longest last duration,
//! then file order), and how many queued scenarios need each environment key.

use super::RunOptions;
use crate::cache::{BUILD_PART, Cache, INPUT_PART, Key, Lookup};
use crate::diff::BaselineCheck;
use crate::inputs::{Digests, InputDigest};
use crate::plan::{Plan, PlannedScenario};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Each scenario's cache key: its fingerprint, the ids of its images (for a built
/// one, the key of its sources and its bases' ids), its baseline,
/// the digests of the host paths it reads ([`with_snapshots`] adds its output
/// snapshots when the key is used).
pub(super) fn cache_keys(
    plan: &Plan,
    image_ids: &HashMap<String, String>,
    baseline: Option<&BaselineCheck>,
    inputs: Option<&Digests>,
) -> Vec<Key> {
    plan.scenarios
        .iter()
        .map(|sc| scenario_key(sc, image_ids, baseline, inputs))
        .collect()
}

/// The cache key of `sc` (see `cache` for its parts).
pub fn scenario_key(
    sc: &PlannedScenario,
    image_ids: &HashMap<String, String>,
    baseline: Option<&BaselineCheck>,
    inputs: Option<&Digests>,
) -> Key {
    let mut key = Key::default();
    key.push("definition", sc.fingerprint.clone());
    // A built image counts by its sources and its bases (not by its own id: the
    // same sources built again are no change, and a run with its passes cached needs
    // no image at all).
    let images: BTreeSet<&str> = sc
        .env
        .services
        .iter()
        .flat_map(crate::plan::ServiceSpec::keyed_images)
        .collect();
    for image in images {
        key.push(
            format!("image {image}"),
            image_ids.get(image).cloned().unwrap_or_default(),
        );
    }
    for (service, build) in sc
        .env
        .services
        .iter()
        .filter_map(|s| Some((&s.id, s.build.as_ref()?)))
    {
        // A base whose id is unknown could be another image than the pass's.
        if let Some(base) = build.bases.iter().find(|b| !image_ids.contains_key(*b)) {
            key.uncacheable = Some(format!(
                "service {service}: the id of its base image {base} is unknown"
            ));
        }
        let name = format!("{BUILD_PART}{service}");
        match build.sources_part() {
            Some(Ok(sources)) => key.push(name, sources),
            Some(Err(why)) => {
                key.uncacheable = Some(format!("service {service}: {why}"));
                key.push(name, "unknowable");
            }
            None => {
                key.uncacheable = Some(format!(
                    "service {service}: its build context {} was not read",
                    build.context.display()
                ));
                key.push(name, "unread");
            }
        }
    }
    // The entry, and how it is compared: a change of `[diff]` settings can turn a
    // pass into a difference.
    let recorded = baseline
        .and_then(|b| {
            let tree = serde_json::to_string(b.baseline.scenarios.get(&sc.id.0)?).ok()?;
            Some(crate::digest::key([tree.as_str(), b.settings.as_str()]))
        })
        .unwrap_or_else(|| "none".to_owned());
    key.push("baseline", recorded);
    for path in sc.host_inputs() {
        let name = format!("{INPUT_PART}{}", path.display());
        match inputs.and_then(|d| d.get(&path)) {
            Some(InputDigest::Known { hash, .. }) => key.push(name, hash.clone()),
            Some(InputDigest::Unknowable(why)) => {
                key.uncacheable = Some(format!("{}: {why}", path.display()));
                key.push(name, "unknowable");
            }
            None => {
                key.uncacheable = Some(format!("{}: its content was not read", path.display()));
                key.push(name, "unread");
            }
        }
    }
    key
}

/// `key` with the output snapshots of `sc`'s steps (their redactions and the hash of
/// each file, read now): a run that writes one (`--update-snapshots`) records the key
/// of what it wrote.
pub fn with_snapshots(key: &Key, sc: &PlannedScenario) -> Key {
    let mut key = key.clone();
    for spec in sc.steps.iter().filter_map(|s| s.snapshot.as_deref()) {
        let redact = serde_json::to_string(&*spec.redact).unwrap_or_default();
        let file = crate::snapshots::hash_of(&spec.path);
        key.push(
            format!("snapshot {}", spec.path.display()),
            crate::digest::key([redact.as_str(), file.as_str()]),
        );
    }
    key
}

/// The dispatch order and the scenarios the cache lets skip.
pub(super) fn queue_order(
    plan: &Plan,
    keys: &[Key],
    opts: &RunOptions,
    mut cache: Option<&mut Cache>,
) -> (Vec<usize>, Vec<usize>) {
    let mut order = Vec::new();
    let mut hits = Vec::new();
    let mut durations = HashMap::new();
    for sc in plan.selected() {
        let i = sc.order;
        if let Some(c) = cache.as_deref_mut() {
            if opts.force {
                c.forced();
            } else if c.lookup(&sc.id.0, &with_snapshots(&keys[i], sc)) == Lookup::Hit {
                hits.push(i);
                continue;
            }
            durations.insert(i, c.last_duration(&sc.id.0).unwrap_or_default());
        }
        order.push(i);
    }
    order.sort_by_key(|&i| {
        let d = durations.get(&i).copied().unwrap_or_default();
        (
            std::cmp::Reverse(plan.scenarios[i].priority),
            std::cmp::Reverse(d),
            i,
        )
    });
    (order, hits)
}

/// The scenarios not yet dispatched, in order, with how many need each environment key.
pub(super) struct Queue {
    order: VecDeque<usize>,
    keys: Vec<String>,
    per_key: HashMap<String, usize>,
}

impl Queue {
    /// A queue of `order`, whose scenarios need the environment keys `keys` (by index).
    pub(super) fn new(order: Vec<usize>, keys: &[String]) -> Self {
        let mut per_key = HashMap::new();
        for &i in &order {
            *per_key.entry(keys[i].clone()).or_insert(0) += 1;
        }
        Self {
            order: order.into(),
            keys: keys.to_vec(),
            per_key,
        }
    }

    /// The next scenario to run.
    pub(super) fn pop(&mut self) -> Option<usize> {
        let i = self.order.pop_front()?;
        if let Some(n) = self.per_key.get_mut(&self.keys[i]) {
            *n -= 1;
        }
        Some(i)
    }

    /// Puts scenario `i` back at the head of the queue (to run again).
    pub(super) fn push_front(&mut self, i: usize) {
        *self.per_key.entry(self.keys[i].clone()).or_insert(0) += 1;
        self.order.push_front(i);
    }

    /// Every scenario left, in order; the queue is then empty.
    pub(super) fn drain(&mut self) -> Vec<usize> {
        self.per_key.clear();
        self.order.drain(..).collect()
    }

    /// How many queued scenarios need environment key `key`.
    pub(super) fn queued(&self, key: &str) -> usize {
        self.per_key.get(key).copied().unwrap_or(0)
    }

    /// The next `n` scenarios, in order.
    pub(super) fn next(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().take(n).copied()
    }

    /// Whether nothing is left.
    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_counts_what_each_environment_key_still_needs() {
        let keys: Vec<String> = ["a", "b", "a"].iter().map(|s| (*s).to_owned()).collect();
        let mut q = Queue::new(vec![2, 0, 1], &keys);
        assert_eq!(q.queued("a"), 2);
        assert_eq!(q.next(2).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(q.pop(), Some(2));
        assert_eq!((q.queued("a"), q.queued("b")), (1, 1));
        q.push_front(2);
        assert_eq!(q.queued("a"), 2);
        assert_eq!(q.next(1).collect::<Vec<_>>(), vec![2]);
        assert_eq!(q.drain(), vec![2, 0, 1]);
        assert!(q.is_empty());
        assert_eq!(q.queued("a"), 0);
    }
}
