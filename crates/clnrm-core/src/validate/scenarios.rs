//! Rules on `[[scenario]]` tables: unique names, a known service to run in, something
//! to run, tags, retries and artifacts; each step through the step rules, and snapshot
//! names unique within a scenario.

use super::ctx::{Ctx, check_reference, service_ids};
use super::steps::{check_step, check_timeout};
use crate::diag::{Code, Diagnostic, Span};
use crate::model::{Sp, TestFile};
use std::collections::{HashMap, HashSet};

pub use crate::model::defaults::MAX_RETRIES;

pub(super) fn check_scenarios(file: &TestFile, cx: &mut Ctx<'_>) {
    let defined = service_ids(file);
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for sc in &file.scenarios {
        if let Some(first) = seen.get(sc.name.as_str()) {
            let first = *first;
            let src = cx.src;
            let d = cx.error(
                Code::DuplicateScenario,
                sc.name.span,
                format!("duplicate scenario name \"{}\"", sc.name.value),
                "used again here",
            );
            *d = d
                .clone()
                .also(src, first, "first defined here")
                .help("scenario names must be unique within a file; they form the scenario id");
        } else {
            seen.insert(&sc.name.value, sc.name.span);
        }
        if let Some(service) = &sc.service {
            check_reference(
                cx,
                service,
                &defined,
                &format!("scenario \"{}\"", sc.name.value),
            );
        }
        match (&sc.run, sc.steps.is_empty()) {
            // An unreadable `run` is reported where it was read.
            (None, true) if !sc.run_written => {
                cx.error(
                    Code::NothingToRun,
                    sc.name.span,
                    format!("scenario \"{}\" has nothing to run", sc.name.value),
                    "no `run` and no [[scenario.steps]]",
                )
                .help =
                    Some("add `run = \"command args\"` or one or more [[scenario.steps]]".into());
            }
            (Some(run), false) => {
                // Accepted, as the original clnrm did (it ran `run` and ignored the
                // steps); here both run, `run` first.
                let d = Diagnostic::warning(
                    Code::RunAndSteps,
                    format!("scenario \"{}\" has both `run` and `steps`", sc.name.value),
                )
                .at(cx.src, run.span, "this runs first, then the steps")
                .help("keep one of them to make the order explicit");
                cx.diags.push(d);
            }
            _ => {}
        }
        if let Some(run) = &sc.run
            && run.argv.is_empty()
        {
            cx.error(
                Code::EmptyCommand,
                run.span,
                "`run` is empty".into(),
                "expected a command",
            );
        }
        if sc.service.is_none() && file.services.len() > 1 && sc.run_written {
            cx.error(
                Code::AmbiguousService,
                sc.name.span,
                format!(
                    "scenario \"{}\" does not say which service to run in",
                    sc.name.value
                ),
                "no `service` here",
            )
            .help = Some(format!(
                "add `service = \"...\"`; defined: {}",
                defined.join(", ")
            ));
        }
        if file.services.is_empty()
            && (sc.run_written || sc.steps.iter().any(|s| s.service.is_none()))
        {
            cx.error(
                Code::AmbiguousService,
                sc.name.span,
                format!("scenario \"{}\" has no service to run in", sc.name.value),
                "no [service.*] in this file",
            )
            .help = Some(
                "define a service, e.g. [service.app] with image = \"clnrm/busybox:latest\"".into(),
            );
        }
        for step in &sc.steps {
            if let Some(service) = &step.service {
                check_reference(
                    cx,
                    service,
                    &defined,
                    &format!("step \"{}\"", step.name.value),
                );
            } else if step.http.is_none()
                && step.grpc.is_none()
                && sc.service.is_none()
                && file.services.len() > 1
            {
                cx.error(
                    Code::AmbiguousService,
                    step.name.span,
                    format!(
                        "step \"{}\" does not say which service to run in",
                        step.name.value
                    ),
                    "no `service` on the step or its scenario",
                )
                .help = Some(format!(
                    "add `service = \"...\"`; defined: {}",
                    defined.join(", ")
                ));
            }
            check_step(cx, step, "step");
            super::http::check(cx, step, &defined);
            super::grpc::check(cx, step, &defined);
        }
        check_timeout(cx, sc.timeout_ms.as_ref());
        check_tags(cx, &sc.tags);
        check_snapshot_names(cx, &sc.steps);
        if let Some(n) = &sc.retries
            && n.value > MAX_RETRIES
        {
            cx.error(
                Code::OutOfRange,
                n.span,
                format!("`retries` {} is more than {MAX_RETRIES}", n.value),
                "expected 0 to 100 (runs after the first)",
            );
        }
        for item in sc.artifacts.iter().flat_map(|a| &a.collect) {
            if !item.value.starts_with("spans:") || item.value.len() == "spans:".len() {
                cx.error(
                    Code::BadValue,
                    item.span,
                    format!("unknown artifact \"{}\"", item.value),
                    "expected \"spans:<name>\"",
                );
            }
        }
    }
}

/// Steps with `snapshot = true` keep their output under their name: two steps of one
/// scenario named the same would share it.
fn check_snapshot_names(cx: &mut Ctx<'_>, steps: &[crate::model::Step]) {
    for (i, st) in steps.iter().enumerate() {
        let snapshots = |s: &crate::model::Step| s.snapshot.as_ref().is_some_and(|v| v.value);
        let twin = steps[..i]
            .iter()
            .find(|o| o.name.value == st.name.value && (snapshots(o) || snapshots(st)));
        if twin.is_some() {
            cx.error(
                Code::BadValue,
                st.name.span,
                format!(
                    "step \"{}\" is named twice in its scenario, and a step of that name keeps an output snapshot",
                    st.name.value
                ),
                "rename one: the snapshot file is named after the step",
            );
        }
    }
}

/// `tags`: words that `--tag` can name (letters, digits, `_ . : -`), each once.
fn check_tags(cx: &mut Ctx<'_>, tags: &[Sp<String>]) {
    let mut seen: HashSet<&str> = HashSet::new();
    for t in tags {
        let word = t
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && t.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if !word {
            cx.error(
                Code::BadValue,
                t.span,
                format!("tag \"{}\" is not a word", t.value),
                "expected a letter or digit, then letters, digits, `_`, `.`, `:` or `-`",
            );
        } else if !seen.insert(&t.value) {
            cx.error(
                Code::BadValue,
                t.span,
                format!("tag \"{}\" is listed twice", t.value),
                "listed again here",
            );
        }
    }
}
