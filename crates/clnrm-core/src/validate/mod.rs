//! Dry-run validation: load → render (templates) → parse → rules, for many files at
//! once on a bounded pool of threads (files are independent). No containers, no
//! async: this stage is pure CPU and file reads.

mod captures;
mod ctx;
mod cycles;
mod dependencies;
mod determinism;
mod expectations;
mod grpc;
mod host;
mod http;
mod load;
mod otel;
mod rules;
mod scenarios;
mod services;
mod steps;

pub use host::HostPaths;
pub use load::{MAX_FILE_BYTES, load};
pub use rules::check;
pub use scenarios::MAX_RETRIES;

use crate::diag::{Diagnostic, Severity, Source};
use crate::model::{TestFile, parse_test_file};
use crate::template::{TemplateEngine, VarLayers, attach_template_origin, is_template};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file after validation.
#[derive(Debug)]
pub struct CheckedFile {
    /// Path on disk.
    pub path: PathBuf,
    /// Path as shown to users (relative to the project root).
    pub display: String,
    /// The file as written (the template, for templates).
    pub source: Option<Arc<Source>>,
    /// The TOML that was parsed (rendered output for templates).
    pub rendered: Option<Arc<Source>>,
    /// The model, when the file could be read at all.
    pub file: Option<TestFile>,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Templates this file imports, includes or extends.
    pub dependencies: Vec<PathBuf>,
}

impl CheckedFile {
    /// Whether the file has an error (warnings count when `deny_warnings`).
    pub fn is_invalid(&self, deny_warnings: bool) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.is_error() || (deny_warnings && d.severity == Severity::Warning))
    }
}

/// Options for a validation pass.
#[derive(Clone, Debug, Default)]
pub struct ValidateOptions {
    /// Template variables other than the file's own.
    pub vars: VarLayers,
    /// Worker threads; 0 means the number of CPUs.
    pub threads: usize,
    /// The calling thread has a stack of [`RENDER_STACK`]: one worker runs on it
    /// instead of on a thread of its own (spawning one costs more than validating a
    /// small file, which the runs service does for every submission).
    pub on_caller: bool,
}

/// Validates one file with a reusable engine.
pub fn check_file(
    engine: &mut TemplateEngine,
    path: &Path,
    display: &str,
    vars: &VarLayers,
    host: &HostPaths,
) -> CheckedFile {
    match load(path, display) {
        Ok(source) => check_source(engine, path, source, vars, host),
        Err(d) => CheckedFile {
            path: path.to_path_buf(),
            display: display.to_owned(),
            source: None,
            rendered: None,
            file: None,
            diagnostics: vec![*d],
            dependencies: Vec::new(),
        },
    }
}

/// Validates `source`, the text of the file at `path` (which an editor may not have
/// saved): a template is rendered as if it were there.
pub fn check_source(
    engine: &mut TemplateEngine,
    path: &Path,
    source: Arc<Source>,
    vars: &VarLayers,
    host: &HostPaths,
) -> CheckedFile {
    let mut out = CheckedFile {
        path: path.to_path_buf(),
        display: source.name().to_owned(),
        source: Some(source.clone()),
        rendered: None,
        file: None,
        diagnostics: Vec::new(),
        dependencies: Vec::new(),
    };
    let rendered = if is_template(path) {
        match engine.render(&source, path, vars) {
            Ok(r) => {
                out.dependencies = r.dependencies;
                r.source
            }
            Err(diags) => {
                out.diagnostics = diags;
                return out;
            }
        }
    } else {
        source
    };
    let (file, mut diags) = parse_test_file(&rendered);
    if let Some(f) = &file {
        let base = path.parent().unwrap_or(Path::new("."));
        check(f, &rendered, host, base, &mut diags);
    }
    let mut origins = None;
    out.diagnostics = diags.into_sorted();
    for d in &mut out.diagnostics {
        attach_template_origin(d, &mut origins);
    }
    out.rendered = Some(rendered);
    out.file = file;
    out
}

