//! `grpc` steps (SPEC §17): a step runs a `command`, sends an `http` request or makes a
//! `grpc` call, one of them; the target is a service of the file and its port; what
//! can be known before a run is checked here, at its position: the `.proto` files
//! exist and compile (an error in one points at the file's entry and names its line),
//! the method is in them (did-you-mean), the request's fields are the method's; the
//! expected status is one gRPC has; metadata gRPC sets itself is refused.

use super::ctx::{Ctx, check_reference};
use crate::diag::Code;
use crate::grpc::proto::{self, ProtoError, Protos};
use crate::model::{Sp, Step};
use std::path::Path;

pub(super) fn check(cx: &mut Ctx<'_>, step: &Step, defined: &[&str]) {
    let Some(g) = &step.grpc else {
        if let Some(s) = &step.expected_grpc_status {
            cx.error(
                Code::BadValue,
                s.span,
                format!(
                    "`expected_grpc_status` on step \"{}\", which makes no gRPC call",
                    step.name.value
                ),
                "a `grpc` step's check",
            );
        }
        return;
    };
    let both = |other: &str| format!("step \"{}\" has both `{other}` and `grpc`", step.name.value);
    if let Some(command) = &step.command {
        cx.error(
            Code::Conflict,
            command.span,
            both("command"),
            "keep one: a step runs a command, sends a request or makes a call",
        );
    }
    if let Some(h) = &step.http {
        cx.error(
            Code::Conflict,
            h.span,
            both("http"),
            "keep one: a step runs a command, sends a request or makes a call",
        );
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
                format!(
                    "`{key}` on step \"{}\", which makes a gRPC call",
                    step.name.value
                ),
                "not a `grpc` step's check",
            )
            .help = Some("a `grpc` step checks `expected_grpc_status` and `expected_json`".into());
        }
    }
    for (path, _) in step.expected_json.iter() {
        if let Err(why) = crate::model::JsonPathQuery::parse(&path.value) {
            let d = crate::model::jsonpath_error(cx.src, path.span, &path.value, &why.to_string());
            cx.push(d);
        }
    }
    check_target(cx, &g.target, defined);
    if let Some(s) = &step.expected_grpc_status {
        let known = match s.value.parse::<i32>() {
            Ok(n) => (0..=16).contains(&n),
            Err(_) => crate::grpc::call::code_of(&s.value).is_some(),
        };
        if !known {
            cx.error(
                Code::BadValue,
                s.span,
                format!("\"{}\" is no gRPC status", s.value),
                "a name such as NOT_FOUND, or a number from 0 to 16",
            );
        }
    }
    if let Some(t) = &g.timeout_ms
        && t.value == 0
    {
        cx.error(
            Code::OutOfRange,
            t.span,
            "`timeout_ms` is 0".into(),
            "at least 1",
        );
    }
    for (key, value) in g.metadata.iter() {
        if let Some(why) = crate::grpc::call::metadata_refusal(&key.value) {
            cx.error(
                Code::BadValue,
                key.span,
                format!("metadata \"{}\": {why}", key.value),
                why,
            );
        } else if !value.value.contains("${")
            && !value.value.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            cx.error(
                Code::BadValue,
                value.span,
                format!(
                    "metadata \"{}\": its value is not printable ASCII",
                    key.value
                ),
                "gRPC metadata values are ASCII",
            );
        }
    }
    if crate::grpc::proto::split_method(&g.method.value).is_none() {
        cx.error(
            Code::BadValue,
            g.method.span,
            format!(
                "method \"{}\" is not `package.Service/Method`",
                g.method.value
            ),
            "e.g. \"demo.greeter.v1.Greeter/SayHello\"",
        );
        return;
    }
    // The files: each there, all compiling; then the method and the request.
    let Some(files) = &g.proto else {
        return;
    };
    if files.value.is_empty() {
        cx.error(
            Code::BadValue,
            files.span,
            "`proto` lists no file".into(),
            "name the `.proto` files, or leave `proto` out to ask the server's reflection",
        );
        return;
    }
    let mut missing = false;
    for f in &files.value {
        if !cx.base.join(&f.value).is_file() {
            missing = true;
            cx.error(
                Code::BadValue,
                f.span,
                format!(
                    "no file {} (a `.proto` is named relative to this file)",
                    f.value
                ),
                "not found",
            );
        }
    }
    if missing || files.value.is_empty() {
        return;
    }
    let names: Vec<String> = files.value.iter().map(|f| f.value.clone()).collect();
    let protos = match Protos::compile(cx.base, &names) {
        Ok(p) => p,
        Err(ProtoError::Compile { file, message, at }) => {
            // The file named, or the one of them whose import failed.
            let span = files
                .value
                .iter()
                .find(|f| f.value == file || Path::new(&f.value).ends_with(&file))
                .map_or(files.span, |f| f.span);
            let place = at.map_or_else(String::new, |(l, c)| format!(":{l}:{c}"));
            cx.error(
                Code::BadValue,
                span,
                format!("{file}{place} does not compile: {message}"),
                "this `.proto`",
            );
            return;
        }
        Err(e) => {
            cx.error(
                Code::BadValue,
                files.span,
                e.to_string(),
                "these `.proto` files",
            );
            return;
        }
    };
    let method = match protos.method(&g.method.value, &names.join(", ")) {
        Ok(m) => m,
        Err(e) => {
            let d = cx.error(
                Code::BadValue,
                g.method.span,
                e.to_string(),
                "not in the `.proto` files",
            );
            if let Some(fix) = method_fix(&g.method.value, &e) {
                d.fix = Some(format!("\"{fix}\""));
            }
            return;
        }
    };
    // A request with `${captures}` is known only when it runs.
    if let Some(json) = &g.json {
        let value = serde_json::to_value(&json.value).unwrap_or(serde_json::Value::Null);
        if !value.to_string().contains("${")
            && let Err(e) = proto::request(&method, &value)
        {
            cx.error(Code::BadValue, json.span, e.to_string(), "the request");
        }
    }
}

/// The method as it would be with the did-you-mean of `e` applied.
fn method_fix(written: &str, e: &ProtoError) -> Option<String> {
    let (service, _) = crate::grpc::proto::split_method(written)?;
    match e {
        ProtoError::NoMethod {
            closest: Some(m), ..
        } => Some(format!("{service}/{m}")),
        ProtoError::NoService {
            closest: Some(s), ..
        } => {
            let (_, method) = crate::grpc::proto::split_method(written)?;
            Some(format!("{s}/{method}"))
        }
        _ => None,
    }
}

/// `target`: `<service id>:<port>` of a service of the file, as written.
fn check_target(cx: &mut Ctx<'_>, target: &Sp<String>, defined: &[&str]) {
    // Its port is published for clnrm before the scenario starts: a capture cannot
    // name it.
    if target.value.contains("${") {
        cx.error(
            Code::BadValue,
            target.span,
            format!("target \"{}\" uses a capture", target.value),
            "name the service and its port as written",
        );
        return;
    }
    let parsed = target
        .value
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok().filter(|p| *p > 0)?)));
    let Some((host, _)) = parsed.filter(|(h, _)| !h.is_empty()) else {
        cx.error(
            Code::BadValue,
            target.span,
            format!("target \"{}\" is not `<service id>:<port>`", target.value),
            "e.g. \"greeter:50051\"",
        );
        return;
    };
    let host = Sp::new(host.to_owned(), target.span);
    check_reference(cx, &host, defined, "grpc target");
}
