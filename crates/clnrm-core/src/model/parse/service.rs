//! Reading `[service.<id>]` tables (`[services.<id>]` in the legacy layout): image,
//! command, ports, mounts, health check, dependencies and set-up steps.

use super::step::read_step;
use crate::diag::{Code, Diagnostic, Span};
use crate::model::reader::{FromToml, Reader, Table, keyword_value};
use crate::model::{
    Build, Condition, Dependency, Develop, HealthCheck, Service, Sp, SpMap, Volume, WatchRule,
};
use toml::Spanned;
use toml::de::DeValue;

/// Reads `[<key>.<id>]` service tables; `plugin_key` is `type` in the legacy layout.
pub(super) fn read_services(
    r: &mut Reader<'_>,
    root: &mut Table<'_, '_>,
    key: &'static str,
    plugin_key: &'static str,
) -> SpMap<Service> {
    let Some(mut table) = root.table(r, key) else {
        return SpMap::default();
    };
    let mut out = SpMap::default();
    let entries: Vec<_> = table.entries().collect();
    for (k, v) in entries {
        let id = k.get_ref().to_string();
        let path = format!("{key}.{id}");
        let DeValue::Table(inner) = v.get_ref() else {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a table"),
                "expected a [service] table",
            );
            continue;
        };
        let mut t = Table::new(inner, k.span().into(), path);
        if let Some(service) = read_service(r, &mut t, plugin_key, k.span().into()) {
            out.entries.push((Sp::new(id, k.span().into()), service));
        }
        t.finish(r);
    }
    table.accept_all();
    out
}

fn read_service(
    r: &mut Reader<'_>,
    t: &mut Table<'_, '_>,
    plugin_key: &'static str,
    span: Span,
) -> Option<Service> {
    let plugin = t.get(r, plugin_key);
    let image: Option<Sp<String>> = t.get(r, "image");
    let build = match t.entry("build") {
        Some((k, v)) => read_build(r, k.span().into(), v, &format!("{}.build", t.path())),
        None => None,
    };
    let volumes = match t.entry("volumes") {
        Some((_, v)) => read_volumes(r, v, &format!("{}.volumes", t.path())),
        None => Vec::new(),
    };
    let health_check = t.table(r, "health_check").map(|mut h| {
        let cmd_span = h.entry("cmd").map_or(h.anchor(), |(_, v)| v.span().into());
        let http = h.get(r, "http");
        let postgres = h.get(r, "postgres");
        let cmd = if http.is_some() || postgres.is_some() {
            h.get(r, "cmd")
        } else {
            h.req(r, "cmd", "[\"true\"]")
        };
        let out = HealthCheck {
            cmd: cmd.unwrap_or_default(),
            http,
            postgres,
            interval_ms: h.get(r, "interval_ms"),
            timeout_ms: h.get(r, "timeout_ms"),
            retries: h.get(r, "retries"),
            cmd_span,
        };
        h.finish(r);
        out
    });
    match (&image, &build) {
        (None, None) if !t.has("build") => {
            r.push(
                Diagnostic::error(
                    Code::MissingKey,
                    format!(
                        "[{}] is missing required key `image` (or `build`)",
                        t.path()
                    ),
                )
                .at(r.src, span, "add `image = \"clnrm/busybox:latest\"`")
                .help(
                    "or build it from source: `build = \"./app\"` (a directory with a Dockerfile)",
                ),
            );
        }
        (Some(image), Some(build)) => {
            r.push(
                Diagnostic::error(
                    Code::Conflict,
                    format!("[{}] has both `image` and `build`", t.path()),
                )
                .at(r.src, image.span, "a built image is named by its content")
                .also(r.src, build.span, "built from here")
                .help("remove `image`: clnrm tags what it builds `clnrm-build/<project>-<service>:<key>`"),
            );
        }
        _ => {}
    }
    let service = Service {
        plugin: plugin.unwrap_or_else(|| Sp::new(crate::model::defaults::PLUGIN.to_owned(), span)),
        image,
        build,
        develop: t.table(r, "develop").map(|mut d| {
            let watch = t_rules(r, &mut d);
            let span = d.anchor();
            d.finish(r);
            Develop { watch, span }
        }),
        entrypoint: t.get(r, "entrypoint"),
        args: t.get(r, "args").unwrap_or_default(),
        env: t.map(r, "env", FromToml::from_toml),
        ports: t.get(r, "ports").unwrap_or_default(),
        volumes,
        tmpfs: t.get(r, "tmpfs").unwrap_or_default(),
        health_check,
        wait_for_span: t.get(r, "wait_for_span"),
        wait_for_span_timeout_secs: t.get(r, "wait_for_span_timeout_secs"),
        depends_on: match t.entry("depends_on") {
            Some((_, v)) => read_depends_on(r, v, &format!("{}.depends_on", t.path())),
            None => Vec::new(),
        },
        setup: t
            .tables(r, "setup")
            .into_iter()
            .filter_map(|s| read_step(r, s))
            .collect(),
        fixture: t.get(r, "fixture"),
        span,
    };
    (service.image.is_some() || service.build.is_some()).then_some(service)
}

