//! The services of a scenario as the engine starts them: image, command, environment,
//! ports, mounts, limits, readiness probes, dependencies and set-up steps, resolved
//! from a file's `[service.<id>]` tables and the options.

use super::FileCx;
use super::build::{BuildPlan, build_plan};
use super::encoding::{encode, millis};
use super::options::PlanOptions;
use super::secrets::Masker;
use super::step::{PlannedStep, planned_step};
use crate::backend::Mount;
use crate::digest::hex;
use crate::model::defaults;
use crate::model::{Condition, Service, TestFile};
use crate::template::DEFAULT_IMAGE;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A `health_check`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HealthSpec {
    /// Command run in the container until it exits 0 (empty with `http` or `postgres`).
    pub argv: Vec<String>,
    /// Instead: the container port and path clnrm `GET`s until it answers 2xx or 3xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<(u16, String)>,
    /// Instead: the PostgreSQL server clnrm asks whether it accepts connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<crate::model::PgTarget>,
    /// Pause between tries.
    #[serde(serialize_with = "millis")]
    pub interval: Duration,
    /// Bound on one try.
    #[serde(serialize_with = "millis")]
    pub timeout: Duration,
    /// Tries before the service counts as unhealthy.
    pub retries: u64,
}

impl HealthSpec {
    /// The container port clnrm probes itself (`http`, `postgres`): published for it.
    pub fn port(&self) -> Option<u16> {
        self.http
            .as_ref()
            .map(|(port, _)| *port)
            .or(self.postgres.as_ref().map(|t| t.port))
    }

    /// What a probe is, for messages: the command, or what clnrm sends.
    pub fn describe(&self, service: &str) -> String {
        match (&self.http, &self.postgres) {
            (Some((port, path)), _) => format!("GET http://{service}:{port}{path}"),
            (None, Some(t)) => format!(
                "postgres://{}@{service}:{}/{} accepting connections",
                t.user, t.port, t.database
            ),
            (None, None) => self.argv.join(" "),
        }
    }
}

/// A service as the engine needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ServiceSpec {
    /// Its id (`[service.<id>]`), also its name on the scenario's network.
    pub id: String,
    /// Image reference; for a built one, its tag once the run knows it
    /// ([`BuildPlan::tag`]), `clnrm-build/<project>-<service>` before.
    pub image: String,
    /// How its image is built from source, when it is (`[service.<id>.build]`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "build_plan_of"
    )]
    pub build: Option<Arc<BuildPlan>>,
    /// Replaces the image's entrypoint when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Container command; empty means the image's.
    pub args: Vec<String>,
    /// Environment, in the order written.
    pub env: Vec<(String, String)>,
    /// Container ports.
    pub ports: Vec<u16>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// In-memory file systems (`tmpfs`), as written: `/path` or `/path:options`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// The digest of each mount's host content, in the order of `mounts`, once the
    /// run took them ([`attach_inputs`](super::attach_inputs)): an environment (and a
    /// fixture snapshot) made from other content is another one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Readiness probe.
    pub health: Option<HealthSpec>,
    /// Memory limit in bytes.
    pub memory_bytes: i64,
    /// CPU limit in billionths of a core.
    pub nano_cpus: i64,
    /// A span the service must emit before it counts as ready, and how long to wait.
    #[serde(serialize_with = "span_wait")]
    pub wait_for_span: Option<(String, Duration)>,
    /// Services of the environment that must reach a condition before this one
    /// starts, with the condition resolved (the list form's default applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<(String, Condition)>,
    /// `[[service.<id>.setup]]`: what its fixture snapshot is made by (SPEC §7.3).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "setup_steps"
    )]
    pub setup: Option<Arc<Setup>>,
}

/// The set-up steps of a service, run once to make the snapshot its scenarios start
/// from. Two set-ups are the same when their steps are (their [`Setup::key`]).
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// Hash of the steps.
    #[serde(skip)]
    pub key: String,
    /// The steps, in order; each runs in the service.
    pub steps: Vec<PlannedStep>,
    /// The one-shots (`fixture = true`) that depend on the service, run to completion
    /// after the steps, in this order.
    pub then: Vec<ServiceSpec>,
    /// Secret values to mask in their output.
    #[serde(skip)]
    pub masker: Arc<Masker>,
    /// The project's root (its snapshots are its own).
    #[serde(skip)]
    pub project: String,
}