/// Stack of a validation thread. Rendering and parsing recurse natively; their depth
/// is bounded (see `template::MAX_DEPTH`), and this leaves a wide margin (only the
/// pages used are ever committed).
pub const RENDER_STACK: usize = 16 * 1024 * 1024;

/// The result of a file whose check panicked.
fn crashed(path: &Path, display: &str, panic: &(dyn std::any::Any + Send)) -> CheckedFile {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    let d = Diagnostic::error(
        crate::diag::Code::Internal,
        format!("clnrm failed while checking this file (a bug; please report it): {why}"),
    )
    .in_file(display);
    CheckedFile {
        path: path.to_path_buf(),
        display: display.to_owned(),
        source: None,
        rendered: None,
        file: None,
        diagnostics: vec![d],
        dependencies: Vec::new(),
    }
}

/// Validates `paths` in parallel; results are in the order of `paths`.
pub fn check_files(paths: &[PathBuf], root: &Path, opts: &ValidateOptions) -> Vec<CheckedFile> {
    let threads = if opts.threads == 0 {
        crate::cpus()
    } else {
        opts.threads
    }
    .clamp(1, paths.len().max(1));
    let next = AtomicUsize::new(0);
    let host = HostPaths::new(root);
    let display = |p: &Path| {
        let rel = p.strip_prefix(root).unwrap_or(p);
        rel.strip_prefix(".").unwrap_or(rel).display().to_string()
    };
    let mut results: Vec<(usize, CheckedFile)> = std::thread::scope(|scope| {
        let work = || {
            let mut engine = TemplateEngine::new(root);
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let shown = display(path);
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    check_file(&mut engine, path, &shown, &opts.vars, &host)
                }));
                done.push((
                    i,
                    checked.unwrap_or_else(|panic| {
                        // A bug, but the file must not vanish from the run: it is invalid.
                        engine = TemplateEngine::new(root);
                        crashed(path, &shown, panic.as_ref())
                    }),
                ));
            }
            done
        };
        if threads == 1 && opts.on_caller {
            return work();
        }
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(RENDER_STACK)
                    .spawn_scoped(scope, work)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h {
                Ok(h) => h.join().unwrap_or_default(),
                // No thread: this thread does the work itself.
                Err(_) => work(),
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, f)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn validate_text(text: &str) -> Vec<Diagnostic> {
        let src = Source::file("p.clnrm.toml", text);
        let (file, mut diags) = parse_test_file(&src);
        if let Some(f) = &file {
            check(f, &src, &HostPaths::default(), Path::new("/t"), &mut diags);
        }
        diags.into_sorted()
    }

    const HEAD: &str = "[meta]\nname = \"t\"\nversion = \"1\"\n[service.a]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\n";

    /// Each diagnostic's code and the source text its label points at.
    fn codes(text: &str) -> Vec<(String, String)> {
        validate_text(text)
            .iter()
            .map(|d| {
                let at = d
                    .primary
                    .as_ref()
                    .map_or("", |l| &text[l.span.start..l.span.end]);
                (d.code.to_string(), at.to_owned())
            })
            .collect()
    }

    /// Each diagnostic's code, the text its label points at and its help, for `text`
    /// read as a file in `base`.
    fn codes_in(base: &Path, text: &str) -> Vec<(String, String, Option<String>)> {
        let src = Source::file("p.clnrm.toml", text);
        let (file, mut diags) = parse_test_file(&src);
        if let Some(f) = &file {
            check(f, &src, &HostPaths::default(), base, &mut diags);
        }
        diags
            .into_sorted()
            .iter()
            .map(|d| {
                let at = d
                    .primary
                    .as_ref()
                    .map_or("", |l| &text[l.span.start..l.span.end]);
                (d.code.to_string(), at.to_owned(), d.help.clone())
            })
            .collect()
    }

    #[test]
    fn a_grpc_step_is_checked_where_each_thing_is_written() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("g.proto"),
            "syntax = \"proto3\";\npackage p;\nmessage R { string name = 1; }\nservice S { rpc Get(R) returns (R); }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("bad.proto"),
            "syntax = \"proto3\";\nmessage {\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let step = |grpc: &str, extra: &str| {
            format!("{HEAD}[[scenario.steps]]\nname = \"c\"\ngrpc = {grpc}\n{extra}")
        };
        let at = |text: &str| -> Vec<(String, String)> {
            codes_in(dir.path(), text)
                .into_iter()
                .map(|(code, at, _)| (code, at))
                .collect()
        };
        let pair = |c: &str, t: &str| (c.to_owned(), t.to_owned());
        // Right: nothing to say.
        let ok = step(
            r#"{ target = "a:50051", method = "p.S/Get", json = { name = "x" }, proto = ["g.proto"] }"#,
            "expected_grpc_status = \"NOT_FOUND\"\nexpected_json = { \"$.name\" = \"x\" }\n",
        );
        assert_eq!(at(&ok), Vec::<(String, String)>::new());
        // The method, the request's field, a missing file and one that does not compile.
        let text = step(
            r#"{ target = "a:50051", method = "p.S/Gte", proto = ["g.proto"] }"#,
            "",
        );
        assert_eq!(at(&text), vec![pair("E0120", "\"p.S/Gte\"")]);
        let text = step(
            r#"{ target = "a:50051", method = "p.S/Get", json = { nmae = "x" }, proto = ["g.proto"] }"#,
            "",
        );
        assert_eq!(at(&text), vec![pair("E0120", "{ nmae = \"x\" }")]);
        let text = step(
            r#"{ target = "a:50051", method = "p.S/Get", proto = ["none.proto"] }"#,
            "",
        );
        assert_eq!(at(&text), vec![pair("E0120", "\"none.proto\"")]);
        let text = step(
            r#"{ target = "a:50051", method = "p.S/Get", proto = ["bad.proto"] }"#,
            "",
        );
        let found = codes_in(dir.path(), &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "\"bad.proto\"");
        // The target, the status, metadata gRPC sets, both kinds of step in one.
        let text = step(
            r#"{ target = "b:50051", method = "p.S/Get", metadata = { "grpc-timeout" = "1S" } }"#,
            "expected_grpc_status = \"NOPE\"\ncommand = [\"true\"]\nexpected_exit_code = 1\n",
        );
        let mut got = at(&text);
        got.sort();
        let mut want = vec![
            pair("E0102", "\"b:50051\""),
            pair("E0120", "\"NOPE\""),
            pair("E0120", "\"grpc-timeout\""),
            pair("E0123", "[\"true\"]"),
            pair("E0120", "1"),
        ];
        want.sort();
        assert_eq!(got, want);
        let text = step(r#"{ target = "a", method = "Get" }"#, "");
        let mut got = at(&text);
        got.sort();
        assert_eq!(got, vec![pair("E0120", "\"Get\""), pair("E0120", "\"a\"")]);
        // A capture in the target, `env` on a call, an empty `proto`, a JSONPath that
        // does not parse.
        let text = step(
            r#"{ target = "${host}:1", method = "p.S/Get", proto = [] }"#,
            "env = { A = \"1\" }\nexpected_json = { \"$.a[\" = 1 }\n",
        );
        let mut got: Vec<String> = at(&text)
            .into_iter()
            .map(|(c, t)| format!("{c} {t}"))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                "E0120 \"$.a[\"".to_owned(),
                "E0120 \"${host}:1\"".to_owned(),
                "E0120 A".to_owned(),
                "E0120 []".to_owned(),
                "E0122 ${host}".to_owned(),
            ]
        );
        // `expected_grpc_status` belongs to a `grpc` step.
        let text = format!(
            "{HEAD}[[scenario.steps]]\nname = \"c\"\ncommand = [\"true\"]\nexpected_grpc_status = 0\n"
        );
        assert_eq!(at(&text), vec![pair("E0120", "0")]);
    }

    #[test]
    fn a_build_needs_a_context_with_its_dockerfile_and_a_target_among_its_stages() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let app = dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            app.join("Dockerfile"),
            "FROM clnrm/busybox:latest AS base\nFROM base AS tests\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let file = |service: &str| {
            format!(
                "[meta]\nname = \"t\"\nversion = \"1\"\n{service}\n[[scenario]]\nname = \"s\"\nservice = \"a\"\nrun = \"true\"\n"
            )
        };
        let check = |service: &str| codes_in(dir.path(), &file(service));
        assert_eq!(check("[service.a]\nbuild = \"./app\""), Vec::new());
        assert_eq!(
            check("[service.a.build]\ncontext = \"app\"\ntarget = \"tests\"\nargs = { V = \"1\" }"),
            Vec::new()
        );
        let found = check("[service.a.build]\ncontext = \"app\"\ntarget = \"test\"");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0124", "\"test\"")
        );
        assert_eq!(found[0].2.as_deref(), Some("did you mean \"tests\"?"));
        let found = check("[service.a]\nbuild = \"./nope\"");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0124", "\"./nope\"")
        );
        let found = check("[service.a.build]\ncontext = \"app\"\ndockerfile = \"Containerfile\"");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0124", "\"Containerfile\"")
        );
        let found = check("[service.a.build]\ncontext = \"app\"\ndockerfile = \"../Dockerfile\"");
        assert_eq!(found[0].0, "E0124");
        let found = check("[service.a]\nimage = \"i\"\nbuild = \"./app\"");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0123", "\"i\"")
        );
        let found = check("[service.a]\nports = [80]");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0101", "a"),
            "{found:?}"
        );
        let found = check("[service.a]\nbuild = 3");
        assert_eq!(found[0].0, "E0103");
        let found = check("[service.a.build]\ndockerfile = \"D\"");
        assert_eq!(
            found[0].0, "E0101",
            "a build table needs its context: {found:?}"
        );
    }

    #[test]
    fn develop_rules_need_a_build_a_path_inside_its_context_and_a_target_to_sync_to() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let check = |service: &str| {
            codes_in(
                dir.path(),
                &format!(
                    "[meta]\nname = \"t\"\nversion = \"1\"\n{service}\n[[scenario]]\nname = \"s\"\nservice = \"a\"\nrun = \"true\"\n"
                ),
            )
        };
        let good = "[service.a]\nbuild = \".\"\n[service.a.develop]\nwatch = [\n  { path = \"src\", action = \"sync\", target = \"/app/src\" },\n  { path = \"requirements.txt\", action = \"rebuild\" },\n  { path = \"conf\", action = \"sync+restart\", target = \"/etc/app\" },\n]";
        assert_eq!(check(good), Vec::new());
        let found = check("[service.a]\nimage = \"i\"\n[service.a.develop]\nwatch = []");
        assert_eq!(found[0].0, "E0124", "{found:?}");
        let found = check(
            "[service.a]\nbuild = \".\"\ndevelop = { watch = [{ path = \"../x\", action = \"rebuild\" }] }",
        );
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0124", "\"../x\"")
        );
        let found = check(
            "[service.a]\nbuild = \".\"\ndevelop = { watch = [{ path = \"src\", action = \"sync\" }] }",
        );
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0101", "\"sync\"")
        );
        let found = check(
            "[service.a]\nbuild = \".\"\ndevelop = { watch = [{ path = \"src\", action = \"sync\", target = \"app\" }] }",
        );
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("E0120", "\"app\"")
        );
        let found = check(
            "[service.a]\nbuild = \".\"\ndevelop = { watch = [{ path = \"src\", action = \"copy\" }] }",
        );
        assert_eq!(found[0].0, "E0104", "{found:?}");
    }

    #[test]
    fn braces_and_brackets_in_span_names_are_literal_not_errors() {
        for tail in [
            "[[expect.span]]\nname = \"GET /orders/{id}\"\nparent = \"p[\"\n",
            "[expect.order]\nmust_precede = [[\"a\", \"b[\"]]\n",
            "[expect.status]\nby_name = { \"s[\" = \"OK\" }\n",
            "[expect.hermeticity.span_attrs]\nforbid_keys = [\"k[\"]\n",
        ] {
            let text = format!("{HEAD}run = \"true\"\n{tail}");
            assert_eq!(codes(&text), Vec::new(), "{text}");
        }
    }

    #[test]
    fn a_scenarios_own_expectations_are_validated_like_the_files() {
        let text = format!(
            "{HEAD}run = \"true\"\n[scenario.expect.counts]\nspans_total = {{ gte = 3, lte = 1 }}\n[scenario.expect.order]\nmust_precede = [[\"a\", \"b\"], [\"b\", \"a\"]]\n"
        );
        let found: Vec<String> = codes(&text).into_iter().map(|(c, _)| c).collect();
        assert_eq!(found, vec!["E0112", "E0113"], "{text}");
    }

    #[test]
    fn an_unreadable_run_is_one_error_not_also_nothing_to_run() {
        let found = codes(&format!("{HEAD}run = \"echo 'x\"\n"));
        assert_eq!(found, vec![("E0111".to_owned(), "'".to_owned())]);
        let found = codes(&format!("{HEAD}run = \"  \"\n"));
        assert_eq!(found, vec![("E0116".to_owned(), "\"  \"".to_owned())]);
    }

    /// Lines drawn from the format's own vocabulary, so that generated files reach deep
    /// into the reader and the rules, not only the TOML parser.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[meta]".to_owned()),
            Just("[[scenario]]".to_owned()),
            Just("[[scenario.steps]]".to_owned()),
            Just("[service.a]".to_owned()),
            Just("[[expect.span]]".to_owned()),
            Just("[expect.order]".to_owned()),
            Just("[[expect.window]]".to_owned()),
            Just("[expect.counts.spans_total]".to_owned()),
            Just("[otel]".to_owned()),
            (
                prop::sample::select(vec![
                    "name",
                    "version",
                    "service",
                    "run",
                    "command",
                    "image",
                    "ports",
                    "must_precede",
                    "outer",
                    "contains",
                    "gte",
                    "lte",
                    "min",
                    "max",
                    "sample_ratio",
                    "kind",
                    "all"
                ]),
                prop::sample::select(vec![
                    "\"a\"",
                    "\"b\"",
                    "1",
                    "-1",
                    "2.5",
                    "true",
                    "[]",
                    "[\"x\"]",
                    "[[\"a\",\"b\"],[\"b\",\"a\"]]",
                    "\"echo 'x\"",
                    "\"(\"",
                    "{ min = 5, max = 1 }",
                    "[80, 80]",
                    "\"server\""
                ]),
            )
                .prop_map(|(k, v)| format!("{k} = {v}")),
            "[ -~]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn validation_never_panics_on_arbitrary_text(text in "(?s).{0,200}") {
            let _ = validate_text(&text);
        }

        #[test]
        fn validation_never_panics_on_format_shaped_text(lines in prop::collection::vec(line(), 0..30)) {
            let diags = validate_text(&lines.join("\n"));
            for d in diags {
                if let Some(l) = &d.primary {
                    prop_assert!(l.span.start <= l.span.end && l.span.end <= l.source.text().len());
                }
            }
        }

        #[test]
        fn validation_is_deterministic(lines in prop::collection::vec(line(), 0..20)) {
            let text = lines.join("\n");
            let a: Vec<String> = validate_text(&text).iter().map(|d| format!("{}{:?}", d.message, d.primary.as_ref().map(|l| l.span))).collect();
            let b: Vec<String> = validate_text(&text).iter().map(|d| format!("{}{:?}", d.message, d.primary.as_ref().map(|l| l.span))).collect();
            prop_assert_eq!(a, b);
        }
    }
}
