//! Captures and `${name}` (SPEC §7.4): each capture is a JSONPath query or a regex
//! over stdout or stderr, and every `${name}` in a step's command, env values or
//! workdir names what an earlier step of the same scenario (or set-up) captures.

use super::ctx::Ctx;
use crate::diag::{Code, Span};
use crate::model::{Capture, CommandLine, Sp, Step, TestFile};
use crate::subst::references;
use std::collections::BTreeSet;

/// Where a capture may read from (HTTP steps will add `body` and `header:<name>`).
pub const SOURCES: [&str; 2] = ["stdout", "stderr"];

pub(super) fn check(file: &TestFile, cx: &mut Ctx<'_>) {
    for sc in &file.scenarios {
        let mut known = BTreeSet::new();
        if let Some(run) = &sc.run {
            check_run(cx, run, &known);
        }
        walk(cx, &sc.steps, &mut known);
    }
    for (_, svc) in file.services.iter() {
        walk(cx, &svc.setup, &mut BTreeSet::new());
    }
}

/// The steps in order: each may use what the ones before it capture.
fn walk(cx: &mut Ctx<'_>, steps: &[Step], known: &mut BTreeSet<String>) {
    for step in steps {
        for item in step.command.iter().flat_map(|c| &c.value) {
            check_text(cx, item, known);
        }
        if let Some(h) = &step.http {
            check_text(cx, &Sp::new(h.url.value.to_string(), h.url.span), known);
            for (_, v) in h.headers.iter() {
                check_text(cx, v, known);
            }
            if let Some(b) = &h.body {
                check_text(cx, b, known);
            }
            if let Some(j) = &h.json {
                let mut strings = Vec::new();
                toml_strings(&j.value, &mut strings);
                for s in strings {
                    check_text(cx, &Sp::new(s, j.span), known);
                }
            }
        }
        if let Some(g) = &step.grpc {
            check_text(cx, &g.target, known);
            for (_, v) in g.metadata.iter() {
                check_text(cx, v, known);
            }
            if let Some(j) = &g.json {
                let mut strings = Vec::new();
                toml_strings(&j.value, &mut strings);
                for s in strings {
                    check_text(cx, &Sp::new(s, j.span), known);
                }
            }
        }
        for (_, value) in step.env.iter() {
            check_text(cx, value, known);
        }
        if let Some(w) = &step.workdir {
            check_text(cx, w, known);
        }
        for (name, capture) in step.capture.iter() {
            // A `grpc` step's answer is read as an `http` step's: its body (the
            // response as JSON) or a `header:<name>` (its metadata).
            check_capture(
                cx,
                name,
                capture,
                step.http.is_some() || step.grpc.is_some(),
            );
            known.insert(name.value.clone());
        }
    }
}

fn check_run(cx: &mut Ctx<'_>, run: &Sp<CommandLine>, known: &BTreeSet<String>) {
    let text = Sp::new(run.value.text.clone(), run.span);
    check_text(cx, &text, known);
}

fn check_text(cx: &mut Ctx<'_>, text: &Sp<String>, known: &BTreeSet<String>) {
    for r in references(&text.value) {
        if known.contains(r.name) {
            continue;
        }
        let span = narrow(cx, text.span, &text.value[r.start..r.end]);
        let d = cx.error(
            Code::UnknownCapture,
            span,
            format!(
                "`${{{}}}`: no earlier step of the scenario captures \"{}\"",
                r.name, r.name
            ),
            "not captured before this step",
        );
        d.help = Some(if known.is_empty() {
            format!(
                "capture it in an earlier step (`capture = {{ {} = {{ regex = \"...\" }} }}`), or write `$${{{}}}` for a literal `${{`",
                r.name, r.name
            )
        } else {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            format!(
                "captured so far: {}; write `$${{{}}}` for a literal `${{`",
                names.join(", "),
                r.name
            )
        });
    }
}

/// The position of `needle` inside the value written at `span`, when the source holds
/// it literally (no escapes before it); else the whole value.
fn narrow(cx: &Ctx<'_>, span: Span, needle: &str) -> Span {
    cx.src
        .text()
        .get(span.start..span.end)
        .and_then(|raw| raw.find(needle))
        .map_or(span, |at| {
            Span::new(span.start + at, span.start + at + needle.len())
        })
}

/// The strings in a TOML value (where `${name}` may be).
fn toml_strings(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|i| toml_strings(i, out)),
        toml::Value::Table(t) => t.values().for_each(|i| toml_strings(i, out)),
        _ => {}
    }
}

fn check_capture(cx: &mut Ctx<'_>, name: &Sp<String>, c: &Capture, http: bool) {
    if !crate::subst::is_name(&name.value) {
        cx.error(
            Code::BadValue,
            name.span,
            format!(
                "capture name \"{}\" cannot be used as `${{{}}}`",
                name.value, name.value
            ),
            "expected a letter or `_`, then letters, digits or `_`",
        );
    }
    match (&c.json, &c.regex) {
        (Some(_), Some(r)) => {
            cx.error(
                Code::BadValue,
                r.span,
                format!("capture \"{}\" has both `json` and `regex`", name.value),
                "keep one",
            );
        }
        (None, None) if !c.says => {
            cx.error(
                Code::BadValue,
                c.span,
                format!("capture \"{}\" says nothing to capture", name.value),
                "add `json = \"$.id\"` or `regex = \"id=(\\\\d+)\"`",
            );
        }
        _ => {}
    }
    let of_http = |f: &str| f == "body" || f.strip_prefix("header:").is_some_and(|h| !h.is_empty());
    if let Some(from) = &c.from
        && !(if http {
            of_http(&from.value)
        } else {
            SOURCES.contains(&from.value.as_str())
        })
    {
        let why = match (http, of_http(&from.value)) {
            (false, true) => "`body` and `header:<name>` are an `http` step's".to_owned(),
            (true, false) => "expected \"body\" or \"header:<name>\" for an `http` step".to_owned(),
            _ => format!("expected one of: {}", SOURCES.join(", ")),
        };
        cx.error(
            Code::BadValue,
            from.span,
            format!("capture \"{}\" reads from \"{}\"", name.value, from.value),
            why,
        );
    }
}
