//! `[service.<id>]`: a container the scenarios run in, with its mounts, readiness
//! probe, dependencies and set-up steps; and where a mount's host path leads.

use super::step::Step;
use crate::diag::Span;
use crate::model::{Sp, SpMap};
use schemars::JsonSchema;

/// `[service.<id>]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(extend("anyOf" = [{ "required": ["image"] }, { "required": ["build"] }]))]
pub struct Service {
    /// Plugin that manages the service; `generic_container` by default.
    #[serde(default = "default_plugin")]
    pub plugin: Sp<String>,
    /// Container image; with `build`, leave it out (the built image is named by its
    /// content).
    pub image: Option<Sp<String>>,
    /// `[service.<id>.build]`: build the image from source (SPEC §14); a string is
    /// the context.
    #[serde(default)]
    #[schemars(schema_with = "build_schema")]
    pub build: Option<Build>,
    /// `[service.<id>.develop]`: how `clnrm watch` brings a change of the build's
    /// context into the next environments (Compose's `develop.watch`).
    pub develop: Option<Develop>,
    /// Replaces the image's `ENTRYPOINT` (`[]` clears it); `args` follow it.
    pub entrypoint: Option<Vec<Sp<String>>>,
    /// Container command.
    #[serde(default)]
    pub args: Vec<Sp<String>>,
    /// Environment variables.
    #[serde(default)]
    pub env: SpMap<Sp<String>>,
    /// Container ports.
    #[serde(default)]
    pub ports: Vec<Sp<u16>>,
    /// Bind mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// In-memory file systems, as Compose's `tmpfs`: `"/path"` or `"/path:size=64m,mode=1777"`,
    /// for data that need not survive the scenario (a database's data directory):
    /// each container gets its own, empty, gone with it. Not on a service with a
    /// fixture snapshot (a snapshot cannot hold memory).
    #[serde(default)]
    pub tmpfs: Vec<Sp<String>>,
    /// Readiness probe.
    pub health_check: Option<HealthCheck>,
    /// Span whose arrival means the service is ready.
    pub wait_for_span: Option<Sp<String>>,
    /// How long to wait for `wait_for_span`, in seconds (default 30).
    pub wait_for_span_timeout_secs: Option<Sp<u64>>,
    /// Services that must be started, healthy or completed before this one starts:
    /// a list of ids, or a map of id to condition.
    #[serde(default)]
    #[schemars(schema_with = "depends_on_schema")]
    pub depends_on: Vec<Dependency>,
    /// `[[service.<id>.setup]]`: steps run once in the service, alone, after it is
    /// ready; the result is kept as a snapshot image every scenario starts from.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// A one-shot (a migration, say) run once into the fixture snapshot of the one
    /// service it depends on, after that service's set-up steps: scenarios start that
    /// service from the result and never start this one; those that depend on it
    /// (`completed`) start at once. Its image, table and the set-up are in the
    /// snapshot's key.
    pub fixture: Option<Sp<bool>>,
    /// Where the service table is in the file (its key).
    #[serde(skip)]
    pub span: Span,
}

impl Service {
    /// The service whose fixture this one runs into: the one it depends on, when it
    /// says `fixture = true` and depends on exactly one.
    pub fn fixture_target(&self) -> Option<&str> {
        match self.depends_on.as_slice() {
            [one] if self.fixture.as_ref().is_some_and(|f| f.value) => Some(&one.service.value),
            _ => None,
        }
    }
}

/// A `tmpfs` entry split into its path and its mount options (`""` when it has none).
pub fn tmpfs_parts(entry: &str) -> (&str, &str) {
    entry.split_once(':').unwrap_or((entry, ""))
}

fn build_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let table = generator.subschema_for::<Build>();
    schemars::json_schema!({
        "anyOf": [
            { "type": "string", "description": "The build context (a directory, relative to the test file)." },
            table
        ]
    })
}

/// `[service.<id>.build]`: how the service's image is built from source.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Build {
    /// The build context: a directory, relative to the directory of the test file (of
    /// the template, for a rendered one). Its `.dockerignore` is respected.
    pub context: Sp<String>,
    /// The Dockerfile, relative to the context (`Dockerfile` by default).
    pub dockerfile: Option<Sp<String>>,
    /// The stage to build (the last by default).
    pub target: Option<Sp<String>>,
    /// Build arguments (`ARG` values).
    #[serde(default)]
    pub args: SpMap<Sp<String>>,
    /// Where the table (or string) is in the file.
    #[serde(skip)]
    pub span: Span,
}

