//! Reading a [`TestFile`] out of TOML text, including the legacy layout.

use super::reader::{FromToml, Reader, Table, keyword_value};
use super::*;
use crate::diag::{Code, Diagnostic, Diagnostics, Source, Span};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Parses TOML text into a spanned tree, reporting every syntax error.
pub fn parse_document<'i>(
    src: &Arc<Source>,
    text: &'i str,
    diags: &mut Diagnostics,
) -> Option<Spanned<DeTable<'i>>> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Some(doc);
    }
    for e in errors {
        let span: Span = e.span().map(Span::from).unwrap_or_default();
        let message = e.message().trim_end().to_owned();
        let first = message.lines().next().unwrap_or("invalid TOML").to_owned();
        diags.push(
            Diagnostic::error(Code::TomlSyntax, format!("invalid TOML: {first}"))
                .at(src, span, first),
        );
    }
    None
}

/// Parses and reads a test definition; `None` when it cannot be read at all.
pub fn parse_test_file(src: &Arc<Source>) -> (Option<TestFile>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let text = src.text();
    let Some(doc) = parse_document(src, text, &mut diags) else {
        return (None, diags);
    };
    if doc.get_ref().is_empty() {
        let d = Diagnostic::error(Code::EmptyFile, "test definition is empty")
            .at(src, Span::new(0, 0), "no tables or keys here")
            .help("a test needs a [meta] table with `name` and `version`, and at least one [[scenario]]");
        diags.push(d);
        return (None, diags);
    }
    let mut r = Reader {
        src,
        diags: &mut diags,
    };
    let root = Table::new(doc.get_ref(), Span::new(0, 0), "");
    let legacy = is_legacy(doc.get_ref());
    let file = if legacy {
        read_legacy(&mut r, root)
    } else {
        read_v06(&mut r, root)
    };
    let file = file.map(|f| TestFile {
        content: content(doc.get_ref(), legacy),
        ..f
    });
    (file, diags)
}

/// The JSON of the tables that decide outcomes (see [`Content`]).
fn content(doc: &DeTable<'_>, legacy: bool) -> Content {
    let json = |v: &toml::Value| serde_json::to_string(v).unwrap_or_else(|e| format!("!{e}"));
    let part = |key: &str| {
        doc.get(key)
            .map_or(String::new(), |v| json(&reader::to_toml_value(v.get_ref())))
    };
    let scenarios = if legacy {
        vec![json(&reader::to_toml_table(doc))]
    } else {
        match doc.get("scenario").map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items
                .iter()
                .map(|i| json(&reader::to_toml_value(i.get_ref())))
                .collect(),
            _ => Vec::new(),
        }
    };
    Content {
        shared: [
            part("service"),
            part("limits"),
            part("otel"),
            part("expect"),
        ],
        scenarios,
    }
}

fn is_legacy(doc: &DeTable<'_>) -> bool {
    !doc.contains_key("meta")
        && (doc.contains_key("test") || doc.contains_key("services") || doc.contains_key("steps"))
}

fn read_v06(r: &mut Reader<'_>, mut root: Table<'_, '_>) -> Option<TestFile> {
    let meta = match root.table(r, "meta") {
        Some(t) => read_meta(r, t),
        None => {
            if !root.has("meta") {
                r.push(
                    Diagnostic::error(Code::MissingKey, "missing required table [meta]")
                        .at(r.src, Span::new(0, 0), "expected [meta] in this file")
                        .help("add:\n[meta]\nname = \"my-test\"\nversion = \"1.0\""),
                );
            }
            None
        }
    };
    let scenario_tables = root.tables(r, "scenario");
    if scenario_tables.is_empty() && !root.has("scenario") {
        r.push(
            Diagnostic::error(Code::NoScenario, "the file defines no scenario")
                .at(r.src, Span::new(0, 0), "expected at least one [[scenario]]")
                .help("add:\n[[scenario]]\nname = \"smoke\"\nrun = \"echo ok\""),
        );
    }
    let scenarios: Vec<Scenario> = scenario_tables
        .into_iter()
        .filter_map(|t| read_scenario(r, t))
        .collect();
    let services = read_services(r, &mut root, "service", "plugin");
    let rest = read_common(r, &mut root);
    root.finish(r);
    // A broken [meta] is already reported; keep reading so every other rule still runs.
    Some(TestFile {
        meta: meta.unwrap_or(rest.meta.clone()),
        scenarios,
        services,
        legacy: false,
        ..rest
    })
}

