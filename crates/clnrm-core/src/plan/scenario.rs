//! Planned scenarios and the plan: one scenario of a file with its steps, the
//! services it starts, its environment, timeout, secrets and expectations.

use super::FileCx;
use super::env::{EnvSpec, env_spec};
use super::files::PlannedFile;
use super::options::PlanOptions;
use super::otel::{Intake, SpanWait, span_limits};
use super::secrets::Masker;
use super::services::{ServiceSpec, condition_of, folded, service_spec, with_dependencies};
use super::step::{PlannedStep, planned_step};
use crate::expect::ExpectSet;
use crate::model::{Expect, Scenario, TestFile};
use crate::otel::SpanLimits;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `<path relative to the project root>::<scenario name>`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ScenarioId(pub String);

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service a scenario gets when its file defines none.
pub const IMPLICIT_SERVICE: &str = "default";

/// Why a scenario is not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSelected {
    /// `--filter` does not match its id.
    Filtered,
    /// Another `--partition` runs it.
    OtherPartition,
}

/// A scenario ready to run.
#[derive(Clone, Debug)]
pub struct PlannedScenario {
    /// Its id.
    pub id: ScenarioId,
    /// Index into [`Plan::files`].
    pub file: usize,
    /// Scenario name.
    pub name: String,
    /// Its `tags`.
    pub tags: Vec<String>,
    /// Higher runs first.
    pub priority: i64,
    /// Position in the files as given (the last tie-breaker).
    pub order: usize,
    /// Its containers.
    pub env: Arc<EnvSpec>,
    /// Steps in order.
    pub steps: Vec<PlannedStep>,
    /// Scenario timeout.
    pub timeout: Option<Duration>,
    /// Never runs beside another scenario of its file.
    pub exclusive: bool,
    /// Its own `retries`, over the run's.
    pub retries: Option<u32>,
    /// Secret values to mask.
    pub masker: Arc<Masker>,
    /// `Some` when it will not run.
    pub not_selected: Option<NotSelected>,
    /// The file's expectations, when it has any.
    pub expect: Vec<Arc<ExpectSet>>,
    /// Its file as rendered, for the positions of its steps (none for a set-up).
    pub source: Option<Arc<crate::expect::SourceFile>>,
    /// Where its spans come from.
    pub intake: Intake,
    /// How many spans it may collect.
    pub span_limits: SpanLimits,
    /// How long to wait for its spans after its last step.
    pub span_wait: SpanWait,
    /// Hash of everything in the files and options that decides its outcome (the
    /// cache key adds the image ids and its baseline).
    pub fingerprint: String,
}

/// What a run executes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Files, in the order given.
    pub files: Vec<PlannedFile>,
    /// Scenarios, in file order.
    pub scenarios: Vec<PlannedScenario>,
}

impl Plan {
    /// The scenarios that will run.
    pub fn selected(&self) -> impl Iterator<Item = &PlannedScenario> {
        self.scenarios.iter().filter(|s| s.not_selected.is_none())
    }
}

/// `expect` of a file read as `source`, when it expects anything.
pub(super) fn expect_set(
    source: Option<&Arc<crate::expect::SourceFile>>,
    expect: &Expect,
) -> Option<Arc<ExpectSet>> {
    if expect.is_empty() {
        return None;
    }
    Some(Arc::new(ExpectSet::in_file(
        expect.clone(),
        source?.clone(),
    )))
}

