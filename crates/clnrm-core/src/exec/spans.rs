//! After a scenario's steps: gather its spans, check the file's expectations, save
//! the spans as an artifact.

use super::events::{Reason, ScenarioDiff, ScenarioResult, Status};
use crate::diff::{BaselineCheck, SpanTree, diff};
use crate::expect::{ExpectKind, Scope, Unmet, check_in};
use crate::otel::{Overflow, SpanRecord, artifacts};
use crate::plan::PlannedScenario;
use std::path::Path;

/// Where a scenario's spans are judged: its run's baseline, and the hosts that are
/// the scenario's own.
#[derive(Clone, Copy)]
pub struct RunPlace<'a> {
    /// The baseline to compare with.
    pub baseline: Option<&'a BaselineCheck>,
    /// Its containers' ids, host names and addresses → their service ids.
    pub identities: &'a std::collections::BTreeMap<String, String>,
    /// What the checks know of the scenario.
    pub scope: Scope<'a>,
}

/// Checks `spans` against the scenario's expectations and its baseline; a passing
/// scenario with unmet expectations or a different tree fails.
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
        baseline,
        identities,
        scope,
    } = *run;
    result.spans = spans.len();
    if result.status != Status::Passed {
        return;
    }
    let masked = masked(sc, spans);
    let shown = masked.as_deref().unwrap_or(spans);
    if let Some(over) = overflow {
        // The set is incomplete: no expectation or diff can be judged on it.
        result.status = Status::Failed;
        result.reason = Some(Reason::SpanLimit);
        result.message = Some(over.to_string());
        return;
    }
    // Both are judged, and both reported: an unmet expectation is not hidden by a
    // tree that also differs (the reason is the first of expectation, diff).
    let diff = baseline_diff(sc, shown, baseline, identities);
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
    if unmet.is_empty() && diff.is_none() {
        return;
    }
    result.status = Status::Failed;
    result.unmet = unmet
        .into_iter()
        .map(|u| u.map_text(|t| sc.masker.mask(t)))
        .collect();
    result.diff = diff;
    result.reason = Some(if result.unmet.is_empty() {
        Reason::Diff
    } else {
        Reason::Expectation
    });
    result.message = Some(span_message(result));
}

/// The message of a scenario whose spans failed: its unmet expectations, then how
/// its tree differs from the baseline.
pub fn span_message(result: &ScenarioResult) -> String {
    let mut parts = Vec::new();
    if !result.unmet.is_empty() {
        parts.push(unmet_message(&result.unmet));
    }
    if let Some(d) = &result.diff {
        let c = &d.counts;
        parts.push(format!(
            "span tree differs from the baseline: {} changed, {} missing, {} extra",
            c.changed, c.missing, c.extra
        ));
    }
    parts.join("; ")
}

/// Saves the scenario's spans (secrets masked) under `dir` with its verdict (`flaky`
/// when it passed after `earlier` failed attempts, as the run will report it) and the
/// identities of its containers, for `clnrm diff`, baselines and report.html; none at
/// all is saved too (so `diff` knows it ran and sent none).
pub fn keep(
    sc: &PlannedScenario,
    (result, earlier): (&mut ScenarioResult, usize),
    spans: &[SpanRecord],
    dir: &Path,
    run_id: &str,
    identities: std::collections::BTreeMap<String, String>,
) {
    let masked = masked(sc, spans);
    let shown = masked.as_deref().unwrap_or(spans);
    let meta = artifacts::Meta {
        verdict: Some(artifacts::Verdict {
            status: if result.status == Status::Passed && earlier > 0 {
                Status::Flaky.as_str().to_owned()
            } else {
                result.status.as_str().to_owned()
            },
            reason: result.reason.map(|r| r.as_str().to_owned()),
        }),
        identities,
    };
    if let Err(e) = artifacts::save_with(dir, &sc.id.0, run_id, shown, &meta) {
        let note = format!("could not save its spans under {}: {e}", dir.display());
        result.message = Some(match result.message.take() {
            Some(m) => format!("{m}; {note}"),
            None => note,
        });
    }
}

/// `spans` without the traces clnrm's health probes caused: a trace whose root (a
/// span whose parent is not among them) is a SERVER span that began while a probe
/// of the environment ran (`windows`, ns since the epoch).
pub fn without_probe_traffic(spans: Vec<SpanRecord>, windows: &[(u64, u64)]) -> Vec<SpanRecord> {
    if windows.is_empty() {
        return spans;
    }
    let present: std::collections::HashSet<(&str, &str)> = spans
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let probed: std::collections::HashSet<String> = spans
        .iter()
        .filter(|s| {
            let root = s
                .parent_span_id
                .as_deref()
                .is_none_or(|p| !present.contains(&(s.trace_id.as_str(), p)));
            root && s.kind == crate::model::SpanKind::Server
                && windows
                    .iter()
                    .any(|&(from, to)| (from..=to).contains(&s.start_time_unix_nano))
        })
        .map(|s| s.trace_id.clone())
        .collect();
    if probed.is_empty() {
        return spans;
    }
    spans
        .into_iter()
        .filter(|s| !probed.contains(&s.trace_id))
        .collect()
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

/// How `spans` differ from the baseline's tree of `sc`, when it has one and they do.
fn baseline_diff(
    sc: &PlannedScenario,
    spans: &[SpanRecord],
    baseline: Option<&BaselineCheck>,
    identities: &std::collections::BTreeMap<String, String>,
) -> Option<ScenarioDiff> {
    let b = baseline?;
    let recorded = b.baseline.scenarios.get(&sc.id.0)?;
    let current = SpanTree::from_spans_in(spans, &b.normalize, identities);
    let d = diff(recorded, &current, b.compare);
    let c = d.counts();
    if c.is_empty() {
        return None;
    }
    Some(ScenarioDiff {
        counts: c,
        tree: d,
        max_depth: b.max_depth,
    })
}
