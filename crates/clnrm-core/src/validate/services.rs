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
        if let Some(image) = &svc.image
            && image.value.trim().is_empty()
        {
            cx.error(
                Code::BadValue,
                image.span,
                format!("service \"{}\" has an empty image", id.value),
                "expected an image reference",
            );
        }
        if let Some(build) = &svc.build {
            check_build(cx, &id.value, build);
        }
        if let Some(develop) = &svc.develop {
            check_develop(cx, &id.value, develop, svc.build.is_some());
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
        check_tmpfs(file, cx, id, svc);
        if let Some(h) = &svc.health_check {
            check_health(cx, &id.value, h);
        }
        check_setup(id, svc, cx);
    }
    check_fixture_one_shots(file, cx);
}

/// `tmpfs` mount options the engine takes (Docker's and Podman's): flags, and keys
/// with the values they take.
const TMPFS_FLAGS: &[&str] = &[
    "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev",
];
const TMPFS_KEYS: &[&str] = &["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"];

/// Why the value of tmpfs option `key` is not one, if it is not.
fn tmpfs_value_error(key: &str, value: &str) -> Option<&'static str> {
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let sized = |v: &str| {
        let n = v.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G']).unwrap_or(v);
        digits(n)
    };
    match key {
        "size" if !(sized(value) || value.strip_suffix('%').is_some_and(digits)) => {
            Some("a size in bytes, with k, m or g, or a percentage of memory (\"64m\", \"10%\")")
        }
        "mode"
            if value.is_empty()
                || value.len() > 4
                || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
        {
            Some("an octal mode (\"1777\", \"700\")")
        }
        "uid" | "gid" if !digits(value) => Some("a numeric id"),
        "nr_inodes" | "nr_blocks" if !sized(value) => Some("a number, with k, m or g"),
        _ => None,
    }
}

/// `tmpfs` (Compose's): absolute paths, each once and none also a bind mount's,
/// options the engine takes, and no fixture snapshot of the service (what is in memory
/// is not in a snapshot: every scenario would start without what set-up wrote there).
fn check_tmpfs(file: &TestFile, cx: &mut Ctx<'_>, id: &Sp<String>, svc: &crate::model::Service) {
    let mut seen: HashMap<&str, Span> = svc
        .volumes
        .iter()
        .map(|v| {
            let p = v.container_path.value.as_str();
            let p = match p.trim_end_matches('/') {
                "" => p,
                trimmed => trimmed,
            };
            (p, v.container_path.span)
        })
        .collect();
    for entry in &svc.tmpfs {
        let (path, options) = crate::model::tmpfs_parts(&entry.value);
        // `/data/` is `/data`.
        let path = match path.trim_end_matches('/') {
            "" => path,
            trimmed => trimmed,
        };
        if !path.starts_with('/') || path.trim_end_matches('/').is_empty() {
            cx.error(
                Code::RelativeVolumePath,
                entry.span,
                format!("tmpfs path \"{path}\" is not an absolute directory"),
                "expected a path in the container such as \"/var/lib/postgresql/data\"",
            );
        } else if let Some(first) = seen.insert(path, entry.span) {
            let src = cx.src.clone();
            let d = cx.error(
                Code::Conflict,
                entry.span,
                format!("service \"{}\" mounts \"{path}\" twice", id.value),
                "mounted again here",
            );
            *d = d.clone().also(&src, first, "first mounted here");
        }
        for option in options.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let all = || {
                let keys: Vec<String> = TMPFS_KEYS.iter().map(|k| format!("{k}=…")).collect();
                format!(
                    "options: {}, and {}",
                    keys.join(", "),
                    TMPFS_FLAGS.join(", ")
                )
            };
            let near = |word: &str, among: &[&str]| {
                crate::model::reader::closest(word, among)
                    .map_or_else(all, |w| format!("did you mean `{w}`?"))
            };
            let (message, help) = if option.contains('=') {
                match (TMPFS_KEYS.contains(&key), tmpfs_value_error(key, value)) {
                    (true, None) => continue,
                    (true, Some(why)) => (format!("tmpfs option `{key}` takes {why}"), None),
                    (false, _) => (
                        format!("unknown tmpfs option `{key}`"),
                        Some(near(key, TMPFS_KEYS)),
                    ),
                }
            } else if TMPFS_FLAGS.contains(&option) {
                continue;
            } else if TMPFS_KEYS.contains(&option) {
                (
                    format!("tmpfs option `{option}` needs a value (`{option}=…`)"),
                    None,
                )
            } else {
                (
                    format!("unknown tmpfs option `{option}`"),
                    Some(near(option, TMPFS_FLAGS)),
                )
            };
            cx.error(
                Code::BadValue,
                entry.span,
                format!("service \"{}\": {message}", id.value),
                "in this tmpfs entry",
            )
            .help = help;
        }
    }
    let snapshot = !svc.setup.is_empty()
        || file
            .services
            .iter()
            .any(|(_, other)| other.fixture_target() == Some(id.value.as_str()));
    if let Some(first) = svc.tmpfs.first()
        && snapshot
    {
        cx.error(
            Code::Conflict,
            first.span,
            format!(
                "service \"{}\" has a fixture snapshot and a tmpfs",
                id.value
            ),
            "a snapshot cannot hold what is in memory",
        )
        .help = Some(
            "every scenario would start without what its set-up wrote here: leave out `tmpfs`, or the set-up".into(),
        );
    }
}

