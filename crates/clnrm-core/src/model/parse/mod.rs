//! Reading a [`TestFile`](crate::model::TestFile) out of TOML text, including the
//! legacy layout: one file per part of the format, each reading its tables from the
//! spanned tree and recording every type error and unknown key.

mod common;
mod expect;
mod file;
mod legacy;
mod otel;
mod scenario;
mod select;
mod service;
mod step;

pub(crate) use common::read_snapshot_table;
pub use file::{parse_document, parse_test_file};
