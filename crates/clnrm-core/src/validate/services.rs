//! Rules on `[service.<id>]` tables: an image, a known plugin, ports listed once and
//! not 0, safe and absolute bind mounts, a health check with a command, and set-up
//! steps that stay in their service. Dependencies between services have their own
//! module.

use super::ctx::Ctx;
use super::steps::check_step;
use crate::diag::{Code, Diagnostic, Span};
use crate::model::{Sp, TestFile};
use std::collections::HashMap;

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

pub(super) fn check_services(file: &TestFile, cx: &mut Ctx<'_>) {
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
