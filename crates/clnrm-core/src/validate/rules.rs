//! The semantic rules of SPEC §1.2 that types alone do not catch: which families of
//! rules run on a file, in which order. Each family lives in a module of its own.

use super::HostPaths;
use super::ctx::Ctx;
use super::dependencies::check_dependencies;
use super::determinism::check_determinism;
use super::expectations::check_expectations;
use super::otel::check_otel;
use super::scenarios::check_scenarios;
use super::services::check_services;
use crate::diag::{Diagnostics, Source};
use crate::model::TestFile;
use std::sync::Arc;

/// Checks every rule on `file`, recording each violation; `host` says which host
/// paths a mount must not expose, `base` where relative host paths start from.
pub fn check(
    file: &TestFile,
    src: &Arc<Source>,
    host: &HostPaths,
    base: &std::path::Path,
    diags: &mut Diagnostics,
) {
    let mut cx = Ctx {
        src,
        diags,
        host,
        base,
    };
    check_scenarios(file, &mut cx);
    check_services(file, &mut cx);
    check_dependencies(file, &mut cx);
    check_determinism(file, &mut cx);
    check_otel(file, &mut cx);
    check_expectations(file, &mut cx);
    super::captures::check(file, &mut cx);
}