impl PartialEq for Setup {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Setup {}

impl std::hash::Hash for Setup {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl ServiceSpec {
    /// The images whose ids a scenario's cache key names for this service: its image,
    /// or for a built one the images its Dockerfile starts from (its sources are a
    /// part of their own).
    pub fn keyed_images(&self) -> Vec<&str> {
        let mut images = match &self.build {
            Some(b) => b.bases.iter().map(String::as_str).collect(),
            None => vec![self.image.as_str()],
        };
        // The one-shots run into its fixture (`fixture = true`) are a part of it.
        for one in self.setup.iter().flat_map(|s| &s.then) {
            images.extend(one.keyed_images());
        }
        images
    }

    /// Its bind mounts, and those of the one-shots run into its fixture.
    pub fn mounts_with_fixture(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.iter().chain(
            self.setup
                .iter()
                .flat_map(|s| &s.then)
                .flat_map(|o| &o.mounts),
        )
    }

    /// Whether something tells when the service is ready (a health check or a span).
    pub fn has_probe(&self) -> bool {
        self.health.is_some() || self.wait_for_span.is_some()
    }
}

/// `ids` and every service they depend on, directly or not.
pub(super) fn with_dependencies<'a>(
    file: &'a TestFile,
    ids: impl Iterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = ids.collect();
    while let Some(id) = todo.pop() {
        if out.insert(id)
            && let Some(svc) = file.services.get(id)
        {
            todo.extend(svc.depends_on.iter().map(|d| d.service.as_str()));
        }
    }
    out
}

/// The one-shots of `file` run into service `id`'s fixture (`fixture = true`, and
/// `id` the one service they depend on), by id.
pub(super) fn fixture_one_shots<'a>(file: &'a TestFile, id: &str) -> Vec<&'a str> {
    file.services
        .iter()
        .filter(|(_, s)| s.fixture_target() == Some(id))
        .map(|(k, _)| k.value.as_str())
        .collect()
}

/// Whether service `id` of `file` runs into a fixture instead of in scenarios.
pub(super) fn folded(file: &TestFile, id: &str) -> bool {
    file.services
        .get(id)
        .and_then(Service::fixture_target)
        .is_some()
}

/// A service's set-up (steps, then the one-shots run into its fixture), if it has any.
fn setup_of(
    id: &str,
    svc: &Service,
    then: Vec<ServiceSpec>,
    masker: &Arc<Masker>,
    project: &str,
) -> Option<Arc<Setup>> {
    if svc.setup.is_empty() && then.is_empty() {
        return None;
    }
    // A set-up step runs in its own service, whatever it says (the validator refuses
    // another service).
    let steps: Vec<PlannedStep> = svc
        .setup
        .iter()
        .map(|st| PlannedStep {
            service: id.to_owned(),
            // Set-up steps make no calls (the validator refuses `grpc` there).
            ..planned_step(st, id, Path::new("."))
        })
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(encode(&steps).as_bytes());
    hasher.update(encode(&then).as_bytes());
    Some(Arc::new(Setup {
        key: hex(&hasher.finalize()[..8]),
        steps,
        then,
        masker: masker.clone(),
        project: project.to_owned(),
    }))
}

pub(super) fn service_spec(cx: &FileCx<'_>, id: &str, opts: &PlanOptions) -> ServiceSpec {
    let (file, masker) = (cx.file, &cx.masker);
    let base = cx.checked.path.parent().unwrap_or(Path::new("."));
    let limits = file.limits.clone().unwrap_or_default();
    let memory_mb = opts
        .memory_mb
        .or(limits.memory_mb.map(|m| m.value))
        .unwrap_or(opts.executor.container_memory_mb);
    let nano_cpus = match (opts.cpus, &limits.cpu_millicores) {
        (Some(c), _) => (c * 1e9) as i64,
        (None, Some(m)) => (m.value as i64).saturating_mul(1_000_000),
        (None, None) => (opts.executor.container_cpu_limit * 1e9) as i64,
    };
    let memory_bytes = (memory_mb as i64).saturating_mul(1024 * 1024);
    let Some(svc) = file.services.get(id) else {
        return ServiceSpec {
            id: id.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            build: None,
            entrypoint: None,
            args: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            inputs: Vec::new(),
            health: None,
            memory_bytes,
            nano_cpus,
            wait_for_span: None,
            depends_on: Vec::new(),
            setup: None,
        };
    };
    let mut spec = from_service(id, svc, (memory_bytes, nano_cpus), base);
    if let Some(build) = &svc.build {
        let at = cx
            .source
            .as_ref()
            .map_or_else(|| cx.display.to_owned(), |s| s.at(build.span).to_string());
        let planned = build_plan(id, build, svc.develop.as_ref(), base, &opts.project, at);
        spec.image = planned.untagged();
        spec.build = Some(Arc::new(planned));
    }
    let then = fixture_one_shots(file, id)
        .into_iter()
        .map(|one| service_spec(cx, one, opts))
        .collect();
    spec.setup = setup_of(id, svc, then, masker, &opts.project);
    spec.depends_on = svc
        .depends_on
        .iter()
        .map(|d| (d.service.value.clone(), condition_of(file, d)))
        .collect();
    spec
}

