//! Planning: turns validated test files into the scenarios a run executes, each with
//! the environment (services, limits, network) it needs resolved and keyed, its
//! steps as argv, its timeouts, and its secrets. Pure: no engine, no async.

mod inputs;
mod secrets;

pub use inputs::{UNKNOWABLE, attach_inputs, file_inputs, host_inputs};
pub use secrets::{MASK, Masker, is_secret_key};

use crate::backend::Mount;
use crate::expect::ExpectSet;
use crate::model::defaults;
use crate::model::{Condition, Content, Expect, Exporter, Protocol, Scenario, Service, TestFile};
use crate::otel::SpanLimits;
use crate::project::ExecutorConfig;
use crate::template::DEFAULT_IMAGE;
use crate::validate::CheckedFile;
use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
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

/// Limits and selection given on the command line.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `--memory MB`.
    pub memory_mb: Option<u64>,
    /// `--cpu CORES`.
    pub cpus: Option<f64>,
    /// `--filter GLOB` on scenario ids.
    pub filter: Option<globset::GlobSet>,
    /// `--partition [hash:|duration:]K/N` (1-based K).
    pub partition: Option<crate::config::Partition>,
    /// Recorded durations by scenario id, in ms (for `duration:K/N`).
    pub timings: std::collections::BTreeMap<String, u64>,
    /// `--tag`: only scenarios with any of these tags (none given: every scenario).
    pub tags: Vec<String>,
    /// `--skip-tag`: no scenario with any of these tags.
    pub skip_tags: Vec<String>,
    /// `[executor]` of the config.
    pub executor: ExecutorConfig,
    /// The template variables given from outside the files (`--var`, `CLNRM_VAR_*`,
    /// config), canonical; part of every scenario's cache key.
    pub context: String,
    /// The project's root: whose fixture snapshots a run makes and `clnrm cache` removes.
    pub project: String,
    /// `--update-snapshots`: steps write their output snapshots instead of failing.
    pub update_snapshots: bool,
    /// The config's `[snapshot] redact`.
    pub snapshot_redact: Vec<(String, String)>,
}

/// A `health_check`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HealthSpec {
    /// Command run in the container until it exits 0.
    pub argv: Vec<String>,
    /// Pause between tries.
    #[serde(serialize_with = "millis")]
    pub interval: Duration,
    /// Bound on one try.
    #[serde(serialize_with = "millis")]
    pub timeout: Duration,
    /// Tries before the service counts as unhealthy.
    pub retries: u64,
}

/// A service as the engine needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ServiceSpec {
    /// Its id (`[service.<id>]`), also its name on the scenario's network.
    pub id: String,
    /// Image reference.
    pub image: String,
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
    /// The digest of each mount's host content, in the order of `mounts`, once the
    /// run took them ([`attach_inputs`]): an environment (and a fixture snapshot)
    /// made from other content is another one.
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
    /// Whether something tells when the service is ready (a health check or a span).
    pub fn has_probe(&self) -> bool {
        self.health.is_some() || self.wait_for_span.is_some()
    }
}

/// How the containers of an environment are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkNeed {
    /// Loopback only: one service, no ports, no OTLP export.
    None,
    /// The default bridge: published ports or an OTLP exporter to reach.
    Bridge,
    /// A network of its own where services reach each other by id.
    Private,
}

/// The containers a scenario runs in. Scenarios with equal keys can share warm
/// containers (one at a time).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct EnvSpec {
    /// Hash of everything below.
    #[serde(skip)]
    pub key: String,
    /// Services, sorted by id.
    pub services: Vec<ServiceSpec>,
    /// Network.
    pub network: NetworkNeed,
    /// OTLP export settings given to every container, when the file exports over OTLP.
    pub otlp: Option<OtlpSettings>,
}

/// How the system under test exports to clnrm's receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct OtlpSettings {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, `http/json` or `grpc`.
    pub protocol: String,
    /// Other `OTEL_*` variables from `[otel]` (sampler, propagators, headers).
    pub env: Vec<(String, String)>,
    /// `[otel].resources` as `key=value` pairs.
    pub resources: Vec<(String, String)>,
}

impl OtlpSettings {
    /// Whether the exporter speaks gRPC.
    pub fn grpc(&self) -> bool {
        self.protocol == "grpc"
    }
}

