//! clnrm-core: the library behind the `clnrm` command.
//!
//! The pipeline runs in one direction, one module per stage:
//! [`discover`] → [`template`] → [`model`] → [`validate`] → [`plan`] → [`exec`] (over
//! the container [`backend`]) → [`otel`] → [`expect`] → [`diff`] → [`report`];
//! [`project`] holds the project root, its layout and its `.clnrm/config.toml`,
//! [`config`] resolves how a run runs, and [`pipeline`] is the one entry point that
//! strings the stages together. Nothing here parses arguments or exits the process;
//! that is the CLI's job.

pub mod backend;
pub mod bench;
pub mod build;
pub mod cache;
pub mod config;
pub mod diag;
pub mod diff;
pub mod digest;
pub mod discover;
pub mod editor;
pub mod exec;
pub mod expect;
pub mod files;
pub mod grpc;
pub mod import;
pub mod inputs;
pub mod jsonfile;
pub mod model;
pub mod otel;
pub mod pipeline;
pub mod plan;
pub mod project;
pub mod report;
pub mod schema;
pub mod snapshots;
pub mod subst;
pub mod template;
pub mod timings;
pub mod validate;
pub mod watch;

/// The number of CPUs this process may use, read once (reading it parses cgroup files).
pub fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(num_cpus::get)
}
