//! clnrm-core: the library behind the `clnrm` command.
//!
//! The pipeline runs in one direction, one module per stage:
//! [`discover`] → [`template`] → [`model`] → [`validate`]; [`project`] holds the
//! project root and its `.clnrm/config.toml`. Nothing here parses arguments or exits
//! the process; that is the CLI's job.

pub mod diag;
pub mod discover;
pub mod model;
pub mod project;
pub mod schema;
pub mod template;
pub mod validate;