/// `[service.<id>.build]` (SPEC §14): the context is a directory with the Dockerfile
/// in it, its `.dockerignore` reads, and the `target` is a stage of the Dockerfile.
fn check_build(cx: &mut Ctx<'_>, service: &str, build: &crate::model::Build) {
    let context = build.context_in(cx.base);
    let shown = format!("\"{}\" ({})", build.context.value, context.display());
    if !context.is_dir() {
        cx.error(
            Code::BadBuild,
            build.context.span,
            format!("service \"{service}\": build context {shown} is not a directory"),
            "expected a directory, relative to this file",
        );
        return;
    }
    if let Err(e) = crate::build::read_ignore(&context) {
        cx.error(
            Code::BadBuild,
            build.context.span,
            format!("service \"{service}\": {e}"),
            "its .dockerignore",
        );
    }
    let dockerfile = build.dockerfile();
    let span = build
        .dockerfile
        .as_ref()
        .map_or(build.context.span, |d| d.span);
    let inside = std::path::Path::new(dockerfile).components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !inside {
        cx.error(
            Code::BadBuild,
            span,
            format!("service \"{service}\": the Dockerfile \"{dockerfile}\" is not inside the build context"),
            "expected a path relative to the context, without `..`",
        );
        return;
    }
    let text = match crate::build::read_small_text(&context.join(dockerfile)) {
        Ok(text) => text,
        Err(e) => {
            cx.error(
                Code::BadBuild,
                span,
                format!(
                    "service \"{service}\": cannot read the Dockerfile {} ({e})",
                    context.join(dockerfile).display()
                ),
                "expected a Dockerfile in the build context",
            );
            return;
        }
    };
    if let Some(target) = &build.target {
        let stages = crate::build::stages(&text);
        if !stages.iter().any(|s| s.eq_ignore_ascii_case(&target.value)) {
            let names: Vec<&str> = stages.iter().map(String::as_str).collect();
            let label = if names.is_empty() {
                "the Dockerfile names no stage (`FROM … AS <name>`)".to_owned()
            } else {
                format!("its stages: {}", names.join(", "))
            };
            let closest = crate::model::reader::closest(&target.value, &names);
            let d = cx.error(
                Code::BadBuild,
                target.span,
                format!(
                    "service \"{service}\": target \"{}\" is no stage of {dockerfile}",
                    target.value
                ),
                label,
            );
            if let Some(c) = closest {
                d.help = Some(format!("did you mean \"{c}\"?"));
            }
        }
    }
}

