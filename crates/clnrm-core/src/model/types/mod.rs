//! The typed model of a test definition (schema v0.6), one file per part of the
//! format: the file's root and small tables, `[otel]`, services, scenarios, steps and
//! expectations.
//!
//! Every key and value keeps its span so that late stages (a failed expectation,
//! a bad service reference) can point back into the file. The JSON Schema in
//! `schemas/` is generated from these types, so their serde names are the TOML keys.

mod expect;
mod file;
mod otel;
mod scenario;
mod select;
mod service;
mod step;

pub use expect::{
    Count, CountsExpect, Expect, GraphExpect, HermeticityExpect, LogExpect, NameCount, OrderExpect,
    Pair, PerSpanExpect, ResourceAttrs, SpanAttrs, SpanExpect, StatusExpect, WindowExpect,
};
pub use file::{Content, Determinism, Limits, Meta, ReportPaths, SnapshotTable, TestFile};
pub use otel::{Exporter, Otel, Propagators, Protocol, Scalar};
pub use scenario::{Artifacts, Scenario};
pub use select::{
    AttrsExpect, EventExpect, EventsExpect, LinkExpect, PREDICATE_WORDS, Predicate, Predicates,
    Selector, SpanKind, StatusCode,
};
pub use service::{
    Build, Condition, Dependency, Develop, DevelopAction, HealthCheck, Service, Volume, WatchRule,
    host_path_in, tmpfs_parts,
};
pub use step::{Capture, GrpcRequest, HttpRequest, Retry, Step};