pub(super) fn plan_scenario(
    cx: &FileCx<'_>,
    sc: &Scenario,
    order: usize,
    opts: &PlanOptions,
) -> PlannedScenario {
    let (file, display, file_index) = (cx.file, cx.display, cx.index);
    let only_service = (file.services.len() == 1).then(|| file.services.entries[0].0.value.clone());
    let default_service = sc
        .service
        .as_ref()
        .map(|s| s.value.clone())
        .or(only_service)
        .unwrap_or_else(|| IMPLICIT_SERVICE.to_owned());
    let mut steps = Vec::new();
    if let Some(run) = &sc.run {
        steps.push(PlannedStep {
            name: "run".into(),
            service: default_service.clone(),
            argv: run.argv.clone(),
            expected_exit_code: 0,
            expected_output_regex: None,
            workdir: None,
            env: Vec::new(),
            continue_on_failure: false,
            timeout: None,
            retry: None,
            captures: Vec::new(),
            http: None,
            grpc: None,
            snapshot: None,
            span: Some(run.span),
        });
    }
    let id = format!("{display}::{}", sc.name.value);
    let redact = snapshot_redactions(file, opts);
    steps.extend(sc.steps.iter().map(|st| {
        let base = cx
            .checked
            .path
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let mut step = planned_step(st, &default_service, base);
        if st.snapshot.as_ref().is_some_and(|s| s.value) {
            let dir = Path::new(&opts.project).join(crate::project::Layout::SNAPSHOTS);
            let path = crate::snapshots::path_for(&dir, &id, &step.name);
            let display = path
                .strip_prefix(&opts.project)
                .unwrap_or(&path)
                .display()
                .to_string();
            step.snapshot = Some(Arc::new(crate::snapshots::SnapshotSpec {
                path,
                display,
                scenario: id.clone(),
                step: step.name.clone(),
                redact: redact.clone(),
                update: opts.update_snapshots,
            }));
        }
        step
    }));
    // Without `services`, every service of the file is started, as `docker compose
    // up` would: a scenario may talk over the network to a service it runs no step in.
    let mut ids: BTreeSet<&str> = match &sc.services {
        Some(list) => with_dependencies(file, list.value.iter().map(|s| s.as_str())),
        None => file
            .services
            .iter()
            .map(|(k, _)| k.value.as_str())
            .collect(),
    };
    ids.extend(steps.iter().map(|s| s.service.as_str()));
    // A one-shot run into a fixture is not started: what depends on it starts at once.
    ids.retain(|id| !folded(file, id));
    let mut services: Vec<ServiceSpec> = ids.iter().map(|id| service_spec(cx, id, opts)).collect();
    for svc in &mut services {
        // What waited for the one-shot waits for what the one-shot waited for.
        let inherited: Vec<(String, crate::model::Condition)> = svc
            .depends_on
            .iter()
            .filter(|(d, _)| folded(file, d))
            .filter_map(|(d, _)| file.services.get(d.as_str()))
            .flat_map(|one| one.depends_on.iter())
            .map(|dep| (dep.service.value.clone(), condition_of(file, dep)))
            .collect();
        svc.depends_on.retain(|(d, _)| !folded(file, d));
        for (d, c) in inherited {
            if !svc.depends_on.iter().any(|(have, _)| *have == d) {
                svc.depends_on.push((d, c));
            }
        }
    }
    // clnrm publishes on loopback every container port an `http` or `grpc` step reaches.
    let targets = steps.iter().filter_map(|s| {
        s.http
            .as_ref()
            .and_then(|h| h.url.target())
            .map(|t| (t.host.clone(), t.port))
            .or_else(|| s.grpc.as_ref().and_then(|g| g.target()))
    });
    for (host, port) in targets.collect::<Vec<_>>() {
        if let Some(svc) = services.iter_mut().find(|s| s.id == host)
            && !svc.ports.contains(&port)
        {
            svc.ports.push(port);
        }
    }
    let exclusive = sc.concurrent.as_ref().is_some_and(|c| !c.value)
        || services
            .iter()
            .flat_map(|s| &s.mounts)
            .any(|m| !m.read_only);
    let env = Arc::new(env_spec(file, services));
    PlannedScenario {
        id: ScenarioId(format!("{display}::{}", sc.name.value)),
        file: file_index,
        name: sc.name.value.clone(),
        tags: sc.tags.iter().map(|t| t.value.clone()).collect(),
        priority: sc.priority.as_ref().map_or(0, |p| p.value),
        order,
        env,
        steps,
        timeout: sc
            .timeout_ms
            .as_ref()
            .map(|t| Duration::from_millis(t.value)),
        exclusive,
        retries: sc
            .retries
            .as_ref()
            .map(|r| r.value.try_into().unwrap_or(u32::MAX)),
        masker: cx.masker.clone(),
        not_selected: None,
        // The file's expectations, then the scenario's own.
        expect: cx
            .expect
            .iter()
            .cloned()
            .chain(expect_set(cx.source.as_ref(), &sc.expect))
            .collect(),
        source: cx.source.clone(),
        intake: cx.intake,
        span_limits: span_limits(file),
        span_wait: SpanWait::of(file),
        fingerprint: String::new(),
    }
}

/// The config's redactions, then the file's (valid: the validator and the config
/// reader dropped those that do not compile).
fn snapshot_redactions(file: &TestFile, opts: &PlanOptions) -> Arc<crate::snapshots::Redactions> {
    let file_own = file
        .snapshot
        .iter()
        .flat_map(|s| s.redact.iter())
        .map(|(k, v)| (k.value.clone(), v.value.clone()));
    let pairs = opts
        .snapshot_redact
        .iter()
        .cloned()
        .chain(file_own)
        .filter_map(|(k, v): (String, String)| {
            crate::model::compile_regex(&k).ok().map(|re| (re, v))
        })
        .collect();
    Arc::new(crate::snapshots::Redactions(pairs))
}