/// `build`: a table (`context`, `dockerfile`, `target`, `args`) or a string (the
/// context).
fn read_build(
    r: &mut Reader<'_>,
    key: Span,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Build> {
    match v.get_ref() {
        DeValue::String(_) => Some(Build {
            context: FromToml::from_toml(r, v, path)?,
            dockerfile: None,
            target: None,
            args: SpMap::default(),
            span: v.span().into(),
        }),
        DeValue::Table(inner) => {
            let mut t = Table::new(inner, key, path);
            let context = t.req(r, "context", "\"./app\"");
            let build = Build {
                context: context?,
                dockerfile: t.get(r, "dockerfile"),
                target: t.get(r, "target"),
                args: t.map(r, "args", FromToml::from_toml),
                span: key,
            };
            t.finish(r);
            Some(build)
        }
        _ => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a table or a string"),
                "expected { context = \"./app\" } or \"./app\"",
            );
            None
        }
    }
}

/// `develop.watch`: its rules.
fn t_rules(r: &mut Reader<'_>, d: &mut Table<'_, '_>) -> Vec<WatchRule> {
    d.tables(r, "watch")
        .into_iter()
        .filter_map(|mut t| {
            let rule_path = t.req(r, "path", "\"src\"");
            let action = match t.has("action") {
                true => t.keyword(r, "action"),
                false => {
                    let _: Option<Sp<String>> = t.req(r, "action", "\"sync\"");
                    None
                }
            };
            let target = t.get(r, "target");
            t.finish(r);
            Some(WatchRule {
                path: rule_path?,
                action: action?,
                target,
            })
        })
        .collect()
}

/// `depends_on`: a list of ids, or a map of id to condition.
fn read_depends_on(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Vec<Dependency> {
    match v.get_ref() {
        DeValue::Array(_) => {
            let ids: Vec<Sp<String>> = FromToml::from_toml(r, v, path).unwrap_or_default();
            ids.into_iter()
                .map(|service| Dependency {
                    service,
                    condition: None,
                })
                .collect()
        }
        DeValue::Table(inner) => {
            let mut t = Table::new(inner, v.span().into(), path);
            let map = t.map_entries(r, keyword_value::<Condition>);
            map.entries
                .into_iter()
                .map(|(service, condition)| Dependency {
                    service,
                    condition: Some(condition),
                })
                .collect()
        }
        _ => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a list of service ids or a table of conditions"),
                "expected [\"db\"] or { db = \"healthy\" }",
            );
            Vec::new()
        }
    }
}

fn read_volumes(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Vec<Volume> {
    let DeValue::Array(items) = v.get_ref() else {
        r.error(
            Code::WrongType,
            v.span().into(),
            format!("`{path}` must be an array of tables"),
            "expected [{ host_path = \"..\", container_path = \"..\" }]",
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let p = format!("{path}[{i}]");
            let DeValue::Table(inner) = item.get_ref() else {
                r.error(
                    Code::WrongType,
                    item.span().into(),
                    format!("`{p}` must be a table"),
                    "expected { host_path, container_path }",
                );
                return None;
            };
            let mut t = Table::new(inner, item.span().into(), p);
            let host_path = t.req(r, "host_path", "\"/abs/path\"");
            let container_path = t.req(r, "container_path", "\"/abs/path\"");
            let read_only = t.get(r, "read_only");
            t.finish(r);
            Some(Volume {
                host_path: host_path?,
                container_path: container_path?,
                read_only,
            })
        })
        .collect()
}
