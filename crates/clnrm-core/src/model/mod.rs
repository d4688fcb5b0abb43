//! The test-definition model: spanned TOML → typed [`TestFile`].
//!
//! Parsing happens in passes: TOML syntax (with recovery, so several syntax errors are
//! reported), then a typed read of the spanned tree that records every type error and
//! unknown key. Semantic rules live in [`crate::validate`], not here.

mod compiled;
pub mod defaults;
mod host;
mod keywords;
mod parse;
pub mod reader;
pub mod shell;
mod spanned;
mod types;
mod url;

pub(crate) use compiled::compile as compile_regex;
pub use compiled::{
    CommandLine, JsonPathQuery, NamePattern, Pattern, jsonpath_error, jsonpath_fix,
};
pub use host::{HostError, HostPattern, same_host};
pub(crate) use parse::read_snapshot_table;
pub use parse::{parse_document, parse_test_file};
pub use spanned::{Sp, SpMap};
pub use types::*;
pub use url::{HttpUrl, PgTarget, UrlError, UrlTarget, postgres_target};

/// What a secret's value is shown as wherever clnrm writes it (reports, saved spans).
pub const MASK: &str = "***";
