//! `clnrm report merge` (SPEC §8): the reports of a run's shards as one run. Each
//! shard's report lists every scenario of the plan, those of other shards `skipped`
//! with reason `partition`; the merged report keeps, for each scenario, the result
//! of the shard that ran it, in plan order.

use super::RunReport;
use crate::exec::{Reason, ScenarioResult};
use std::collections::HashMap;

/// The merged run, and what the user should know (a scenario two reports ran, one
/// no report ran).
pub fn merge(reports: &[RunReport]) -> (RunReport, Vec<String>) {
    let mut warnings = Vec::new();
    let mut order: Vec<&ScenarioResult> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut from: Vec<usize> = Vec::new();
    for (n, report) in reports.iter().enumerate() {
        for r in &report.results {
            match at.get(r.id.0.as_str()) {
                None => {
                    at.insert(&r.id.0, order.len());
                    order.push(r);
                    from.push(n);
                }
                Some(&i) if ran_here(order[i]) && ran_here(r) => warnings.push(format!(
                    "\"{}\" is in reports {} and {}; kept the first",
                    r.id,
                    from[i] + 1,
                    n + 1
                )),
                Some(&i) if ran_here(r) => {
                    order[i] = r;
                    from[i] = n;
                }
                Some(_) => {}
            }
        }
    }
    // File indexes by first appearance, as a run numbers its files.
    let mut seen: Vec<String> = Vec::new();
    let results = order
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            if r.reason == Some(Reason::Partition) {
                // A lost shard must not pass: the scenario counts as an error.
                warnings.push(format!("no report ran \"{}\"", r.id));
                r.status = crate::exec::Status::Error;
                r.message = Some("not run: no shard's report ran it".into());
            }
            r.file_index = seen.iter().position(|f| *f == r.file).unwrap_or_else(|| {
                seen.push(r.file.clone());
                seen.len() - 1
            });
            r
        })
        .collect();
    let run_id = reports
        .iter()
        .map(|r| r.run_id.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let merged = RunReport {
        run_id,
        results,
        // Shards run side by side: the run took as long as the slowest.
        duration: reports.iter().map(|r| r.duration).max().unwrap_or_default(),
        interrupted: reports.iter().any(|r| r.interrupted),
    };
    (merged, warnings)
}

/// Whether this report's shard ran it (not another shard's, not filtered out).
fn ran_here(r: &ScenarioResult) -> bool {
    !r.is_unselected()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Status;
    use crate::report::tests::sample;

    /// `sample()` split into two shards the way `--partition` reports them.
    fn shards() -> (RunReport, RunReport) {
        let full = sample();
        let mut a = full.clone();
        let mut b = full.clone();
        for (i, (ra, rb)) in a.results.iter_mut().zip(&mut b.results).enumerate() {
            let other = if i % 2 == 0 { rb } else { ra };
            other.status = Status::Skipped;
            other.reason = Some(Reason::Partition);
            other.message = Some("not run: in another partition".into());
            other.steps.clear();
        }
        a.run_id = "a".into();
        b.run_id = "b".into();
        b.duration *= 2;
        (a, b)
    }

    #[test]
    fn each_scenario_comes_from_the_shard_that_ran_it_in_plan_order() {
        let (a, b) = shards();
        let (merged, warnings) = merge(&[b.clone(), a.clone()]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(merged.results, sample().results);
        assert_eq!(merged.run_id, "b+a");
        assert_eq!(merged.duration, b.duration);
    }

    #[test]
    fn filtered_scenarios_are_in_every_shard_without_a_warning() {
        let (mut a, mut b) = shards();
        for r in [&mut a, &mut b] {
            r.results[3].status = Status::Skipped;
            r.results[3].reason = Some(Reason::Filtered);
        }
        let (merged, warnings) = merge(&[a, b]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(merged.results[3].reason, Some(Reason::Filtered));
    }

    #[test]
    fn a_scenario_no_shard_ran_fails_the_merged_run() {
        let (a, _) = shards();
        let (merged, _) = merge(&[a]);
        assert_eq!(merged.results[1].status, Status::Error);
        assert_eq!(merged.verdict(false), crate::report::Verdict::Failed);
    }

    #[test]
    fn a_scenario_run_twice_or_never_is_said() {
        let (a, _) = shards();
        let (merged, warnings) = merge(&[a.clone(), a.clone()]);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].contains("in reports 1 and 2"), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.starts_with("no report ran")));
        assert_eq!(merged.results.len(), 4);
    }
}
