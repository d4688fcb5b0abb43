//! The `--format json` document (SPEC §4) and reading it back (`clnrm report merge`).
//! A scenario is its [`ScenarioResult`] as serde writes it, plus `attempts`: every
//! run it took, the failed earlier ones in full and the last one in brief.

use super::{RunReport, Summary};
use crate::exec::ScenarioResult;
use serde_json::{Value, json};
use std::time::Duration;

/// The longest duration a report read back may hold (a year): sums of them stay far
/// from overflowing.
const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// The `--format json` document.
pub fn to_json(report: &RunReport) -> Value {
    let s = Summary::of(&report.results);
    let scenarios: Vec<Value> = report.results.iter().map(scenario_json).collect();
    json!({
        "run_id": report.run_id,
        "interrupted": report.interrupted,
        "summary": {
            "passed": s.passed,
            "flaky": s.flaky,
            "failed": s.failed,
            "errors": s.errors,
            "cached": s.cached,
            "skipped": s.skipped,
            "duration_ms": millis(report.duration),
        },
        "scenarios": scenarios,
    })
}

fn scenario_json(r: &ScenarioResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    let mut attempts: Vec<Value> = r
        .earlier
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let mut a = serde_json::to_value(a).unwrap_or_default();
            a["attempt"] = json!(n + 1);
            a
        })
        .collect();
    if !matches!(
        r.status,
        crate::exec::Status::Skipped | crate::exec::Status::Cached
    ) {
        // The last run: its detail is the scenario's own.
        let status = if r.status == crate::exec::Status::Flaky {
            "passed"
        } else {
            r.status.as_str()
        };
        attempts.push(json!({
            "attempt": r.attempts(),
            "status": status,
            "reason": r.reason,
            "message": r.message,
            "start_ms": millis(r.start),
            "duration_ms": millis(r.duration),
        }));
    }
    v["attempts"] = Value::Array(attempts);
    v
}

/// Why a text is not a `--format json` report.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// A field every report has is missing.
    #[error("no \"{0}\" field: not a clnrm report")]
    NoField(&'static str),
    /// `run_id` is not a string.
    #[error("\"run_id\" is not a string")]
    RunId,
    /// The summary has no duration.
    #[error("no \"summary.duration_ms\": not a clnrm report")]
    NoDuration,
    /// `scenarios` is not a list.
    #[error("\"scenarios\" is not a list")]
    Scenarios,
    /// A scenario (or one of its attempts) is not a scenario result.
    #[error("scenarios[{index}]: {source}")]
    Scenario {
        /// Its index in `scenarios`.
        index: usize,
        /// What reading it said.
        #[source]
        source: serde_json::Error,
    },
    /// A scenario lasted longer than any run can.
    #[error(
        "scenarios[{0}]: a duration of more than {days} days",
        days = MAX_DURATION.as_secs() / 86_400
    )]
    TooLong(usize),
}

/// Reads a `--format json` document back: the run and its scenarios (each file's
/// index by the order the files first appear). The error says what is wrong.
pub fn from_json(text: &str) -> Result<RunReport, ReadError> {
    let v: Value = serde_json::from_str(text).map_err(ReadError::NotJson)?;
    let field = |k: &'static str| v.get(k).ok_or(ReadError::NoField(k));
    let run_id = field("run_id")?
        .as_str()
        .ok_or(ReadError::RunId)?
        .to_owned();
    let duration = v["summary"]["duration_ms"]
        .as_u64()
        .ok_or(ReadError::NoDuration)?;
    let Value::Array(scenarios) = field("scenarios")? else {
        return Err(ReadError::Scenarios);
    };
    let mut files: Vec<String> = Vec::new();
    let mut results = Vec::with_capacity(scenarios.len());
    for (n, s) in scenarios.iter().enumerate() {
        let at = |source| ReadError::Scenario { index: n, source };
        let mut r = ScenarioResult::deserialize_from(s).map_err(at)?;
        if let Some(Value::Array(attempts)) = s.get("attempts") {
            // Earlier attempts are written in full (with an id); the last in brief.
            for a in attempts.iter().filter(|a| a.get("id").is_some()) {
                r.earlier
                    .push(ScenarioResult::deserialize_from(a).map_err(at)?);
            }
        }
        let too_long = std::iter::once(&r)
            .chain(&r.earlier)
            .flat_map(|x| {
                [x.duration, x.start, x.setup]
                    .into_iter()
                    .chain(x.steps.iter().map(|s| s.duration))
            })
            .any(|d| d > MAX_DURATION);
        if too_long {
            return Err(ReadError::TooLong(n));
        }
        r.file_index = match files.iter().position(|f| *f == r.file) {
            Some(i) => i,
            None => {
                files.push(r.file.clone());
                files.len() - 1
            }
        };
        for a in &mut r.earlier {
            a.file_index = r.file_index;
        }
        results.push(r);
    }
    Ok(RunReport {
        run_id,
        results,
        duration: Duration::from_millis(duration),
        interrupted: v["interrupted"].as_bool().unwrap_or(false),
    })
}