impl Build {
    /// The absolute context directory of a file that lives in `base`.
    pub fn context_in(&self, base: &std::path::Path) -> std::path::PathBuf {
        host_path_in(&self.context.value, base)
    }

    /// The Dockerfile's path in the context.
    pub fn dockerfile(&self) -> &str {
        self.dockerfile
            .as_ref()
            .map_or("Dockerfile", |d| d.value.as_str())
    }
}

/// `[service.<id>.develop]`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Develop {
    /// The rules, each for the files under its `path`.
    #[serde(default)]
    pub watch: Vec<WatchRule>,
    /// Where the table is in the file.
    #[serde(skip)]
    pub span: Span,
}

/// One `develop.watch` rule.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WatchRule {
    /// The files it covers: a path relative to the build's context (a directory covers
    /// what is under it).
    pub path: Sp<String>,
    /// What a change of them does.
    pub action: Sp<DevelopAction>,
    /// Where the files go in the image (absolute), for `sync` and `sync+restart`: the
    /// file `<path>/a/b` becomes `<target>/a/b`.
    pub target: Option<Sp<String>>,
}

/// What a change under a `develop.watch` path does (its words and schema:
/// `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DevelopAction {
    /// The changed files are copied into the containers of the last image, without a
    /// build.
    #[serde(rename = "sync")]
    Sync,
    /// As `sync`; the service's main process starts again with them.
    #[serde(rename = "sync+restart")]
    SyncRestart,
    /// The image is built again.
    #[serde(rename = "rebuild")]
    Rebuild,
}

fn depends_on_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let condition = generator.subschema_for::<Condition>();
    schemars::json_schema!({
        "anyOf": [
            { "type": "array", "items": { "type": "string" }, "uniqueItems": true },
            { "type": "object", "additionalProperties": condition }
        ]
    })
}

/// One entry of `depends_on`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    /// The service depended on.
    pub service: Sp<String>,
    /// What it must have reached; `None` in the list form (then `healthy` when it has
    /// a health check or a ready span, else `started`).
    pub condition: Option<Sp<Condition>>,
}

/// How far a dependency must have come before its dependent starts (its words and
/// schema: `keywords.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Its container started.
    Started,
    /// Its health check passed and its ready span, if any, arrived.
    Healthy,
    /// A one-shot: its main process exited 0.
    Completed,
}

impl Volume {
    /// The absolute host path of this mount in a file that lives in `base`: `.` and
    /// `..` resolved by their text (symlinks are the engine's to follow).
    pub fn host_path_in(&self, base: &std::path::Path) -> std::path::PathBuf {
        host_path_in(&self.host_path.value, base)
    }
}

/// `path` made absolute against `base` (itself made absolute against the current
/// directory), `.` and `..` resolved by their text.
pub fn host_path_in(path: &str, base: &std::path::Path) -> std::path::PathBuf {
    use std::path::{Component, PathBuf};
    let joined = std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path));
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn default_plugin() -> Sp<String> {
    Sp::new(crate::model::defaults::PLUGIN.to_owned(), Span::default())
}

/// One bind mount.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Volume {
    /// Path on the host: absolute, or relative to the directory of the test file (of
    /// the template, for a rendered one), as Compose resolves paths relative to its file.
    pub host_path: Sp<String>,
    /// Absolute path in the container.
    pub container_path: Sp<String>,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: Option<Sp<bool>>,
}

/// `health_check`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthCheck {
    /// Command run in the container; exit 0 means healthy. Required unless `http`
    /// or `postgres`.
    #[serde(default)]
    pub cmd: Vec<Sp<String>>,
    /// `http://<this service's id>:<container port>/path`: healthy when clnrm's `GET`
    /// of it (through the port, published on loopback) answers 2xx or 3xx. Instead
    /// of `cmd`: no process is started in the container.
    pub http: Option<Sp<crate::model::HttpUrl>>,
    /// `postgres://[user@]<this service's id>[:port][/database]`: healthy when the
    /// PostgreSQL server there accepts connections, as `pg_isready` judges it (clnrm
    /// sends the start-up message through the port, published on loopback; it never
    /// logs in). Instead of `cmd`: no process is started in the container.
    pub postgres: Option<Sp<String>>,
    /// Time between probes in milliseconds.
    pub interval_ms: Option<Sp<u64>>,
    /// Time one probe may take in milliseconds.
    pub timeout_ms: Option<Sp<u64>>,
    /// Probes before giving up.
    pub retries: Option<Sp<u64>>,
    /// Where `cmd` is.
    #[serde(skip)]
    pub cmd_span: Span,
}
