//! After a scenario's steps: gather its spans, check the file's expectations, save
//! the spans as an artifact.

use super::events::{Reason, ScenarioResult, Status};
use crate::expect::check;
use crate::otel::{SpanRecord, artifacts};
use crate::plan::PlannedScenario;
use std::path::Path;

/// Checks `spans` against the scenario's expectations and saves them; a passing
/// scenario with unmet expectations becomes failed.
pub fn conclude(
    sc: &PlannedScenario,
    result: &mut ScenarioResult,
    spans: &[SpanRecord],
    artifacts_dir: Option<&Path>,
    run_id: &str,
) {
    result.spans = spans.len();
    if let Some(dir) = artifacts_dir
        && !spans.is_empty()
        && let Err(e) = artifacts::save(dir, &sc.id.0, run_id, spans)
    {
        result
            .unmet
            .push(format!("could not save spans under {}: {e}", dir.display()));
    }
    if result.status != Status::Passed {
        return;
    }
    let Some(set) = &sc.expect else { return };
    let unmet = check(set, spans);
    if unmet.is_empty() {
        return;
    }
    result.status = Status::Failed;
    result.reason = Some(Reason::Expectation);
    result.unmet = unmet
        .iter()
        .map(|u| sc.masker.mask(&u.to_string()))
        .collect();
    result.message = Some(if unmet.len() == 1 {
        result.unmet[0].clone()
    } else {
        format!(
            "{} expectations unmet; first: {}",
            unmet.len(),
            result.unmet[0]
        )
    });
}
