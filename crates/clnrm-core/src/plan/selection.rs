//! Which planned scenarios run: `--filter`, `--tag` / `--skip-tag` and `--partition`
//! mark the others with why they do not.

use super::options::PlanOptions;
use super::scenario::{NotSelected, PlannedScenario};

/// Whether a scenario tagged `tags` is selected by `--tag wanted` (any of them; none
/// given: all) and `--skip-tag skipped` (none of them).
pub fn tags_select(tags: &[String], wanted: &[String], skipped: &[String]) -> bool {
    (wanted.is_empty() || tags.iter().any(|t| wanted.contains(t)))
        && !tags.iter().any(|t| skipped.contains(t))
}

pub(super) fn select(scenarios: &mut [PlannedScenario], opts: &PlanOptions) {
    if let Some(filter) = &opts.filter {
        for s in scenarios.iter_mut() {
            if !filter.is_match(&s.id.0) {
                s.not_selected = Some(NotSelected::Filtered);
            }
        }
    }
    for s in scenarios.iter_mut() {
        if !tags_select(&s.tags, &opts.tags, &opts.skip_tags) {
            s.not_selected = Some(NotSelected::Filtered);
        }
    }
    use crate::config::Partition;
    let Some(partition) = opts.partition else {
        return;
    };
    let (k, n) = partition.slice();
    let chosen: Vec<usize> = (0..scenarios.len())
        .filter(|&i| scenarios[i].not_selected.is_none())
        .collect();
    let shards: Vec<u64> = match partition {
        Partition::RoundRobin(..) => (0..chosen.len() as u64).map(|i| i % n).collect(),
        Partition::Hash(..) => chosen
            .iter()
            .map(|&i| crate::timings::by_hash(&scenarios[i].id.0, n))
            .collect(),
        Partition::Duration(..) => {
            let ids: Vec<&str> = chosen.iter().map(|&i| scenarios[i].id.0.as_str()).collect();
            crate::timings::by_duration(&ids, &opts.timings, n)
        }
    };
    for (&i, shard) in chosen.iter().zip(shards) {
        if shard != k - 1 {
            scenarios[i].not_selected = Some(NotSelected::OtherPartition);
        }
    }
}