/// `[service.<id>.develop]` (SPEC §14): rules of a built service, each `path` inside
/// the context, each `sync` with an absolute `target`.
fn check_develop(cx: &mut Ctx<'_>, service: &str, develop: &crate::model::Develop, built: bool) {
    use crate::model::DevelopAction;
    if !built {
        cx.error(
            Code::BadBuild,
            develop.span,
            format!("service \"{service}\" has `develop` rules but no `build`"),
            "develop rules say how a change of the build's context reaches the image",
        )
        .help = Some("add `build = \"<context>\"`, or remove the `develop` table".into());
        return;
    }
    for rule in &develop.watch {
        let inside = !rule.path.value.is_empty()
            && std::path::Path::new(&rule.path.value)
                .components()
                .all(|c| {
                    matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                });
        if !inside {
            cx.error(
                Code::BadBuild,
                rule.path.span,
                format!(
                    "service \"{service}\": develop path \"{}\" is not inside the build context",
                    rule.path.value
                ),
                "expected a path relative to the context, without `..`",
            );
        }
        let syncs = matches!(
            rule.action.value,
            DevelopAction::Sync | DevelopAction::SyncRestart
        );
        match &rule.target {
            None if syncs => {
                cx.error(
                    Code::MissingKey,
                    rule.action.span,
                    format!("service \"{service}\": a `sync` rule needs a `target`"),
                    "where the files go in the image",
                )
                .help = Some("add `target = \"/app\"` (an absolute path in the image)".into());
            }
            Some(t) if syncs && !t.value.starts_with('/') => {
                cx.error(
                    Code::BadValue,
                    t.span,
                    format!("develop target \"{}\" is not absolute", t.value),
                    "must start with `/`",
                );
            }
            _ => {}
        }
    }
}

/// A `health_check`: a command, an `http` URL or a `postgres` URL of the service
/// itself (one of them).
fn check_health(cx: &mut Ctx<'_>, id: &str, h: &crate::model::HealthCheck) {
    if let Some(pg) = &h.postgres {
        check_postgres_probe(cx, id, h, pg);
        return;
    }
    let Some(url) = &h.http else {
        if h.cmd.is_empty() {
            cx.error(
                Code::EmptyCommand,
                h.cmd_span,
                format!("service \"{id}\" has an empty health_check command"),
                "expected a program and its arguments",
            );
        }
        return;
    };
    if !h.cmd.is_empty() {
        cx.error(
            Code::Conflict,
            h.cmd_span,
            format!("service \"{id}\"'s health_check has both `cmd` and `http`"),
            "one probe: remove `cmd` or `http`",
        );
    }
    match (url.value.target(), url.value.error()) {
        (Some(t), _) if t.host == id => {}
        (Some(t), _) => {
            cx.error(
                Code::BadValue,
                url.span,
                format!(
                    "service \"{id}\"'s health_check asks service \"{}\"",
                    t.host
                ),
                "a health check probes its own service",
            )
            .help = Some(format!("http://{id}:{}{}", t.port, t.path));
        }
        (None, Some(e)) => {
            cx.error(
                Code::BadValue,
                url.span,
                format!("health_check.http: {e}"),
                "here",
            );
        }
        (None, None) => {
            cx.error(
                Code::BadValue,
                url.span,
                "health_check.http cannot use captures".into(),
                "no step has run when it is probed",
            );
        }
    }
}

/// A `health_check.postgres`: the only probe, a URL of the service itself.
fn check_postgres_probe(
    cx: &mut Ctx<'_>,
    id: &str,
    h: &crate::model::HealthCheck,
    pg: &crate::model::Sp<String>,
) {
    let other = match (&h.http, h.cmd.is_empty()) {
        (Some(url), _) => Some(("http", url.span)),
        (None, false) => Some(("cmd", h.cmd_span)),
        (None, true) => None,
    };
    if let Some((key, span)) = other {
        cx.error(
            Code::Conflict,
            span,
            format!("service \"{id}\"'s health_check has both `{key}` and `postgres`"),
            "one probe: remove one of them",
        );
    }
    match crate::model::postgres_target(&pg.value) {
        Ok(t) if t.host == id => {}
        Ok(t) => {
            cx.error(
                Code::BadValue,
                pg.span,
                format!(
                    "service \"{id}\"'s health_check asks service \"{}\"",
                    t.host
                ),
                "a health check probes its own service",
            )
            .help = Some(format!(
                "postgres://{}@{id}:{}/{}",
                t.user, t.port, t.database
            ));
        }
        Err(e) => {
            cx.error(
                Code::BadValue,
                pg.span,
                format!("health_check.postgres: {e}"),
                "here",
            )
            .help = Some(format!("postgres://postgres@{id}:5432/postgres"));
        }
    }
}