/// The condition of dependency `d`: as written, else `healthy` when the service has a
/// health check or a ready span, else `started`.
pub(super) fn condition_of(file: &TestFile, d: &crate::model::Dependency) -> Condition {
    d.condition.as_ref().map(|c| c.value).unwrap_or_else(|| {
        let probed = file
            .services
            .get(&d.service)
            .is_some_and(|t| t.health_check.is_some() || t.wait_for_span.is_some());
        if probed {
            Condition::Healthy
        } else {
            Condition::Started
        }
    })
}

fn from_service(
    id: &str,
    svc: &Service,
    (memory_bytes, nano_cpus): (i64, i64),
    base: &Path,
) -> ServiceSpec {
    let health = svc.health_check.as_ref().map(|h| HealthSpec {
        argv: h.cmd.iter().map(|a| a.value.clone()).collect(),
        http: h
            .http
            .as_ref()
            .and_then(|u| u.value.target())
            .map(|t| (t.port, t.path.clone())),
        postgres: h
            .postgres
            .as_ref()
            .and_then(|u| crate::model::postgres_target(&u.value).ok()),
        interval: Duration::from_millis(
            h.interval_ms
                .as_ref()
                .map_or(defaults::HEALTH_INTERVAL_MS, |v| v.value),
        ),
        timeout: Duration::from_millis(
            h.timeout_ms
                .as_ref()
                .map_or(defaults::HEALTH_TIMEOUT_MS, |v| v.value),
        ),
        retries: h
            .retries
            .as_ref()
            .map_or(defaults::HEALTH_RETRIES, |v| v.value),
    });
    ServiceSpec {
        id: id.to_owned(),
        image: svc
            .image
            .as_ref()
            .map_or_else(|| DEFAULT_IMAGE.to_owned(), |i| i.value.clone()),
        build: None,
        entrypoint: svc
            .entrypoint
            .as_ref()
            .map(|e| e.iter().map(|a| a.value.clone()).collect()),
        args: svc.args.iter().map(|a| a.value.clone()).collect(),
        env: svc
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        // An `http` health check's port is published for clnrm, as an `http` step's is.
        ports: {
            let mut ports: Vec<u16> = svc.ports.iter().map(|p| p.value).collect();
            if let Some(port) = health.as_ref().and_then(HealthSpec::port)
                && !ports.contains(&port)
            {
                ports.push(port);
            }
            ports
        },
        mounts: svc
            .volumes
            .iter()
            .map(|v| Mount {
                host_path: v.host_path_in(base).to_string_lossy().into_owned(),
                container_path: v.container_path.value.clone(),
                read_only: v.read_only.as_ref().is_some_and(|r| r.value),
            })
            .collect(),
        tmpfs: svc.tmpfs.iter().map(|t| t.value.clone()).collect(),
        inputs: Vec::new(),
        health,
        memory_bytes,
        nano_cpus,
        wait_for_span: svc.wait_for_span.as_ref().map(|w| {
            let secs = svc
                .wait_for_span_timeout_secs
                .as_ref()
                .map_or(defaults::WAIT_FOR_SPAN_TIMEOUT_SECS, |t| t.value);
            (w.value.clone(), Duration::from_secs(secs))
        }),
        depends_on: Vec::new(),
        setup: None,
    }
}

fn build_plan_of<S: serde::Serializer>(
    build: &Option<Arc<BuildPlan>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    build.as_deref().serialize(s)
}

fn setup_steps<S: serde::Serializer>(setup: &Option<Arc<Setup>>, s: S) -> Result<S::Ok, S::Error> {
    setup
        .as_ref()
        .map(|set| (&set.steps, &set.then))
        .serialize(s)
}

fn span_wait<S: serde::Serializer>(
    w: &Option<(String, Duration)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    w.as_ref()
        .map(|(name, d)| (name, d.as_millis() as u64))
        .serialize(s)
}