/// The tables shared by the current and the legacy layout.
fn read_common(r: &mut Reader<'_>, root: &mut Table<'_, '_>) -> TestFile {
    let vars = root.map(r, "vars", |_, v, _| {
        Some(reader::to_toml_value(v.get_ref()))
    });
    let determinism = root.table(r, "determinism").map(|mut t| {
        let d = Determinism {
            seed: t.get(r, "seed"),
            freeze_clock: t.get(r, "freeze_clock"),
        };
        t.finish(r);
        d
    });
    let otel = root.table(r, "otel").map(|t| read_otel(r, t));
    let expect = root
        .table(r, "expect")
        .map(|t| read_expect(r, t))
        .unwrap_or_default();
    let limits = root.table(r, "limits").map(|mut t| {
        let l = Limits {
            cpu_millicores: t.get(r, "cpu_millicores"),
            memory_mb: t.get(r, "memory_mb"),
        };
        t.finish(r);
        l
    });
    let report = root.table(r, "report").map(|mut t| {
        let p = ReportPaths {
            json: t.get(r, "json"),
            junit: t.get(r, "junit"),
            digest: t.get(r, "digest"),
        };
        t.finish(r);
        p
    });
    let snapshot = root.table(r, "snapshot").map(|t| read_snapshot_table(r, t));
    TestFile {
        meta: Meta {
            name: Sp::new(String::new(), Span::default()),
            version: Sp::new(String::new(), Span::default()),
            description: None,
        },
        vars,
        determinism,
        otel,
        services: SpMap::default(),
        scenarios: Vec::new(),
        expect,
        limits,
        report,
        snapshot,
        legacy: false,
        content: Content::default(),
    }
}

