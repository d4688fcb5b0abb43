//! The stable text of planned structures in keys: their JSON, fields in the order they
//! are declared, durations in milliseconds and patterns as written. Which fields count
//! is decided on the types (`#[serde(skip)]`), not here.

use regex::Regex;
use serde::Serialize;
use std::time::Duration;

pub(super) fn pattern<S: serde::Serializer>(re: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    re.as_ref().map(Regex::as_str).serialize(s)
}

pub(super) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    (d.as_millis() as u64).serialize(s)
}

pub(super) fn optional_millis<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_millis() as u64).serialize(s)
}

/// The stable text of a planned structure in a cache key: its JSON, fields in the
/// order they are declared (see `cache`'s key encoding).
pub(super) fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
