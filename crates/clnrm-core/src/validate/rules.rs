//! The semantic rules of SPEC §1.2 that types alone do not catch.

use super::HostPaths;
use super::ctx::{Ctx, check_reference};
use crate::diag::{Code, Diagnostic, Diagnostics, Source, Span};
use crate::model::{Condition, Count, Expect, Pair, Sp, SpanExpect, TestFile};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Known context propagators.
const PROPAGATORS: &[&str] = &[
    "tracecontext",
    "baggage",
    "b3",
    "b3multi",
    "jaeger",
    "xray",
    "ottrace",
    "none",
];

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

/// A bind mount: its host path is not empty nor dangerous (W0004, judged where a
/// relative path leads), its container path is absolute.
fn check_volume(cx: &mut Ctx<'_>, service: &str, v: &crate::model::Volume) {
    let read_only = v.read_only.as_ref().is_some_and(|r| r.value);
    let written = &v.host_path.value;
    if written.is_empty() {
        cx.error(
            Code::RelativeVolumePath,
            v.host_path.span,
            "host_path is empty".into(),
            "expected a path",
        )
        .help = Some(
            "write an absolute path, or one relative to this file's directory such as \"./conf\""
                .into(),
        );
    } else {
        let resolved = v.host_path_in(cx.base);
        let shown = if written.starts_with('/') {
            format!("\"{written}\"")
        } else {
            format!("\"{written}\" ({})", resolved.display())
        };
        if let Some(why) = cx.host.danger(&resolved.to_string_lossy(), read_only) {
            let d = Diagnostic::warning(
                Code::DangerousMount,
                format!(
                    "service \"{service}\" bind-mounts {shown}{}: {why}",
                    if read_only { "" } else { " writable" }
                ),
            )
            .at(cx.src, v.host_path.span, "a test container gets this host path")
            .help(if why.contains("socket") {
                "a test that needs the engine should get its own, not the host's; read_only does not protect a socket"
            } else {
                "mount a narrower directory, or add `read_only = true`"
            });
            cx.diags.push(d);
        }
    }
    let p = &v.container_path;
    if !p.value.starts_with('/') {
        cx.error(
            Code::RelativeVolumePath,
            p.span,
            format!("volume path \"{}\" is not absolute", p.value),
            "must start with `/`",
        )
        .help = Some("the path inside the container must be absolute, e.g. \"/data\"".into());
    }
}