/// Percent-encodes what `OTEL_RESOURCE_ATTRIBUTES` (W3C baggage syntax) does not allow.
pub fn baggage_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        let ok = matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C | 0x3E..=0x5B | 0x5D..=0x7E);
        if ok {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `OTEL_RESOURCE_ATTRIBUTES` for these pairs.
pub fn resource_attributes(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", baggage_escape(k), baggage_escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// One command of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedStep {
    /// Step name (`run` for a scenario's `run`).
    pub name: String,
    /// Service it runs in.
    pub service: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Exit code that counts as success.
    pub expected_exit_code: i64,
    /// Regex stdout or stderr must match; `^` and `$` match at line ends, as in grep.
    #[serde(serialize_with = "pattern")]
    pub expected_output_regex: Option<Regex>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Go on after a failure.
    pub continue_on_failure: bool,
    /// Step timeout.
    #[serde(serialize_with = "optional_millis")]
    pub timeout: Option<Duration>,
    /// Runs in all while it fails, and the pause between them (`retry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// What it captures for later steps, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<CaptureSpec>,
    /// The request clnrm sends instead of running a command (`argv` is empty then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<HttpSpec>>,
    /// Where its output snapshot is and how it is compared (`snapshot = true`;
    /// cache keys add it themselves).
    #[serde(skip)]
    pub snapshot: Option<Arc<crate::snapshots::SnapshotSpec>>,
    /// Where it is written (its `name`, or the scenario's `run`): shown when it fails;
    /// no part of any key (moving a step is no change).
    #[serde(skip)]
    pub span: Option<crate::diag::Span>,
}

/// An `http` step's request and checks.
#[derive(Clone, Debug, Serialize)]
pub struct HttpSpec {
    /// The method, upper case.
    pub method: String,
    /// The URL as written (`${name}` resolved before it is sent).
    pub url: crate::model::HttpUrl,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// The body: text as written, or JSON.
    pub body: Option<HttpBody>,
    /// Time the request may take.
    #[serde(serialize_with = "millis")]
    pub timeout: Duration,
    /// Status codes that count as success; empty: any 2xx.
    pub expected_status: Vec<u16>,
    /// Regex the body must match.
    #[serde(serialize_with = "pattern")]
    pub expected_body_regex: Option<Regex>,
    /// JSONPath → the value it must select first in the body.
    #[serde(serialize_with = "json_checks")]
    pub expected_json: Vec<(crate::model::JsonPathQuery, serde_json::Value)>,
}

/// An `http` step's body.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpBody {
    /// `body`: sent as it is.
    Text(String),
    /// `json`: sent as JSON, with `Content-Type: application/json` unless set.
    Json(serde_json::Value),
}

fn json_checks<S: serde::Serializer>(
    checks: &[(crate::model::JsonPathQuery, serde_json::Value)],
    s: S,
) -> Result<S::Ok, S::Error> {
    checks
        .iter()
        .map(|(q, v)| (q.as_str(), v))
        .collect::<Vec<_>>()
        .serialize(s)
}

/// One capture of a step.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureSpec {
    /// The name later steps use as `${name}`.
    pub name: String,
    /// `stdout` or `stderr`.
    pub from: String,
    /// How the value is found.
    pub how: CaptureHow,
}

/// How a capture finds its value.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureHow {
    /// The first value a JSONPath query selects in the output parsed as JSON.
    Json(#[serde(serialize_with = "query_text")] crate::model::JsonPathQuery),
    /// The first group of the first match (the whole match without groups).
    Regex(#[serde(serialize_with = "regex_text")] Regex),
}

fn query_text<S: serde::Serializer>(
    q: &crate::model::JsonPathQuery,
    s: S,
) -> Result<S::Ok, S::Error> {
    q.as_str().serialize(s)
}

fn regex_text<S: serde::Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
    re.as_str().serialize(s)
}

/// A step's `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetrySpec {
    /// Runs in all, the first included.
    pub attempts: u32,
    /// Pause between runs.
    #[serde(serialize_with = "millis")]
    pub interval: Duration,
}

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

/// How long a scenario waits for its spans after its last step (`[otel] settle_ms`
/// and `max_wait_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanWait {
    /// Spans are in once none arrived for this long...
    pub settle: Duration,
    /// ...or this long has passed.
    pub max: Duration,
}

impl SpanWait {
    /// The wait `file` asks for.
    pub fn of(file: &TestFile) -> Self {
        let otel = file.otel.as_ref();
        let ms = |v: Option<&crate::model::Sp<u64>>, default| {
            Duration::from_millis(v.map_or(default, |v| v.value))
        };
        Self {
            settle: ms(
                otel.and_then(|o| o.settle_ms.as_ref()),
                defaults::SPAN_SETTLE_MS,
            ),
            max: ms(
                otel.and_then(|o| o.max_wait_ms.as_ref()),
                defaults::SPAN_MAX_WAIT_MS,
            ),
        }
    }
}

