//! The root of a test definition: [`TestFile`], the content its cache keys hash, and
//! its small top-level tables (`[meta]`, `[determinism]`, `[limits]`, `[snapshot]`,
//! `[report]`). The services, scenarios, `[otel]` and expectations it holds have
//! files of their own.

use super::expect::Expect;
use super::otel::Otel;
use super::scenario::Scenario;
use super::service::Service;
use crate::model::{Sp, SpMap};
use schemars::JsonSchema;

/// One parsed `*.clnrm.toml` file.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(title = "clnrm test definition (schema v0.6)", deny_unknown_fields)]
pub struct TestFile {
    /// Who the file is.
    pub meta: Meta,
    /// Template variables; ignored at run time.
    #[serde(default)]
    #[schemars(with = "SpMap<serde_json::Value>")]
    pub vars: SpMap<toml::Value>,
    /// Seeds and a frozen clock for template functions.
    pub determinism: Option<Determinism>,
    /// How the system under test exports spans.
    pub otel: Option<Otel>,
    /// Containers the scenarios run in, by id.
    #[serde(rename = "service", default)]
    pub services: SpMap<Service>,
    /// The scenarios; at least one.
    #[serde(rename = "scenario")]
    #[schemars(length(min = 1))]
    pub scenarios: Vec<Scenario>,
    /// Span expectations that apply to every scenario of the file.
    #[serde(default)]
    pub expect: Expect,
    /// CPU and memory limits for every container of the file.
    pub limits: Option<Limits>,
    /// Where to write this file's results.
    pub report: Option<ReportPaths>,
    /// How steps' output snapshots are compared.
    pub snapshot: Option<SnapshotTable>,
    /// Whether the file was written in the legacy format.
    #[serde(skip)]
    pub legacy: bool,
    /// The rendered tables its cache keys hash.
    #[serde(skip)]
    pub content: Content,
}

/// The tables of a file that decide its scenarios' outcomes, each as JSON (sorted
/// keys), taken while the file is read so that nothing parses it again. They go into
/// cache keys (see `cache`), so formatting and comments do not count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// `service`, `limits`, `otel` and `expect`, in that order; empty when absent.
    pub shared: [String; 4],
    /// Each `[[scenario]]` table in order; a legacy file's whole document as its one
    /// scenario.
    pub scenarios: Vec<String>,
}

/// `[meta]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Meta {
    /// The test's name.
    pub name: Sp<String>,
    /// The test's version.
    pub version: Sp<String>,
    /// What the test checks.
    pub description: Option<Sp<String>>,
}

/// `[determinism]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Determinism {
    /// Seeds every random template function.
    pub seed: Option<Sp<u64>>,
    /// RFC 3339 time that time functions return.
    pub freeze_clock: Option<Sp<String>>,
}

/// `[limits]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Limits {
    /// CPU in thousandths of a core.
    pub cpu_millicores: Option<Sp<u64>>,
    /// Memory in MiB.
    pub memory_mb: Option<Sp<u64>>,
}

/// `[snapshot]` (in a test file or the config).
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SnapshotTable {
    /// Regex → replacement, applied in order to a step's output before it is
    /// compared with its snapshot (`$1` names a group), e.g. `"id=\\d+" = "id=[id]"`.
    #[serde(default)]
    pub redact: SpMap<Sp<String>>,
}

/// `[report]`.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReportPaths {
    /// JSON report path, relative to the file.
    pub json: Option<Sp<String>>,
    /// JUnit XML path, relative to the file.
    pub junit: Option<Sp<String>>,
    /// Digest path, relative to the file.
    pub digest: Option<Sp<String>>,
}