fn check_scenarios(file: &TestFile, cx: &mut Ctx<'_>) {
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
            } else if step.http.is_none() && sc.service.is_none() && file.services.len() > 1 {
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

pub use crate::model::defaults::MAX_RETRIES;

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

/// The ids of the file's services, in the order written.
fn service_ids(file: &TestFile) -> Vec<&str> {
    file.services
        .iter()
        .map(|(k, _)| k.value.as_str())
        .collect()
}

fn check_services(file: &TestFile, cx: &mut Ctx<'_>) {
    for (id, svc) in file.services.iter() {
        // Each service has its own container, so a port is unique per service.
        let mut ports: HashMap<u16, (Span, &str)> = HashMap::new();
        if svc.image.value.trim().is_empty() {
            cx.error(
                Code::BadValue,
                svc.image.span,
                format!("service \"{}\" has an empty image", id.value),
                "expected an image reference",
            );
        }
        if svc.plugin.value != crate::model::defaults::PLUGIN {
            let d = Diagnostic::warning(
                Code::UnknownWord,
                format!(
                    "unknown plugin \"{}\"; treated as generic_container",
                    svc.plugin.value
                ),
            )
            .at(
                cx.src,
                svc.plugin.span,
                "only generic_container is built in",
            );
            cx.diags.push(d);
        }
        for port in &svc.ports {
            if let Some((first, owner)) = ports.get(&port.value) {
                let (first, owner) = (*first, owner.to_string());
                let src = cx.src;
                let d = cx.error(
                    Code::DuplicatePort,
                    port.span,
                    format!("port {} is listed twice", port.value),
                    "listed again here",
                );
                *d = d
                    .clone()
                    .also(src, first, format!("first listed for service \"{owner}\""));
            } else {
                ports.insert(port.value, (port.span, id.value.as_str()));
            }
            if port.value == 0 {
                cx.error(
                    Code::OutOfRange,
                    port.span,
                    "port 0 is not a port".into(),
                    "expected 1 to 65535",
                );
            }
        }
        for v in &svc.volumes {
            check_volume(cx, &id.value, v);
        }
        if let Some(h) = &svc.health_check
            && h.cmd.is_empty()
        {
            cx.error(
                Code::EmptyCommand,
                h.cmd_span,
                format!("service \"{}\" has an empty health_check command", id.value),
                "expected a program and its arguments",
            );
        }
        check_setup(id, svc, cx);
    }
}

/// `[[service.<id>.setup]]` (SPEC §7.3): steps run in that service, so a `service`
/// on one may only name it.
fn check_setup(id: &Sp<String>, svc: &crate::model::Service, cx: &mut Ctx<'_>) {
    for step in &svc.setup {
        if let Some(other) = &step.service
            && other.value != id.value
        {
            cx.error(
                Code::BadValue,
                other.span,
                format!(
                    "set-up step \"{}\" of service \"{}\" names service \"{}\"",
                    step.name.value, id.value, other.value
                ),
                "set-up steps run in their own service",
            )
            .help = Some(format!(
                "remove `service`, or move the step to [[service.{}.setup]]",
                other.value
            ));
        }
        check_step(cx, step, "set-up step");
        if let Some(h) = &step.http {
            cx.error(
                Code::BadValue,
                h.span,
                format!("set-up step \"{}\" sends an HTTP request", step.name.value),
                "set-up steps run commands in their service",
            );
        }
    }
}

/// What every step needs, wherever it is: a command, a sane timeout.
fn check_step(cx: &mut Ctx<'_>, step: &crate::model::Step, what: &str) {
    if let Some(command) = &step.command
        && command.value.is_empty()
    {
        cx.error(
            Code::EmptyCommand,
            command.span,
            format!("{what} \"{}\" has an empty command", step.name.value),
            "expected a program and its arguments",
        );
    }
    check_timeout(cx, step.timeout_ms.as_ref());
    if let Some(retry) = &step.retry {
        let (max, a) = (crate::model::defaults::RETRY_MAX_ATTEMPTS, &retry.attempts);
        if a.value == 0 || a.value > max {
            cx.error(
                Code::OutOfRange,
                a.span,
                format!("`retry.attempts` is {}", a.value),
                format!("expected 1 to {max} (runs in all, the first included)"),
            );
        }
        let max = crate::model::defaults::RETRY_MAX_INTERVAL_MS;
        if let Some(i) = &retry.interval_ms
            && i.value > max
        {
            cx.error(
                Code::OutOfRange,
                i.span,
                format!("`retry.interval_ms` is {}", i.value),
                format!("expected at most {max} (10 minutes)"),
            );
        }
    }
}

fn check_determinism(file: &TestFile, cx: &mut Ctx<'_>) {
    let Some(clock) = file
        .determinism
        .as_ref()
        .and_then(|d| d.freeze_clock.as_ref())
    else {
        return;
    };
    if time::OffsetDateTime::parse(&clock.value, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        cx.error(
            Code::BadTimestamp,
            clock.span,
            format!(
                "`freeze_clock` \"{}\" is not an RFC 3339 timestamp",
                clock.value
            ),
            "expected e.g. \"2025-01-01T00:00:00Z\"",
        );
    }
}

fn check_otel(file: &TestFile, cx: &mut Ctx<'_>) {
    let Some(otel) = &file.otel else { return };
    if let Some(r) = &otel.sample_ratio
        && !(0.0..=1.0).contains(&r.value)
    {
        cx.error(
            Code::OutOfRange,
            r.span,
            format!("`sample_ratio` {} is outside 0.0 to 1.0", r.value),
            "expected 0.0 to 1.0",
        );
    }
    if let Some(m) = &otel.max_spans
        && m.value == 0
    {
        cx.error(
            Code::OutOfRange,
            m.span,
            "`max_spans` 0 would refuse every span".into(),
            "expected 1 or more",
        );
    }
    for (name, v) in [
        ("settle_ms", &otel.settle_ms),
        ("max_wait_ms", &otel.max_wait_ms),
    ] {
        if let Some(v) = v
            && v.value == 0
        {
            cx.error(
                Code::OutOfRange,
                v.span,
                format!("`{name}` must be above 0"),
                "expected 1 or more",
            );
        }
    }
    if let (Some(settle), Some(max)) = (&otel.settle_ms, &otel.max_wait_ms)
        && settle.value > max.value
    {
        bounds_error(
            cx,
            settle.span,
            max.span,
            "settle_ms",
            "max_wait_ms",
            &settle.value,
            &max.value,
        );
    }
    if let Some(e) = &otel.endpoint {
        let ok = ["http://", "https://"]
            .iter()
            .any(|p| e.value.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if !ok {
            cx.error(
                Code::BadValue,
                e.span,
                format!("`endpoint` \"{}\" is not an http(s) URL", e.value),
                "expected e.g. \"http://localhost:4318\"",
            );
        }
    }
    for p in otel.propagators.iter().flat_map(|p| &p.use_) {
        if !PROPAGATORS.contains(&p.as_str()) {
            let mut d = Diagnostic::warning(
                Code::UnknownWord,
                format!("unknown propagator \"{}\"", p.value),
            )
            .at(cx.src, p.span, format!("known: {}", PROPAGATORS.join(", ")));
            if let Some(best) = crate::model::reader::closest(&p.value, PROPAGATORS) {
                let quoted = format!("\"{best}\"");
                d = d.suggest(&quoted, quoted.clone());
            }
            cx.diags.push(d);
        }
    }
}

fn check_expectations(file: &TestFile, cx: &mut Ctx<'_>) {
    let defined = service_ids(file);
    for e in std::iter::once(&file.expect).chain(file.scenarios.iter().map(|s| &s.expect)) {
        check_expect(e, cx);
        for l in &e.logs {
            check_reference(cx, &l.service, &defined, "[[expect.log]]");
            if l.contains.is_some() == l.regex.is_some() {
                cx.error(
                    Code::BadValue,
                    l.span,
                    "[[expect.log]] needs exactly one of `contains` and `regex`".into(),
                    if l.contains.is_some() {
                        "both given"
                    } else {
                        "neither given"
                    },
                );
            }
        }
    }
}

fn check_expect(e: &Expect, cx: &mut Ctx<'_>) {
    for s in &e.spans {
        check_span_expect(cx, s);
    }
    for host in e.hermeticity.iter().flat_map(|h| &h.allow_hosts) {
        if let Err(why) = crate::model::HostPattern::parse(&host.value) {
            cx.error(
                Code::BadValue,
                host.span,
                format!("allow_hosts: {why}"),
                "not a host, address or range",
            )
            .help = Some(
                "write a host name (\"orders.example\"), an address (\"10.1.2.3\") or a CIDR range (\"10.0.0.0/8\")".into(),
            );
        }
    }
    if let Some(counts) = &e.counts {
        let named = [
            &counts.spans_total,
            &counts.events_total,
            &counts.errors_total,
        ];
        for c in named.into_iter().flatten() {
            check_count(cx, c);
        }
        for (_, c) in counts.by_name.iter() {
            check_count(cx, c);
        }
    }
    check_order(e, cx);
}

fn check_span_expect(cx: &mut Ctx<'_>, s: &SpanExpect) {
    if let Some(b) = &s.duration_ms {
        for v in [&b.min, &b.max].into_iter().flatten() {
            if v.value < 0.0 {
                cx.error(
                    Code::OutOfRange,
                    v.span,
                    "durations cannot be negative".into(),
                    "expected 0 or more",
                );
            }
        }
        if let (Some(min), Some(max)) = (&b.min, &b.max)
            && min.value > max.value
        {
            bounds_error(cx, min.span, max.span, "min", "max", &min.value, &max.value);
        }
    }
}

fn bounds_error(
    cx: &mut Ctx<'_>,
    lo: Span,
    hi: Span,
    lo_name: &str,
    hi_name: &str,
    lo_v: &dyn std::fmt::Display,
    hi_v: &dyn std::fmt::Display,
) {
    let src = cx.src;
    let d = cx.error(
        Code::BadBounds,
        lo,
        format!("`{lo_name}` ({lo_v}) is above `{hi_name}` ({hi_v})"),
        format!("{lo_name} = {lo_v}"),
    );
    *d = d
        .clone()
        .also(src, hi, format!("{hi_name} = {hi_v}"))
        .help(format!(
            "no value can satisfy both; `{lo_name}` must be at most `{hi_name}`"
        ));
}

fn check_count(cx: &mut Ctx<'_>, c: &Count) {
    if let (Some(gte), Some(lte)) = (&c.gte, &c.lte)
        && gte.value > lte.value
    {
        bounds_error(cx, gte.span, lte.span, "gte", "lte", &gte.value, &lte.value);
    }
    if let Some(eq) = &c.eq {
        let outside = c
            .gte
            .as_ref()
            .filter(|g| eq.value < g.value)
            .map(|g| (g.span, "gte", g.value))
            .or_else(|| {
                c.lte
                    .as_ref()
                    .filter(|l| eq.value > l.value)
                    .map(|l| (l.span, "lte", l.value))
            });
        if let Some((span, name, v)) = outside {
            let src = cx.src;
            let d = cx.error(
                Code::BadBounds,
                eq.span,
                format!("`eq` ({}) contradicts `{name}` ({v})", eq.value),
                format!("eq = {}", eq.value),
            );
            *d = d.clone().also(src, span, format!("{name} = {v}"));
        }
    }
}

/// `must_precede` and `must_follow` as edges "a ends before b starts", acyclic and
/// consistent with windows (a span inside a window cannot precede or follow its outer span).
fn check_order(e: &Expect, cx: &mut Ctx<'_>) {
    let Some(order) = &e.order else {
        return;
    };
    let edges: Vec<(&str, &str, &Sp<Pair>)> = order
        .must_precede
        .iter()
        .map(|p| (p.a().as_str(), p.b().as_str(), p))
        .chain(
            order
                .must_follow
                .iter()
                .map(|p| (p.b().as_str(), p.a().as_str(), p)),
        )
        .collect();
    for (a, b, p) in &edges {
        if a == b {
            cx.error(
                Code::OrderCycle,
                p.span,
                format!("\"{a}\" cannot end before it starts"),
                "a span cannot precede itself",
            );
        }
    }
    let proper: Vec<_> = edges.iter().filter(|(a, b, _)| a != b).cloned().collect();
    if let Some((a, b, p)) = first_cycle_edge(&proper) {
        cx.error(
            Code::OrderCycle,
            p.span,
            format!("ordering constraints form a cycle through \"{a}\" and \"{b}\""),
            "this constraint closes the cycle",
        )
        .help = Some(
            "no trace can satisfy a cycle of must_precede/must_follow; remove one constraint"
                .into(),
        );
    }
    for w in &e.windows {
        let inside: HashSet<&str> = w.contains.iter().map(|c| c.as_str()).collect();
        for (a, b, p) in &edges {
            let contradicts = (*a == w.outer.as_str() && inside.contains(b))
                || (*b == w.outer.as_str() && inside.contains(a));
            if contradicts {
                let src = cx.src;
                let d = cx.error(
                    Code::OrderContradictsWindow,
                    p.span,
                    format!("ordering [\"{a}\" before \"{b}\"] contradicts a window"),
                    "this constraint",
                );
                *d = d.clone().also(src, w.outer.span, format!("\"{}\" contains the other span", w.outer.value))
                    .help("a span inside a window overlaps its outer span, so neither can end before the other starts");
            }
        }
    }
}

/// `depends_on` (SPEC §7.1): known ids, no cycle, `healthy` only where there is a
/// probe, no steps in a one-shot; a scenario's `services` known and covering the
/// services its steps run in.
fn check_dependencies(file: &TestFile, cx: &mut Ctx<'_>) {
    let defined = service_ids(file);
    let mut edges: Vec<(&str, &str, Span)> = Vec::new();
    for (id, svc) in file.services.iter() {
        let mut seen: HashSet<&str> = HashSet::new();
        for dep in &svc.depends_on {
            let who = format!("`depends_on` of service \"{}\"", id.value);
            if !defined.contains(&dep.service.as_str()) {
                check_reference(cx, &dep.service, &defined, &who);
                continue;
            }
            if !seen.insert(dep.service.as_str()) {
                cx.error(
                    Code::BadValue,
                    dep.service.span,
                    format!("service \"{}\" is listed twice", dep.service.value),
                    "listed again here",
                );
                continue;
            }
            if dep.service.value == id.value {
                cx.error(
                    Code::DependencyCycle,
                    dep.service.span,
                    format!("service \"{}\" depends on itself", id.value),
                    "remove this entry",
                );
                continue;
            }
            edges.push((id.value.as_str(), dep.service.as_str(), dep.service.span));
            if let (Some(c), Some(target)) = (&dep.condition, file.services.get(&dep.service))
                && c.value == Condition::Healthy
                && target.health_check.is_none()
                && target.wait_for_span.is_none()
            {
                cx.error(
                    Code::BadValue,
                    c.span,
                    format!(
                        "service \"{}\" has no health_check or wait_for_span to be healthy by",
                        dep.service.value
                    ),
                    "nothing tells when it is healthy",
                )
                .help = Some(format!(
                    "add a health_check to [service.{}], or depend on it as \"started\"",
                    dep.service.value
                ));
            }
        }
    }
    if let Some((a, b, span)) = first_cycle_edge(&edges) {
        cx.error(
            Code::DependencyCycle,
            *span,
            format!("services' depends_on form a cycle through \"{a}\" and \"{b}\""),
            "this dependency closes the cycle",
        )
        .help = Some("no start order satisfies a cycle; remove one dependency".into());
    }
    let one_shots: HashSet<&str> = file
        .services
        .iter()
        .flat_map(|(_, s)| &s.depends_on)
        .filter(|d| {
            d.condition
                .as_ref()
                .is_some_and(|c| c.value == Condition::Completed)
        })
        .map(|d| d.service.as_str())
        .collect();
    for sc in &file.scenarios {
        let mut runs_in: Vec<&Sp<String>> = sc.service.iter().collect();
        runs_in.extend(sc.steps.iter().filter_map(|s| s.service.as_ref()));
        for target in &runs_in {
            if one_shots.contains(target.as_str()) {
                cx.error(
                    Code::BadValue,
                    target.span,
                    format!(
                        "service \"{}\" is a one-shot (a service depends on it as \"completed\"); nothing runs in it",
                        target.value
                    ),
                    "its main process has exited by the time steps run",
                );
            }
        }
        let Some(list) = &sc.services else { continue };
        let who = format!("`services` of scenario \"{}\"", sc.name.value);
        let mut started: HashSet<&str> = HashSet::new();
        let mut todo: Vec<&str> = Vec::new();
        for id in &list.value {
            if defined.contains(&id.as_str()) {
                todo.push(id.as_str());
            } else {
                check_reference(cx, id, &defined, &who);
            }
        }
        // Dependencies come along.
        while let Some(id) = todo.pop() {
            if started.insert(id)
                && let Some(svc) = file.services.get(id)
            {
                todo.extend(svc.depends_on.iter().map(|d| d.service.as_str()));
            }
        }
        for target in runs_in {
            if defined.contains(&target.as_str()) && !started.contains(target.as_str()) {
                cx.error(
                    Code::UndefinedService,
                    target.span,
                    format!(
                        "service \"{}\" is not among the services scenario \"{}\" starts",
                        target.value, sc.name.value
                    ),
                    "not started in this scenario",
                )
                .help = Some(format!(
                    "add \"{}\" to the scenario's `services`",
                    target.value
                ));
            }
        }
    }
}

/// The edge that closes the first cycle found, if any (depth-first search).
fn first_cycle_edge<'a, T>(
    edges: &'a [(&'a str, &'a str, T)],
) -> Option<(&'a str, &'a str, &'a T)> {
    let mut adj: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (a, _, _)) in edges.iter().enumerate() {
        adj.entry(a).or_default().push(i);
    }
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a, T>(
        n: &'a str,
        edges: &'a [(&'a str, &'a str, T)],
        adj: &HashMap<&'a str, Vec<usize>>,
        state: &mut HashMap<&'a str, u8>,
    ) -> Option<usize> {
        state.insert(n, 1);
        for &i in adj.get(n).into_iter().flatten() {
            let next = edges[i].1;
            match state.get(next) {
                Some(1) => return Some(i),
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, adj, state) {
                        return Some(found);
                    }
                }
            }
        }
        state.insert(n, 2);
        None
    }
    let mut starts: Vec<&str> = edges.iter().map(|e| e.0).collect();
    starts.dedup();
    for s in starts {
        if !state.contains_key(s)
            && let Some(i) = visit(s, edges, &adj, &mut state)
        {
            let (a, b, t) = &edges[i];
            return Some((a, b, t));
        }
    }
    None
}

fn check_timeout(cx: &mut Ctx<'_>, timeout: Option<&Sp<u64>>) {
    if let Some(t) = timeout
        && t.value == 0
    {
        cx.error(
            Code::OutOfRange,
            t.span,
            "`timeout_ms` must be above 0".into(),
            "0 would time out at once",
        );
    }
}
