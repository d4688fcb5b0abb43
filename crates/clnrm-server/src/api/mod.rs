//! The HTTP API (SPEC §9), under `/api/v1`: thin handlers that authorise, parse and
//! call the store. A submitted project is checked (paths, size, validation, host
//! mounts) and stored before the 201; running it is a worker's job.
//!
//! A file per resource, as the OpenAPI document's tags group them: `submit` (a new
//! run), `runs` (reading and cancelling runs), `report` (a run's report), `history` (a
//! scenario across runs), `tokens`, and `service` (health and metrics); `request`
//! reads what every handler reads (the state, a body, a query string).

pub(crate) mod history;
pub(crate) mod report;
mod request;
pub(crate) mod runs;
pub(crate) mod service;
pub(crate) mod submit;
pub(crate) mod tokens;

pub use history::History;
pub use runs::{Cancelled, RunsPage, Scenarios};
pub use submit::{Created, Submit};
pub use tokens::{MadeToken, NewToken, Tokens};