impl ScenarioResult {
    fn deserialize_from(v: &Value) -> Result<Self, serde_json::Error> {
        serde::Deserialize::deserialize(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{Reason, Status};
    use crate::report::tests::sample;

    #[test]
    fn json_has_the_documented_shape() {
        let v = to_json(&sample());
        assert_eq!(v["run_id"], "abc123");
        assert_eq!(v["summary"]["passed"], 1);
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["summary"]["skipped"], 1);
        assert_eq!(v["summary"]["cached"], 1);
        assert_eq!(v["summary"]["duration_ms"], 1234);
        assert_eq!(v["scenarios"][1]["status"], "failed");
        assert_eq!(v["scenarios"][1]["reason"], "exit_code");
        assert_eq!(v["scenarios"][1]["steps"][0]["exit_code"], 3);
        assert_eq!(v["scenarios"][1]["steps"][0]["duration_ms"], 12);
        assert_eq!(v["scenarios"][1]["id"], "tests/a.clnrm.toml::bad <&>");
        assert_eq!(v["scenarios"][1]["attempts"][0]["attempt"], 1);
        assert_eq!(v["scenarios"][2]["attempts"], json!([]));
    }

    #[test]
    fn a_flaky_scenario_lists_every_attempt() {
        let mut report = sample();
        let failed = report.results[1].clone();
        let r = &mut report.results[0];
        r.status = Status::Flaky;
        r.earlier = vec![failed.clone(), failed];
        let v = to_json(&report);
        assert_eq!(v["summary"]["flaky"], 1);
        assert_eq!(v["summary"]["passed"], 0);
        let attempts = v["scenarios"][0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 3);
        assert_eq!(attempts[0]["status"], "failed");
        assert_eq!(attempts[1]["steps"][0]["stdout"], "oops \"x\"\n");
        assert_eq!(attempts[2]["status"], "passed");
        assert_eq!(attempts[2]["attempt"], 3);
    }

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let mut report = sample();
        report.results[1].earlier = vec![report.results[1].clone()];
        report.results[2].reason = Some(Reason::Partition);
        let text = to_json(&report).to_string();
        let back = from_json(&text).unwrap();
        assert_eq!(back.results, report.results);
        assert_eq!(back.run_id, report.run_id);
        assert_eq!(back.duration, report.duration);
        assert_eq!(to_json(&back), to_json(&report));
    }

    #[test]
    fn what_is_not_a_report_says_why() {
        let why = |text: &str| from_json(text).unwrap_err().to_string();
        assert!(why("{").starts_with("not JSON"));
        assert!(why("{}").contains("run_id"));
        let mut long = to_json(&sample());
        long["scenarios"][0]["duration_ms"] = serde_json::json!(u64::MAX);
        assert!(why(&long.to_string()).contains("more than 366 days"));
        let bad = r#"{"run_id":"x","summary":{"duration_ms":1},"scenarios":[{"id":1}]}"#;
        assert!(why(bad).starts_with("scenarios[0]"), "{}", why(bad));
    }
}