/// Where a scenario's spans come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intake {
    /// JSON span lines in the steps' stdout.
    Stdout,
    /// clnrm's OTLP receiver (HTTP, or gRPC).
    Otlp {
        /// The exporter speaks gRPC.
        grpc: bool,
    },
    /// No spans.
    None,
}

/// A file whose scenarios are planned.
#[derive(Clone, Debug)]
pub struct PlannedFile {
    /// As shown to users.
    pub display: String,
    /// On disk.
    pub path: PathBuf,
    /// `[report] json`, resolved.
    pub report_json: Option<PathBuf>,
    /// `[report] junit`, resolved.
    pub report_junit: Option<PathBuf>,
    /// `[report] digest`, resolved.
    pub report_digest: Option<PathBuf>,
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

impl PlannedFile {
    /// `cf` as planned: its `[report]` paths resolved from its directory.
    fn of(cf: &CheckedFile) -> Self {
        let base = cf.path.parent().map(PathBuf::from).unwrap_or_default();
        let report = cf.file.as_ref().and_then(|f| f.report.as_ref());
        let resolve = |p: Option<&crate::model::Sp<String>>| p.map(|v| base.join(&v.value));
        Self {
            display: cf.display.clone(),
            path: cf.path.clone(),
            report_json: resolve(report.and_then(|r| r.json.as_ref())),
            report_junit: resolve(report.and_then(|r| r.junit.as_ref())),
            report_digest: resolve(report.and_then(|r| r.digest.as_ref())),
        }
    }

    /// The report files its `[report]` table names.
    pub fn reports(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.report_json, &self.report_junit, &self.report_digest]
            .into_iter()
            .flatten()
    }
}

/// The report files the `[report]` table of `cf` names (resolved from its directory).
pub fn report_files(cf: &CheckedFile) -> Vec<PathBuf> {
    PlannedFile::of(cf).reports().cloned().collect()
}

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

/// What every scenario of a file shares in its fingerprint: the file's services,
/// limits, otel and expectations as rendered, the outside variables and the clnrm
/// version. Computed once per file.
fn file_fingerprint(content: &Content, opts: &PlanOptions) -> String {
    let parts = [crate::cache::VERSION]
        .into_iter()
        .chain(content.shared.iter().map(String::as_str))
        .chain([opts.context.as_str()]);
    crate::digest::key(parts)
}

/// Everything that decides scenario `index`'s outcome: the file's shared part, its own
/// table as rendered, and its resolved environment and steps. Other scenarios' tables,
/// comments and formatting do not count.
fn fingerprint(shared: &str, own: &str, sc: &PlannedScenario) -> String {
    let steps = encode(&sc.steps);
    let env = encode(&(&*sc.env, sc.timeout.map(|t| t.as_millis() as u64)));
    crate::digest::key([shared, own, steps.as_str(), env.as_str()])
}

/// Whether a scenario tagged `tags` is selected by `--tag wanted` (any of them; none
/// given: all) and `--skip-tag skipped` (none of them).
pub fn tags_select(tags: &[String], wanted: &[String], skipped: &[String]) -> bool {
    (wanted.is_empty() || tags.iter().any(|t| wanted.contains(t)))
        && !tags.iter().any(|t| skipped.contains(t))
}

fn select(scenarios: &mut [PlannedScenario], opts: &PlanOptions) {
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

fn file_masker(file: &TestFile) -> Masker {
    let service_env = file.services.iter().flat_map(|(_, s)| {
        s.env
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
    });
    let step_env = file.scenarios.iter().flat_map(|sc| {
        sc.steps.iter().flat_map(|st| {
            st.env
                .iter()
                .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
        })
    });
    // OTLP headers that carry credentials (`authorization`, `x-api-key`, cookies).
    let headers = file.otel.iter().flat_map(|o| {
        o.headers
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                is_secret_key(&k) || k.contains("auth") || k.contains("cookie")
            })
            .map(|(_, v)| ("SECRET", v))
    });
    Masker::from_env(service_env.chain(step_env).chain(headers))
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

