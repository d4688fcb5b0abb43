//! After a scenario's steps: gather its spans, check the file's expectations, save
//! the spans as an artifact.

use super::events::{Reason, ScenarioDiff, ScenarioResult, Status};
use crate::diff::{BaselineCheck, SpanTree, diff};
use crate::expect::{ExpectKind, Scope, Unmet, check_in};
use crate::otel::{Overflow, SpanRecord, artifacts};
use crate::plan::PlannedScenario;
use std::path::Path;

/// Where a scenario's spans are judged: its run's artifacts directory, id and
/// baseline, and the hosts that are the scenario's own.
#[derive(Clone, Copy)]
pub struct RunPlace<'a> {
    /// `.clnrm/artifacts`, when spans are saved.
    pub artifacts_dir: Option<&'a Path>,
    /// The run's id.
    pub run_id: &'a str,
    /// The baseline to compare with.
    pub baseline: Option<&'a BaselineCheck>,
    /// What the checks know of the scenario.
    pub scope: Scope<'a>,
}

/// Checks `spans` against the scenario's expectations and its baseline, and saves
/// them; a passing scenario with unmet expectations or a different tree fails.
/// Expectations see the spans as sent (a file may expect a value it also hands over
/// as a secret); the artifact and the baseline comparison see them with secrets
/// masked, so that no secret reaches a file and a changed secret is no difference.
pub fn conclude(
    sc: &PlannedScenario,
    result: &mut ScenarioResult,
    spans: &[SpanRecord],
    overflow: Option<Overflow>,
    run: &RunPlace<'_>,
) {
    let RunPlace {
        artifacts_dir,
        run_id,
        baseline,
        scope,
    } = *run;
    result.spans = spans.len();
    let masked = masked(sc, spans);
    let shown = masked.as_deref().unwrap_or(spans);
    if let Some(dir) = artifacts_dir
        && !spans.is_empty()
        && let Err(e) = artifacts::save(dir, &sc.id.0, run_id, shown)
    {
        let note = format!("could not save its spans under {}: {e}", dir.display());
        result.message = Some(match result.message.take() {
            Some(m) => format!("{m}; {note}"),
            None => note,
        });
    }
    if result.status != Status::Passed {
        return;
    }
    if let Some(over) = overflow {
        // The set is incomplete: no expectation or diff can be judged on it.
        result.status = Status::Failed;
        result.reason = Some(Reason::SpanLimit);
        result.message = Some(over.to_string());
        return;
    }
    check_baseline(sc, result, shown, baseline);
    if result.status != Status::Passed {
        return;
    }
    let mut unmet: Vec<Unmet> = Vec::new();
    for set in &sc.expect {
        for u in check_in(set, spans, &scope) {
            // "No spans at all" once, whichever sets expect them.
            if u.kind == ExpectKind::NoSpans && unmet.iter().any(|x| x.kind == u.kind) {
                continue;
            }
            unmet.push(u);
        }
    }
    if unmet.is_empty() {
        return;
    }
    result.status = Status::Failed;
    result.reason = Some(Reason::Expectation);
    result.unmet = unmet
        .into_iter()
        .map(|u| u.map_text(|t| sc.masker.mask(t)))
        .collect();
    result.message = Some(unmet_message(&result.unmet));
}

/// A failed scenario's message for its unmet expectations (at least one).
pub fn unmet_message(unmet: &[Unmet]) -> String {
    match unmet {
        [one] => one.to_string(),
        [first, ..] => format!("{} expectations unmet; first: {first}", unmet.len()),
        [] => String::new(),
    }
}

/// `spans` with the scenario's secrets masked, or `None` when none holds one.
fn masked(sc: &PlannedScenario, spans: &[SpanRecord]) -> Option<Vec<SpanRecord>> {
    if sc.masker.is_empty() {
        return None;
    }
    let mut out = spans.to_vec();
    for s in &mut out {
        s.map_strings(&|t: &str| sc.masker.mask_if_needed(t));
    }
    Some(out)
}

fn check_baseline(
    sc: &PlannedScenario,
    result: &mut ScenarioResult,
    spans: &[SpanRecord],
    baseline: Option<&BaselineCheck>,
) {
    let Some(b) = baseline else { return };
    let Some(recorded) = b.baseline.scenarios.get(&sc.id.0) else {
        return;
    };
    let current = SpanTree::from_spans(spans, &b.normalize);
    let d = diff(recorded, &current, b.compare);
    let c = d.counts();
    if c.is_empty() {
        return;
    }
    result.status = Status::Failed;
    result.reason = Some(Reason::Diff);
    result.message = Some(format!(
        "span tree differs from the baseline: {} changed, {} missing, {} extra",
        c.changed, c.missing, c.extra
    ));
    result.diff = Some(ScenarioDiff {
        counts: c,
        tree: d,
        max_depth: b.max_depth,
    });
}