/// `[snapshot]`, in a test file or the config.
pub(crate) fn read_snapshot_table(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> SnapshotTable {
    let mut redact: SpMap<Sp<String>> = t.map(r, "redact", FromToml::from_toml);
    redact
        .entries
        .retain(|(k, _)| match super::compiled::compile(&k.value) {
            Ok(_) => true,
            Err(reason) => {
                r.error(
                    Code::BadRegex,
                    k.span,
                    "regular expression does not compile",
                    reason.to_string(),
                );
                false
            }
        });
    t.finish(r);
    SnapshotTable { redact }
}

fn read_meta(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Meta> {
    let name = t.req(r, "name", "\"my-test\"");
    let version = t.req(r, "version", "\"1.0\"");
    let description = t.get(r, "description");
    t.finish(r);
    Some(Meta {
        name: name?,
        version: version?,
        description,
    })
}

fn read_otel(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Otel {
    let otel = Otel {
        exporter: t.keyword(r, "exporter"),
        endpoint: t.get(r, "endpoint"),
        protocol: t.keyword(r, "protocol"),
        sample_ratio: t.get(r, "sample_ratio"),
        resources: t.map(r, "resources", FromToml::from_toml),
        headers: t.map(r, "headers", FromToml::from_toml),
        propagators: t.table(r, "propagators").map(|mut p| {
            let out = Propagators {
                use_: p.get(r, "use").unwrap_or_default(),
            };
            p.finish(r);
            out
        }),
        max_spans: t.get(r, "max_spans"),
        settle_ms: t.get(r, "settle_ms"),
        max_wait_ms: t.get(r, "max_wait_ms"),
    };
    t.finish(r);
    otel
}

/// Reads `[<key>.<id>]` service tables; `plugin_key` is `type` in the legacy layout.
fn read_services(
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
    let image = t.req(r, "image", "\"clnrm/busybox:latest\"");
    let volumes = match t.entry("volumes") {
        Some((_, v)) => read_volumes(r, v, &format!("{}.volumes", t.path())),
        None => Vec::new(),
    };
    let health_check = t.table(r, "health_check").map(|mut h| {
        let cmd_span = h.entry("cmd").map_or(h.anchor(), |(_, v)| v.span().into());
        let cmd = h.req(r, "cmd", "[\"true\"]");
        let out = HealthCheck {
            cmd: cmd.unwrap_or_default(),
            interval_ms: h.get(r, "interval_ms"),
            timeout_ms: h.get(r, "timeout_ms"),
            retries: h.get(r, "retries"),
            cmd_span,
        };
        h.finish(r);
        out
    });
    let service = Service {
        plugin: plugin.unwrap_or_else(|| Sp::new(super::defaults::PLUGIN.to_owned(), span)),
        image: image?,
        entrypoint: t.get(r, "entrypoint"),
        args: t.get(r, "args").unwrap_or_default(),
        env: t.map(r, "env", FromToml::from_toml),
        ports: t.get(r, "ports").unwrap_or_default(),
        volumes,
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
        span,
    };
    Some(service)
}

/// A status, or a non-empty list of statuses.
fn read_statuses(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<Vec<Sp<StatusCode>>>> {
    let span: Span = v.span().into();
    match v.get_ref() {
        DeValue::String(_) => keyword_value(r, v, path).map(|k| Sp::new(vec![k], span)),
        DeValue::Array(items) if items.is_empty() => {
            r.error(
                Code::BadValue,
                span,
                format!("`{path}` lists no status"),
                "expected at least one of \"OK\", \"ERROR\", \"UNSET\"",
            );
            None
        }
        DeValue::Array(items) => {
            let read: Vec<Option<Sp<StatusCode>>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| keyword_value(r, item, &format!("{path}[{i}]")))
                .collect();
            read.into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|all| Sp::new(all, span))
        }
        _ => {
            r.error(
                Code::WrongType,
                span,
                format!("`{path}` must be a status or a list of statuses"),
                "expected \"OK\" or [\"OK\", \"UNSET\"]",
            );
            None
        }
    }
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

fn read_scenario(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Scenario> {
    let name = t.req(r, "name", "\"smoke\"");
    let steps = t
        .tables(r, "steps")
        .into_iter()
        .filter_map(|s| read_step(r, s))
        .collect();
    let artifacts = t.table(r, "artifacts").map(|mut a| {
        let out = Artifacts {
            collect: a.get(r, "collect").unwrap_or_default(),
        };
        a.finish(r);
        out
    });
    let expect = t
        .table(r, "expect")
        .map(|e| read_expect(r, e))
        .unwrap_or_default();
    let scenario = Scenario {
        name: name?,
        tags: t.get(r, "tags").unwrap_or_default(),
        service: t.get(r, "service"),
        services: t.get(r, "services"),
        run: t.get(r, "run"),
        run_written: t.has("run"),
        steps,
        timeout_ms: t.get(r, "timeout_ms"),
        priority: t.get(r, "priority"),
        concurrent: t.get(r, "concurrent"),
        retries: t.get(r, "retries"),
        artifacts,
        expect,
        span: t.anchor(),
    };
    t.finish(r);
    Some(scenario)
}

fn read_step(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Step> {
    // Every key is read (and unknown ones reported) before a missing or broken required
    // one makes the step unusable: the validator reports every problem.
    let name = t.req(r, "name", "\"step\"");
    // A step runs a `command` or sends an `http` request; one of them is required.
    // (`entry` marks `http` known, so that a typo of it gets a "did you mean".)
    let http = t.entry("http").is_some().then(|| read_http(r, &mut t));
    let command: Option<Option<Sp<Vec<Sp<String>>>>> = match (t.has("command"), &http) {
        (true, _) => Some(t.get(r, "command")),
        (false, Some(_)) => None,
        (false, None) => Some(t.req(r, "command", "[\"echo\", \"hi\"]")),
    };
    let expected_status = match t.entry("expected_status") {
        Some((_, v)) => read_status_codes(r, v, &format!("{}.expected_status", t.path())),
        None => None,
    };
    let expected_body_regex = t.get(r, "expected_body_regex");
    let expected_json = t.map(r, "expected_json", |_, v, _| {
        Some(reader::to_toml_value(v.get_ref()))
    });
    let service = t.get(r, "service");
    let expected_exit_code = t.get(r, "expected_exit_code");
    let expected_output_regex = t.get(r, "expected_output_regex");
    let workdir = t.get(r, "workdir");
    let env = t.map(r, "env", FromToml::from_toml);
    let continue_on_failure = t.get(r, "continue_on_failure");
    let timeout_ms = t.get(r, "timeout_ms");
    let capture = t.map(r, "capture", read_capture);
    let snapshot = t.get(r, "snapshot");
    let retry = t.table(r, "retry").and_then(|mut rt| {
        let attempts = rt.req(r, "attempts", "3");
        let interval_ms = rt.get(r, "interval_ms");
        rt.finish(r);
        Some(Retry {
            attempts: attempts?,
            interval_ms,
        })
    });
    let span = t.anchor();
    t.finish(r);
    Some(Step {
        name: name?,
        command: match command {
            Some(c) => Some(c?),
            None => None,
        },
        http: match http {
            Some(h) => Some(h?),
            None => None,
        },
        expected_status,
        expected_body_regex,
        expected_json,
        service,
        expected_exit_code,
        expected_output_regex,
        workdir,
        env,
        continue_on_failure,
        timeout_ms,
        capture,
        snapshot,
        retry,
        span,
    })
}

/// A step's `http` table.
fn read_http(r: &mut Reader<'_>, step: &mut Table<'_, '_>) -> Option<HttpRequest> {
    let mut h = step.table(r, "http")?;
    let json = h
        .entry("json")
        .map(|(_, v)| Sp::new(reader::to_toml_value(v.get_ref()), v.span().into()));
    let url = h.req(r, "url", "\"http://app:8080/\"");
    let out = HttpRequest {
        method: h.get(r, "method"),
        url: url?,
        headers: h.map(r, "headers", FromToml::from_toml),
        body: h.get(r, "body"),
        json,
        timeout_ms: h.get(r, "timeout_ms"),
        span: h.anchor(),
    };
    h.finish(r);
    Some(out)
}

/// `expected_status`: a status code or a non-empty list of them.
fn read_status_codes(
    r: &mut Reader<'_>,
    v: &Spanned<DeValue<'_>>,
    path: &str,
) -> Option<Sp<Vec<Sp<u16>>>> {
    let span: Span = v.span().into();
    let one = |r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str| {
        u16::from_toml(r, v, path).map(|c| Sp::new(c, v.span().into()))
    };
    match v.get_ref() {
        DeValue::Array(items) if !items.is_empty() => {
            let codes: Vec<Option<Sp<u16>>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| one(r, item, &format!("{path}[{i}]")))
                .collect();
            codes
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|c| Sp::new(c, span))
        }
        DeValue::Array(_) => {
            r.error(
                Code::BadValue,
                span,
                format!("`{path}` lists no status code"),
                "expected a code such as 201, or a list such as [200, 204]",
            );
            None
        }
        _ => one(r, v, path).map(|c| Sp::new(vec![c], span)),
    }
}

/// One entry of a step's `capture`: `{ json = "$.id" }` or `{ regex = "...", from = "stderr" }`.
fn read_capture(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Capture> {
    let span: Span = v.span().into();
    let DeValue::Table(inner) = v.get_ref() else {
        r.error(
            Code::WrongType,
            span,
            format!("`{path}` must be a table"),
            "expected { json = \"$.id\" } or { regex = \"id=(\\\\d+)\" }",
        );
        return None;
    };
    let mut t = Table::new(inner, span, path);
    let says = t.entry("json").is_some() || t.entry("regex").is_some();
    let out = Capture {
        json: t.get(r, "json"),
        regex: t.get(r, "regex"),
        from: t.get(r, "from"),
        says,
        span,
    };
    t.finish(r);
    Some(out)
}

fn read_expect(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Expect {
    let logs = t
        .tables(r, "log")
        .into_iter()
        .filter_map(|mut l| {
            let service = l.req(r, "service", "\"app\"");
            let out = LogExpect {
                service: service?,
                contains: l.get(r, "contains"),
                regex: l.get(r, "regex"),
                absent: l.get(r, "absent"),
                span: l.anchor(),
            };
            l.finish(r);
            Some(out)
        })
        .collect();
    let spans = t
        .tables(r, "span")
        .into_iter()
        .filter_map(|s| read_span_expect(r, s))
        .collect();
    let windows = t
        .tables(r, "window")
        .into_iter()
        .filter_map(|mut w| {
            let outer = w.req(r, "outer", "\"span-name\"");
            let contains = w.req(r, "contains", "[\"child\"]");
            let span = w.anchor();
            w.finish(r);
            Some(WindowExpect {
                outer: outer?,
                contains: contains?,
                span,
            })
        })
        .collect();
    let graph = t.table(r, "graph").map(|mut g| {
        let out = GraphExpect {
            must_include: pairs(r, &mut g, "must_include"),
            must_not_cross: pairs(r, &mut g, "must_not_cross"),
            acyclic: g.get(r, "acyclic"),
        };
        g.finish(r);
        out
    });
    let counts = t.table(r, "counts").map(|mut c| {
        let out = CountsExpect {
            spans_total: c.table(r, "spans_total").map(|t| read_count(r, t)),
            events_total: c.table(r, "events_total").map(|t| read_count(r, t)),
            errors_total: c.table(r, "errors_total").map(|t| read_count(r, t)),
            by_name: {
                let map = c.map(r, "by_name", |r, v, p| match v.get_ref() {
                    DeValue::Table(inner) => {
                        Some(read_count(r, Table::new(inner, v.span().into(), p)))
                    }
                    _ => {
                        r.error(
                            Code::WrongType,
                            v.span().into(),
                            format!("`{p}` must be a table"),
                            "expected { eq, gte, lte }",
                        );
                        None
                    }
                });
                pattern_keys(map)
            },
        };
        c.finish(r);
        out
    });
    let order = t.table(r, "order").map(|mut o| {
        let out = OrderExpect {
            must_precede: pairs(r, &mut o, "must_precede"),
            must_follow: pairs(r, &mut o, "must_follow"),
        };
        o.finish(r);
        out
    });
    let status = t.table(r, "status").map(|mut s| {
        let out = StatusExpect {
            all: {
                let path = format!("{}.all", s.path());
                s.entry("all").and_then(|(_, v)| read_statuses(r, v, &path))
            },
            by_name: {
                let map = s.map(r, "by_name", keyword_value);
                pattern_keys(map)
            },
        };
        s.finish(r);
        out
    });
    let hermeticity = t.table(r, "hermeticity").map(|mut h| {
        let resource_attrs = h.table(r, "resource_attrs").map(|mut ra| {
            let out = ResourceAttrs {
                must_match: ra.map(r, "must_match", FromToml::from_toml),
            };
            ra.finish(r);
            out
        });
        let span_attrs = h.table(r, "span_attrs").map(|mut sa| {
            let out = SpanAttrs {
                forbid_keys: sa.get(r, "forbid_keys").unwrap_or_default(),
            };
            sa.finish(r);
            out
        });
        let out = HermeticityExpect {
            no_external_services: h.get(r, "no_external_services"),
            resource_attrs,
            span_attrs,
            allow_hosts: h.get(r, "allow_hosts").unwrap_or_default(),
        };
        h.finish(r);
        out
    });
    t.finish(r);
    Expect {
        spans,
        graph,
        counts,
        windows,
        order,
        status,
        hermeticity,
        logs,
    }
}

fn read_count(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Count {
    let c = Count {
        eq: t.get(r, "eq"),
        gte: t.get(r, "gte"),
        lte: t.get(r, "lte"),
    };
    t.finish(r);
    c
}

/// The map with its keys read as span-name patterns.
fn pattern_keys<V>(map: SpMap<V>) -> SpMap<V, NamePattern> {
    let entries = map
        .entries
        .into_iter()
        .map(|(k, v)| (Sp::new(NamePattern::new(&k.value), k.span), v))
        .collect();
    SpMap { entries }
}

fn pairs(r: &mut Reader<'_>, t: &mut Table<'_, '_>, key: &'static str) -> Vec<Sp<Pair>> {
    let Some(list): Option<Vec<Sp<Vec<Sp<NamePattern>>>>> = t.get(r, key) else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|item| match <[Sp<NamePattern>; 2]>::try_from(item.value) {
            Ok(pair) => Some(Sp::new(Pair(pair), item.span)),
            Err(v) => {
                r.error(
                    Code::BadValue,
                    item.span,
                    format!("`{}.{key}` entries must be pairs of span names", t.path()),
                    format!("expected [\"a\", \"b\"], found {} names", v.len()),
                );
                None
            }
        })
        .collect()
}

fn read_span_expect(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<SpanExpect> {
    let name = t.req(r, "name", "\"span-name\"");
    let attrs = t.table(r, "attrs").map(|mut a| {
        let all = a.map(r, "all", FromToml::from_toml);
        let any = match a.entry("any") {
            Some((_, v)) => read_attrs_any(r, v, &format!("{}.any", a.path())),
            None => SpMap::default(),
        };
        a.finish(r);
        AttrsExpect { all, any }
    });
    let events = t.table(r, "events").map(|mut e| {
        let out = EventsExpect {
            all: e.get(r, "all").unwrap_or_default(),
            any: e.get(r, "any").unwrap_or_default(),
        };
        e.finish(r);
        out
    });
    let duration_ms = t.table(r, "duration_ms").map(|mut d| {
        let out = Bounds {
            min: d.get(r, "min"),
            max: d.get(r, "max"),
        };
        d.finish(r);
        out
    });
    let out = SpanExpect {
        name: name?,
        parent: t.get(r, "parent"),
        kind: t.keyword(r, "kind"),
        attrs,
        events,
        duration_ms,
        span: t.anchor(),
    };
    t.finish(r);
    Some(out)
}

/// `attrs.any` is a table, or a list of `"k=v"` strings.
fn read_attrs_any(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> SpMap<Sp<Scalar>> {
    match v.get_ref() {
        DeValue::Table(inner) => {
            Table::new(inner, v.span().into(), path).map_entries(r, FromToml::from_toml)
        }
        DeValue::Array(_) => {
            let items: Vec<Sp<String>> = FromToml::from_toml(r, v, path).unwrap_or_default();
            let mut out = SpMap::default();
            for item in items {
                match item.value.split_once('=') {
                    Some((k, val)) if !k.trim().is_empty() => out.entries.push((
                        Sp::new(k.trim().to_owned(), item.span),
                        Sp::new(Scalar::String(val.trim().to_owned()), item.span),
                    )),
                    _ => r.error(
                        Code::BadValue,
                        item.span,
                        format!("`{path}` entries must look like \"key=value\""),
                        "no `=` here",
                    ),
                }
            }
            out
        }
        _ => {
            r.error(
                Code::WrongType,
                v.span().into(),
                format!("`{path}` must be a table or a list of \"k=v\""),
                "expected a table",
            );
            SpMap::default()
        }
    }
}

fn read_legacy(r: &mut Reader<'_>, mut root: Table<'_, '_>) -> Option<TestFile> {
    let mut name = None;
    let mut description = None;
    let mut anchor = Span::new(0, 0);
    if let Some(mut test) = root.table(r, "test") {
        anchor = test.anchor();
        if let Some(mut md) = test.table(r, "metadata") {
            anchor = md.anchor();
            name = md.req(r, "name", "\"my-test\"");
            description = md.get(r, "description");
            let _: Option<Sp<String>> = md.get(r, "version");
            let _: Option<Sp<String>> = md.get(r, "timeout");
            md.finish(r);
        } else {
            r.error(
                Code::MissingKey,
                anchor,
                "legacy file is missing [test.metadata]",
                "expected [test.metadata] with `name`",
            );
        }
        test.finish(r);
    }
    r.push(
        Diagnostic::warning(Code::Legacy, "legacy test format; migrate to schema v0.6")
            .at(r.src, anchor, "legacy layout read as one scenario")
            .help(
                "rename [test.metadata] to [meta] and add `version`, rename [services.<id>] to [service.<id>] \
                 with `plugin` instead of `type`, and move [[steps]] under a [[scenario]] as [[scenario.steps]]",
            ),
    );
    let services = read_services(r, &mut root, "services", "type");
    let steps: Vec<Step> = root
        .tables(r, "steps")
        .into_iter()
        .filter_map(|s| read_step(r, s))
        .collect();
    let rest = read_common(r, &mut root);
    root.finish(r);
    let name: Sp<String> = name?;
    if steps.is_empty() {
        r.error(
            Code::NoScenario,
            anchor,
            "legacy file has no [[steps]]",
            "expected at least one [[steps]] table",
        );
    }
    let scenario = Scenario {
        name: name.clone(),
        tags: Vec::new(),
        service: None,
        services: None,
        run: None,
        run_written: false,
        steps,
        timeout_ms: None,
        priority: None,
        concurrent: None,
        retries: None,
        artifacts: None,
        expect: Expect::default(),
        span: name.span,
    };
    let meta = Meta {
        name: name.clone(),
        version: Sp::new("legacy".to_owned(), name.span),
        description,
    };
    Some(TestFile {
        meta,
        scenarios: vec![scenario],
        services,
        legacy: true,
        ..rest
    })
}
