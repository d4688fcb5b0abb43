//! Rules on `depends_on` and a scenario's `services` (SPEC §7.1): which services start,
//! in an order that exists.

use super::ctx::{Ctx, check_reference, service_ids};
use super::cycles::first_cycle_edge;
use crate::diag::{Code, Span};
use crate::model::{Condition, Sp, TestFile};
use std::collections::HashSet;

/// `depends_on` (SPEC §7.1): known ids, no cycle, `healthy` only where there is a
/// probe, no steps in a one-shot; a scenario's `services` known and covering the
/// services its steps run in.
pub(super) fn check_dependencies(file: &TestFile, cx: &mut Ctx<'_>) {
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
