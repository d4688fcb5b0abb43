//! `http` steps (SPEC §7.4): a step runs a `command` or sends an `http` request, never
//! both; the URL addresses a service of the file by id and port; the checks that
//! belong to one kind of step are not written on the other.

use super::ctx::Ctx;
use crate::diag::Code;
use crate::model::{JsonPathQuery, Step};

/// The methods an `http` step may use.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(super) fn check(cx: &mut Ctx<'_>, step: &Step, defined: &[&str]) {
    let Some(h) = &step.http else {
        // A `grpc` step's own checks are `grpc::check`'s.
        if step.grpc.is_some() {
            return;
        }
        for (written, key) in [
            (
                step.expected_status.as_ref().map(|s| s.span),
                "expected_status",
            ),
            (
                step.expected_body_regex.as_ref().map(|s| s.span),
                "expected_body_regex",
            ),
            (
                step.expected_json.iter().next().map(|(k, _)| k.span),
                "expected_json",
            ),
        ] {
            if let Some(span) = written {
                cx.error(
                    Code::BadValue,
                    span,
                    format!(
                        "`{key}` on step \"{}\", which runs a command",
                        step.name.value
                    ),
                    "an `http` step's check",
                )
                .help = Some("use `expected_exit_code` or `expected_output_regex`".into());
            }
        }
        return;
    };
    if let Some(command) = &step.command {
        cx.error(
            Code::BadValue,
            command.span,
            format!("step \"{}\" has both `command` and `http`", step.name.value),
            "keep one: a step runs a command or sends a request",
        );
    }
    if let Some(m) = &h.method
        && !METHODS.contains(&m.value.to_ascii_uppercase().as_str())
    {
        cx.error(
            Code::BadValue,
            m.span,
            format!("unknown HTTP method \"{}\"", m.value),
            format!("expected one of: {}", METHODS.join(", ")),
        );
    }
    if let (Some(_), Some(b)) = (&h.json, &h.body) {
        cx.error(
            Code::BadValue,
            b.span,
            format!("step \"{}\" has both `body` and `json`", step.name.value),
            "keep one",
        );
    }
    // A URL whose authority is a capture is checked when it is sent.
    if let Some(why) = h.url.value.error() {
        cx.error(
            Code::BadValue,
            h.url.span,
            format!("URL \"{}\" is not one clnrm can send to", h.url.value),
            why.to_string(),
        )
        .help = Some(
            "address a service of the scenario by id and container port, e.g. http://app:8080/orders".into(),
        );
    } else if let Some(target) = h.url.value.target()
        && !defined.contains(&target.host.as_str())
    {
        let host = crate::model::Sp::new(target.host.clone(), h.url.span);
        super::ctx::check_reference(
            cx,
            &host,
            defined,
            &format!("the URL of step \"{}\"", step.name.value),
        );
    }
    for (path, _) in step.expected_json.iter() {
        if let Err(why) = JsonPathQuery::parse(&path.value) {
            let d = crate::model::jsonpath_error(cx.src, path.span, &path.value, &why.to_string());
            cx.push(d);
        }
    }
    for (written, key) in [
        (
            step.expected_exit_code.as_ref().map(|s| s.span),
            "expected_exit_code",
        ),
        (
            step.expected_output_regex.as_ref().map(|s| s.span),
            "expected_output_regex",
        ),
        (step.workdir.as_ref().map(|s| s.span), "workdir"),
        (step.env.iter().next().map(|(k, _)| k.span), "env"),
    ] {
        if let Some(span) = written {
            cx.error(
                Code::BadValue,
                span,
                format!("`{key}` on step \"{}\", which sends an HTTP request", step.name.value),
                "a command step's key",
            )
            .help = Some("an `http` step checks `expected_status`, `expected_body_regex` and `expected_json`".into());
        }
    }
}
