//! Reports of a run: a live human reporter (a sink of [`Event`]s), and the JSON,
//! JUnit XML, Markdown, HTML and digest documents rendered from the collected results.
//! Every string in the results is already masked by the executor.
//!
//! [`Event`]: crate::exec::Event

mod files;
pub mod github;
pub mod html;
mod human;
mod json;
mod junit;
mod markdown;
mod merge;

pub use files::{WriteError, write, write_reports};
pub use html::to_html;
pub use human::HumanReporter;
pub use json::{ReadError, from_json, to_json};
pub use junit::to_junit;
pub use markdown::to_markdown;
pub use merge::merge;

use crate::exec::{ScenarioResult, Status};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub use crate::exec::{TAIL_BYTES, tail};

/// A finished (or interrupted) run.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// Every scenario, in plan order.
    pub results: Vec<ScenarioResult>,
    /// Wall time.
    pub duration: Duration,
    /// Ctrl-C or SIGTERM stopped it.
    pub interrupted: bool,
}

/// Counts by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Passed.
    pub passed: usize,
    /// Passed after failing (`retries`).
    pub flaky: usize,
    /// Failed.
    pub failed: usize,
    /// Could not run.
    pub errors: usize,
    /// Cache hits.
    pub cached: usize,
    /// Not run.
    pub skipped: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a ScenarioResult>) -> Self {
        let mut s = Self::default();
        for r in results {
            match r.status {
                Status::Passed => s.passed += 1,
                Status::Flaky => s.flaky += 1,
                Status::Failed => s.failed += 1,
                Status::Error => s.errors += 1,
                Status::Cached => s.cached += 1,
                Status::Skipped => s.skipped += 1,
            }
        }
        s
    }

    /// Scenarios counted.
    pub fn total(&self) -> usize {
        self.passed + self.flaky + self.failed + self.errors + self.cached + self.skipped
    }
}

/// What a run comes to (the CLI's exit code, the runs service's run status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything passed, was cached or skipped (flaky ones too, unless they fail it).
    Passed,
    /// A scenario failed (or could not run for a reason of its own).
    Failed,
    /// The environment is not usable: no engine, an image missing.
    Environment,
    /// Ctrl-C, SIGTERM or a cancel stopped it.
    Interrupted,
}

impl RunReport {
    /// The durations (id, ms) of the scenarios that ran (passed, flaky, failed or
    /// error): what `.clnrm/timings.json` records.
    pub fn durations(&self) -> Vec<(String, u64)> {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    Status::Passed | Status::Flaky | Status::Failed | Status::Error
                )
            })
            .map(|r| (r.id.0.clone(), r.duration.as_millis() as u64))
            .collect()
    }

    /// What the run comes to; `flaky_fails`: a flaky scenario fails it.
    pub fn verdict(&self, flaky_fails: bool) -> Verdict {
        if self.interrupted {
            return Verdict::Interrupted;
        }
        let environment = self.results.iter().any(|r| {
            r.status == Status::Error
                && matches!(
                    r.reason,
                    Some(crate::exec::Reason::Image | crate::exec::Reason::Engine)
                )
        });
        let failed = self.results.iter().any(|r| {
            matches!(r.status, Status::Failed | Status::Error)
                || (flaky_fails && r.status == Status::Flaky)
        });
        if environment {
            Verdict::Environment
        } else if failed {
            Verdict::Failed
        } else {
            Verdict::Passed
        }
    }

    /// The results of one file.
    pub fn of_file(&self, file_index: usize) -> Self {
        Self {
            results: self
                .results
                .iter()
                .filter(|r| r.file_index == file_index)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

/// A digest of what the scenarios did (ids, statuses, step exit codes), stable across
/// runs that behave the same: `sha256:<hex>` and the file name.
pub fn to_digest(report: &RunReport, file: &str) -> String {
    let mut h = Sha256::new();
    for r in &report.results {
        h.update(format!("{}\t{}\n", r.id, r.status.as_str()).as_bytes());
        for s in &r.steps {
            h.update(
                format!("  {}\t{}\t{:?}\n", s.name, s.status.as_str(), s.exit_code).as_bytes(),
            );
        }
    }
    let hex = crate::digest::hex(&h.finalize());
    format!("sha256:{hex}  {file}\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exec::{Reason, StepResult};
    use crate::plan::ScenarioId;

    pub fn sample() -> RunReport {
        let step = |name: &str, status, code, out: &str| StepResult {
            name: name.into(),
            service: "app".into(),
            command: "echo 'a b'".into(),
            exit_code: code,
            status,
            reason: (status == Status::Failed).then_some(Reason::ExitCode),
            message: (status == Status::Failed).then(|| "exit code 3, expected 0".into()),
            duration: Duration::from_millis(12),
            stdout: out.into(),
            stderr: String::new(),
            tolerated: false,
            container: String::new(),
            attempts: 1,
            http_status: None,
            snapshot: None,
            at: None,
        };
        let scenario = |file_index, file: &str, name: &str, status, steps| ScenarioResult {
            id: ScenarioId(format!("{file}::{name}")),
            file_index,
            file: file.into(),
            name: name.into(),
            tags: Vec::new(),
            status,
            reason: (status == Status::Failed).then_some(Reason::ExitCode),
            message: (status == Status::Failed)
                .then(|| "step \"b\": exit code 3, expected 0".into()),
            start: Duration::ZERO,
            duration: Duration::from_millis(30),
            setup: Duration::ZERO,
            steps,
            spans: 0,
            unmet: Vec::new(),
            diff: None,
            services: Vec::new(),
            earlier: Vec::new(),
        };
        RunReport {
            run_id: "abc123".into(),
            results: vec![
                scenario(
                    0,
                    "tests/a.clnrm.toml",
                    "ok",
                    Status::Passed,
                    vec![step("a", Status::Passed, Some(0), "hi\n")],
                ),
                scenario(
                    0,
                    "tests/a.clnrm.toml",
                    "bad <&>",
                    Status::Failed,
                    vec![step("b", Status::Failed, Some(3), "oops \"x\"\n")],
                ),
                scenario(1, "tests/b.clnrm.toml", "later", Status::Skipped, vec![]),
                scenario(1, "tests/b.clnrm.toml", "same", Status::Cached, vec![]),
            ],
            duration: Duration::from_millis(1234),
            interrupted: false,
        }
    }

    #[test]
    fn tail_cuts_at_a_character_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }

    #[test]
    fn digest_ignores_timings() {
        let a = sample();
        let mut b = sample();
        b.results[0].duration = Duration::from_secs(9);
        assert_eq!(to_digest(&a, "f"), to_digest(&b, "f"));
        b.results[0].status = Status::Failed;
        assert_ne!(to_digest(&a, "f"), to_digest(&b, "f"));
    }
}
