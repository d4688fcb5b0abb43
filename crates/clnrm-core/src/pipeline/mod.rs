//! The one pipeline every command goes through: [`prepare`] (project, config,
//! variables, discovery, validation), then for a run the one entry point [`run`]:
//! plan, the fully cached fast path, execution with a [`Sink`] of events, and
//! conclusion (cache, outcomes, baseline, report files); [`build`] makes the images
//! a run would build, without running. `clnrm run`, `watch`, `diff`,
//! `bench` and the runs service's worker call it; the command line only parses
//! arguments, picks sinks and maps errors to exit codes.

mod build;
mod conclude;
mod error;
mod explain;
pub mod outcomes;
mod plan;
mod prefetch;
mod prepare;
mod run;
#[cfg(test)]
mod tests;

pub use build::build;
pub use conclude::Concluded;
pub use error::PipelineError;
pub use explain::explain_keys;
pub use plan::selected_ids;
pub use prefetch::Prefetch;
pub use prepare::{DEFAULT_PATH, Prepared, prepare, prepare_in, prepare_with, var_layers};
pub use run::{Host, Ran, Sink, end_session, run, session_options, start_session};