/// `expect` of a file read as `source`, when it expects anything.
fn expect_set(
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

/// Where a file's spans come from (`[otel].exporter`).
pub fn intake(file: &TestFile) -> Intake {
    match file
        .otel
        .as_ref()
        .and_then(|o| o.exporter.as_ref())
        .map(|e| e.value)
    {
        None | Some(Exporter::Stdout) => Intake::Stdout,
        Some(Exporter::None) => Intake::None,
        Some(Exporter::Otlp | Exporter::OtlpHttp) => Intake::Otlp { grpc: false },
        Some(Exporter::OtlpGrpc) => Intake::Otlp { grpc: true },
    }
}

/// The file's span limits: `[otel] max_spans` over the default.
fn span_limits(file: &TestFile) -> SpanLimits {
    let mut limits = SpanLimits::default();
    if let Some(m) = file.otel.as_ref().and_then(|o| o.max_spans.as_ref()) {
        limits.max_spans = usize::try_from(m.value).unwrap_or(usize::MAX);
    }
    limits
}

/// `[otel]` settings passed to the system under test as standard SDK variables.
fn otel_env(file: &TestFile) -> Vec<(String, String)> {
    let Some(otel) = &file.otel else {
        return Vec::new();
    };
    let mut env = Vec::new();
    if let Some(r) = &otel.sample_ratio {
        env.push((
            "OTEL_TRACES_SAMPLER".to_owned(),
            "parentbased_traceidratio".to_owned(),
        ));
        env.push(("OTEL_TRACES_SAMPLER_ARG".to_owned(), r.value.to_string()));
    }
    if let Some(p) = &otel.propagators {
        let words: Vec<&str> = p.use_.iter().map(|w| w.value.as_str()).collect();
        env.push(("OTEL_PROPAGATORS".to_owned(), words.join(",")));
    }
    if !otel.headers.is_empty() {
        let pairs: Vec<String> = otel
            .headers
            .iter()
            .map(|(k, v)| format!("{}={}", k.value, v.value))
            .collect();
        env.push(("OTEL_EXPORTER_OTLP_HEADERS".to_owned(), pairs.join(",")));
    }
    env
}

fn plan_scenario(
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
            snapshot: None,
            span: Some(run.span),
        });
    }
    let id = format!("{display}::{}", sc.name.value);
    let redact = snapshot_redactions(file, opts);
    steps.extend(sc.steps.iter().map(|st| {
        let mut step = planned_step(st, &default_service);
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
    let mut services: Vec<ServiceSpec> = ids.iter().map(|id| service_spec(cx, id, opts)).collect();
    // clnrm publishes on loopback every container port an `http` step reaches.
    for target in steps
        .iter()
        .filter_map(|s| s.http.as_ref())
        .filter_map(|h| h.url.target())
    {
        if let Some(svc) = services.iter_mut().find(|s| s.id == target.host)
            && !svc.ports.contains(&target.port)
        {
            svc.ports.push(target.port);
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

/// `ids` and every service they depend on, directly or not.
fn with_dependencies<'a>(
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

fn scalar_text(s: &crate::model::Scalar) -> String {
    match s {
        crate::model::Scalar::String(v) => v.clone(),
        other => other.to_string(),
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

/// A step as the executor runs it; `service` when the step names none (an `http`
/// step runs in the service its URL names, when it names one).
fn planned_step(st: &crate::model::Step, service: &str) -> PlannedStep {
    let http = st.http.as_ref().map(|h| Box::new(http_spec(st, h)));
    let target = http
        .as_ref()
        .and_then(|h| h.url.target().map(|t| t.host.clone()));
    PlannedStep {
        name: st.name.value.clone(),
        service: st.service.as_ref().map_or_else(
            || target.unwrap_or_else(|| service.to_owned()),
            |s| s.value.clone(),
        ),
        argv: st
            .command
            .iter()
            .flat_map(|c| c.value.iter().map(|a| a.value.clone()))
            .collect(),
        http,
        snapshot: None,
        span: Some(st.name.span),
        expected_exit_code: st.expected_exit_code.as_ref().map_or(0, |c| c.value),
        expected_output_regex: st.expected_output_regex.as_ref().map(|r| r.regex().clone()),
        workdir: st.workdir.as_ref().map(|w| w.value.clone()),
        env: st
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        continue_on_failure: st.continue_on_failure.as_ref().is_some_and(|c| c.value),
        timeout: st
            .timeout_ms
            .as_ref()
            .map(|t| Duration::from_millis(t.value)),
        captures: st
            .capture
            .iter()
            .filter_map(|(name, c)| {
                let how = match (&c.json, &c.regex) {
                    (Some(q), _) => CaptureHow::Json(q.value.clone()),
                    (None, Some(r)) => CaptureHow::Regex(r.value.regex().clone()),
                    (None, None) => return None,
                };
                Some(CaptureSpec {
                    name: name.value.clone(),
                    from: c.from.as_ref().map_or_else(
                        || if st.http.is_some() { "body" } else { "stdout" }.to_owned(),
                        |f| f.value.clone(),
                    ),
                    how,
                })
            })
            .collect(),
        retry: st.retry.as_ref().map(|r| RetrySpec {
            attempts: r.attempts.value.clamp(1, defaults::RETRY_MAX_ATTEMPTS) as u32,
            interval: Duration::from_millis(
                r.interval_ms
                    .as_ref()
                    .map_or(defaults::RETRY_INTERVAL_MS, |i| i.value),
            ),
        }),
    }
}

fn http_spec(st: &crate::model::Step, h: &crate::model::HttpRequest) -> HttpSpec {
    let json = |v: &toml::Value| serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    HttpSpec {
        method: h
            .method
            .as_ref()
            .map_or_else(|| "GET".to_owned(), |m| m.value.to_ascii_uppercase()),
        url: h.url.value.clone(),
        headers: h
            .headers
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        body: match (&h.json, &h.body) {
            (Some(j), _) => Some(HttpBody::Json(json(&j.value))),
            (None, Some(b)) => Some(HttpBody::Text(b.value.clone())),
            (None, None) => None,
        },
        timeout: Duration::from_millis(
            h.timeout_ms
                .as_ref()
                .map_or(defaults::HTTP_TIMEOUT_MS, |t| t.value),
        ),
        expected_status: st
            .expected_status
            .as_ref()
            .map(|s| s.value.iter().map(|c| c.value).collect())
            .unwrap_or_default(),
        expected_body_regex: st.expected_body_regex.as_ref().map(|r| r.regex().clone()),
        expected_json: st
            .expected_json
            .iter()
            .filter_map(|(path, v)| {
                let query = crate::model::JsonPathQuery::parse(&path.value).ok()?;
                Some((query, json(v)))
            })
            .collect(),
    }
}

/// A service's set-up steps, if it has any.
fn setup_of(id: &str, svc: &Service, masker: &Arc<Masker>, project: &str) -> Option<Arc<Setup>> {
    if svc.setup.is_empty() {
        return None;
    }
    // A set-up step runs in its own service, whatever it says (the validator refuses
    // another service).
    let steps: Vec<PlannedStep> = svc
        .setup
        .iter()
        .map(|st| PlannedStep {
            service: id.to_owned(),
            ..planned_step(st, id)
        })
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(encode(&steps).as_bytes());
    Some(Arc::new(Setup {
        key: hex(&hasher.finalize()[..8]),
        steps,
        masker: masker.clone(),
        project: project.to_owned(),
    }))
}

fn service_spec(cx: &FileCx<'_>, id: &str, opts: &PlanOptions) -> ServiceSpec {
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
            entrypoint: None,
            args: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
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
    spec.setup = setup_of(id, svc, masker, &opts.project);
    spec.depends_on = svc
        .depends_on
        .iter()
        .map(|d| {
            let condition = d.condition.as_ref().map(|c| c.value).unwrap_or_else(|| {
                let probed = file
                    .services
                    .get(&d.service)
                    .is_some_and(|t| t.health_check.is_some() || t.wait_for_span.is_some());
                if probed {
                    Condition::Healthy
                } else {
                    Condition::Started
                }
            });
            (d.service.value.clone(), condition)
        })
        .collect();
    spec
}

fn from_service(
    id: &str,
    svc: &Service,
    (memory_bytes, nano_cpus): (i64, i64),
    base: &Path,
) -> ServiceSpec {
    let health = svc.health_check.as_ref().map(|h| HealthSpec {
        argv: h.cmd.iter().map(|a| a.value.clone()).collect(),
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
        image: svc.image.value.clone(),
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
        ports: svc.ports.iter().map(|p| p.value).collect(),
        mounts: svc
            .volumes
            .iter()
            .map(|v| Mount {
                host_path: v.host_path_in(base).to_string_lossy().into_owned(),
                container_path: v.container_path.value.clone(),
                read_only: v.read_only.as_ref().is_some_and(|r| r.value),
            })
            .collect(),
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

fn env_spec(file: &TestFile, services: Vec<ServiceSpec>) -> EnvSpec {
    let exports_otlp = file
        .otel
        .as_ref()
        .and_then(|o| o.exporter.as_ref())
        .is_some_and(|e| {
            matches!(
                e.value,
                Exporter::Otlp | Exporter::OtlpHttp | Exporter::OtlpGrpc
            )
        });
    let network = if services.len() > 1 {
        NetworkNeed::Private
    } else if exports_otlp || services.iter().any(|s| !s.ports.is_empty()) {
        NetworkNeed::Bridge
    } else {
        NetworkNeed::None
    };
    let otlp = exports_otlp.then(|| otlp_settings(file));
    let mut env = EnvSpec {
        key: String::new(),
        services,
        network,
        otlp,
    };
    env.rekey();
    env
}

impl EnvSpec {
    /// Sets [`EnvSpec::key`] from the rest.
    pub fn rekey(&mut self) {
        let mut hasher = Sha256::new();
        hasher.update(encode(&(self.network, &self.services, &self.otlp)).as_bytes());
        self.key = hex(&hasher.finalize()[..8]);
    }
}

fn otlp_settings(file: &TestFile) -> OtlpSettings {
    let otel = file.otel.as_ref();
    let grpc = otel
        .and_then(|o| o.exporter.as_ref())
        .is_some_and(|e| e.value == Exporter::OtlpGrpc);
    let protocol = match otel.and_then(|o| o.protocol.as_ref()).map(|p| p.value) {
        Some(Protocol::Grpc) => "grpc",
        Some(Protocol::HttpJson) => "http/json",
        Some(Protocol::HttpProtobuf) => "http/protobuf",
        None if grpc => "grpc",
        None => "http/protobuf",
    };
    OtlpSettings {
        protocol: protocol.to_owned(),
        env: otel_env(file),
        resources: otel.map_or_else(Vec::new, |o| {
            o.resources
                .iter()
                .map(|(k, v)| (k.value.clone(), scalar_text(&v.value)))
                .collect()
        }),
    }
}

fn pattern<S: serde::Serializer>(re: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    re.as_ref().map(Regex::as_str).serialize(s)
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    (d.as_millis() as u64).serialize(s)
}

fn optional_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_millis() as u64).serialize(s)
}

fn setup_steps<S: serde::Serializer>(setup: &Option<Arc<Setup>>, s: S) -> Result<S::Ok, S::Error> {
    setup.as_ref().map(|set| &set.steps).serialize(s)
}

fn span_wait<S: serde::Serializer>(
    w: &Option<(String, Duration)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    w.as_ref()
        .map(|(name, d)| (name, d.as_millis() as u64))
        .serialize(s)
}

/// The stable text of a planned structure in a cache key: its JSON, fields in the
/// order they are declared (see `cache`'s key encoding).
fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

use crate::digest::hex;

/// Planning a file's text, for unit tests here and in `exec`.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::diag::Source;

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

#[cfg(test)]
mod tests {
    use super::tests_support::planned;

    const FILE: &str = "[meta]\nname = \"k\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\nenv = { A = \"1\" }\nhealth_check = { cmd = [\"true\"] }\n\n[[scenario]]\nname = \"s\"\ntimeout_ms = 1000\n\n[[scenario.steps]]\nname = \"x\"\ncommand = [\"echo\", \"hi\"]\nexpected_output_regex = \"^hi$\"\n";

    #[test]
    fn a_scenario_key_is_a_pinned_encoding_not_debug_output() {
        // Pinned: this changes only when the key encoding or the clnrm version does
        // (both documented in `cache`), which makes every cache entry miss once.
        let p = planned(FILE);
        assert_eq!(
            p.scenarios[0].fingerprint,
            "c664695890a71653545a20a05505bbac8017baa8d5d97770c56486f13c08583c"
        );
        assert_eq!(p.scenarios[0].env.key, "2d247aa40eb200d4");
    }

    #[test]
    fn only_what_decides_the_outcome_changes_a_key() {
        let base = planned(FILE).scenarios[0].fingerprint.clone();
        let comment = FILE.replace("[[scenario]]", "# a comment\n[[scenario]]");
        assert_eq!(planned(&comment).scenarios[0].fingerprint, base);
        for changed in [
            FILE.replace("\"hi\"]", "\"ho\"]"),
            FILE.replace("^hi$", "^h"),
            FILE.replace("1000", "1001"),
            FILE.replace("A = \"1\"", "A = \"2\""),
        ] {
            assert_ne!(
                planned(&changed).scenarios[0].fingerprint,
                base,
                "{changed}"
            );
        }
    }
}
