//! The one pipeline every command goes through: [`prepare`] (project, config,
//! variables, discovery, validation), then for a run [`plan_run`], [`execute`] with a
//! [`Sink`] of events, and [`conclude`] (cache, baseline, report files). `clnrm run`,
//! `watch` and `diff` call it; the command line only parses arguments, picks sinks
//! and maps errors to exit codes.

mod explain;
mod prepare;
mod run;

pub use explain::explain_keys;
pub use prepare::{DEFAULT_PATH, Prepared, prepare, prepare_with, var_layers};
pub use run::{
    Concluded, PipelineError, Planned, Sink, all_cached, conclude, execute, plan_run,
    session_options,
};