/// `fixture = true` (issue 30): a one-shot run once into the fixture of the one service
/// it depends on, which scenarios then never start: it depends on exactly one service
/// (itself no such one-shot), names an `image` (a built one is not resolved for a
/// fixture yet), what depends on it waits for `completed`, and no step or log
/// expectation names it.
fn check_fixture_one_shots(file: &TestFile, cx: &mut Ctx<'_>) {
    let on = |s: &crate::model::Service| s.fixture.as_ref().is_some_and(|f| f.value);
    for (id, svc) in file.services.iter() {
        let Some(flag) = svc.fixture.as_ref().filter(|f| f.value) else {
            continue;
        };
        match svc.depends_on.as_slice() {
            [one] => {
                if file.services.get(&one.service.value).is_some_and(on) {
                    cx.error(
                        Code::BadValue,
                        one.service.span,
                        format!(
                            "fixture one-shot \"{}\" depends on \"{}\", another fixture one-shot",
                            id.value, one.service.value
                        ),
                        "it must depend on the service whose data it changes",
                    );
                }
            }
            _ => {
                cx.error(
                    Code::BadValue,
                    flag.span,
                    format!(
                        "fixture one-shot \"{}\" depends on {} services",
                        id.value,
                        svc.depends_on.len()
                    ),
                    "a fixture one-shot depends on exactly one service",
                )
                .help = Some(
                    "`depends_on = { db = \"healthy\" }`: the service whose fixture it runs into"
                        .into(),
                );
            }
        }
        if let Some(build) = &svc.build {
            cx.error(
                Code::BadValue,
                build.span,
                format!("fixture one-shot \"{}\" is built from source", id.value),
                "a fixture one-shot needs `image` for now",
            )
            .help = Some("build it with `clnrm build` or `docker build`, and name its tag".into());
        }
        for (other, dependent) in file.services.iter() {
            for dep in &dependent.depends_on {
                let waits = dep
                    .condition
                    .as_ref()
                    .is_some_and(|c| c.value == crate::model::Condition::Completed);
                if dep.service.value == id.value && !waits {
                    cx.error(
                        Code::BadValue,
                        dep.service.span,
                        format!(
                            "service \"{}\" depends on fixture one-shot \"{}\" without `completed`",
                            other.value, id.value
                        ),
                        "a fixture one-shot has completed before any scenario starts",
                    )
                    .help = Some(format!("`depends_on = {{ {} = \"completed\" }}`", id.value));
                }
            }
        }
        if let Some(step) = svc.setup.first() {
            cx.error(
                Code::BadValue,
                step.name.span,
                format!("fixture one-shot \"{}\" has set-up steps", id.value),
                "a fixture one-shot has no fixture of its own",
            )
            .help = Some(format!(
                "move them to the service \"{id}\" depends on, or drop `fixture = true`",
                id = id.value
            ));
        }
        let logs = file
            .expect
            .logs
            .iter()
            .chain(file.scenarios.iter().flat_map(|s| &s.expect.logs));
        let steps = file.scenarios.iter().flat_map(|s| {
            s.steps
                .iter()
                .filter_map(|st| st.service.as_ref())
                .chain(s.service.as_ref())
                .chain(s.services.iter().flat_map(|list| list.value.iter()))
        });
        let named: Vec<Span> = logs
            .map(|l| &l.service)
            .chain(steps)
            .filter(|s| s.value == id.value)
            .map(|s| s.span)
            .collect();
        for span in named {
            cx.error(
                Code::BadValue,
                span,
                format!(
                    "service \"{}\" runs once into a fixture (`fixture = true`): no scenario starts it",
                    id.value
                ),
                "not started in scenarios",
            );
        }
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
        if let Some(g) = &step.grpc {
            cx.error(
                Code::BadValue,
                g.span,
                format!("set-up step \"{}\" makes a gRPC call", step.name.value),
                "set-up steps run commands in their service",
            );
        }
    }
}
