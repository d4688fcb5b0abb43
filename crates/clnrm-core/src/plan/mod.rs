//! Planning: turns validated test files into the scenarios a run executes, each with
//! the environment (services, limits, network) it needs resolved and keyed, its
//! steps as argv, its timeouts, and its secrets. Pure: no engine, no async.
//!
//! Here: the entry ([`plan`]) and what the scenarios of one file share while they are
//! planned. Each part of a plan is made in the file named after it: `scenario`
//! (a scenario and the plan), `step` and `http` (its steps), `services` and `env`
//! (the containers it runs in), `otel` (its telemetry), `secrets` (what is masked),
//! `files` (report paths), `fingerprint` and `encoding` (what its keys hash),
//! `selection` (`--filter`, `--tag`, `--partition`), `options` (what the command line
//! and config give), `inputs` (the host content its mounts read) and `build` (the
//! images built from source).

mod build;
mod encoding;
mod env;
mod files;
mod fingerprint;
mod grpc;
mod http;
mod inputs;
mod options;
mod otel;
mod scenario;
mod secrets;
mod selection;
mod services;
mod step;

pub use build::{BuildPlan, SyncRule, Synced, attach_builds};
pub use env::{EnvSpec, NetworkNeed};
pub use files::{PlannedFile, report_files};
pub use grpc::GrpcSpec;
pub use http::{HttpBody, HttpSpec};
pub use inputs::{UNKNOWABLE, attach_inputs, file_contexts, file_inputs, host_inputs};
pub use options::PlanOptions;
pub use otel::{Intake, OtlpSettings, SpanWait, baggage_escape, intake, resource_attributes};
pub use scenario::{IMPLICIT_SERVICE, NotSelected, Plan, PlannedScenario, ScenarioId};
pub use secrets::{MASK, Masker, is_secret_key};
pub use selection::tags_select;
pub use services::{HealthSpec, ServiceSpec, Setup};
pub use step::{CaptureHow, CaptureSpec, PlannedStep, RetrySpec};

use crate::expect::ExpectSet;
use crate::model::TestFile;
use crate::validate::CheckedFile;
use fingerprint::{file_fingerprint, fingerprint};
use scenario::{expect_set, plan_scenario};
use secrets::file_masker;
use selection::select;
use std::sync::Arc;

/// Plans every scenario of the valid files in `checked`.
pub fn plan(checked: &[CheckedFile], opts: &PlanOptions) -> Plan {
    let mut out = Plan::default();
    for cf in checked {
        let Some(file) = &cf.file else { continue };
        out.files.push(PlannedFile::of(cf));
        // One per file: its expectations and its steps are located in it.
        let source = cf
            .rendered
            .clone()
            .map(|s| Arc::new(crate::expect::SourceFile::new(s, cf.display.clone())));
        let cx = FileCx {
            file,
            checked: cf,
            display: &cf.display,
            index: out.files.len() - 1,
            masker: Arc::new(file_masker(file)),
            expect: expect_set(source.as_ref(), &file.expect),
            intake: intake(file),
            source,
        };
        let shared = file_fingerprint(&file.content, opts);
        for (sc, own) in file.scenarios.iter().zip(&file.content.scenarios) {
            let order = out.scenarios.len();
            let mut planned = plan_scenario(&cx, sc, order, opts);
            planned.fingerprint = fingerprint(&shared, own, &planned);
            out.scenarios.push(planned);
        }
    }
    select(&mut out.scenarios, opts);
    out
}

/// What the scenarios of one file share.
struct FileCx<'a> {
    file: &'a TestFile,
    checked: &'a CheckedFile,
    display: &'a str,
    index: usize,
    masker: Arc<Masker>,
    expect: Option<Arc<ExpectSet>>,
    intake: Intake,
    source: Option<Arc<crate::expect::SourceFile>>,
}

/// Planning a file's text, for unit tests here and in `exec`.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::diag::Source;
    use std::path::PathBuf;

    /// The plan of `text`, read as `t.clnrm.toml` (which must be valid).
    pub(crate) fn planned(text: &str) -> Plan {
        let src = Source::file("t.clnrm.toml", text);
        let (file, diags) = crate::model::parse_test_file(&src);
        assert!(diags.into_sorted().iter().all(|d| !d.is_error()));
        let checked = CheckedFile {
            path: PathBuf::from("t.clnrm.toml"),
            display: "t.clnrm.toml".into(),
            source: Some(src.clone()),
            rendered: Some(src),
            file,
            diagnostics: Vec::new(),
            dependencies: Vec::new(),
        };
        plan(&[checked], &PlanOptions::default())
    }
}
