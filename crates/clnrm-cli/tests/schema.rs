//! The JSON Schema (`schemas/clnrm.schema.json`, what editors check files with)
//! agrees with `clnrm validate`: every file `validate --deny-warnings` accepts (the
//! examples, templates as `clnrm render` writes them) the schema accepts too, checked
//! with a maintained validator (the `jsonschema` crate); and a value of a key whose
//! words match in any case is accepted, or refused, by both alike.
mod common;
#[path = "common/schema.rs"]
mod schema;

use common::{clnrm, project};
use schema::{schema_errors, validator};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `validate --deny-warnings` accepts the file; its rendered text.
fn accepted(dir: &Path, file: &str) -> String {
    let out = clnrm(dir)
        .args(["validate", "--deny-warnings", file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validate refuses {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if file.ends_with(".tera") {
        let out = clnrm(dir).args(["render", file]).output().unwrap();
        assert!(out.status.success(), "render {file}");
        String::from_utf8(out.stdout).unwrap()
    } else {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }
}

#[test]
fn every_example_validate_accepts_the_schema_accepts() {
    let v = validator();
    let mut seen = 0;
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".clnrm.toml") || n.ends_with(".clnrm.toml.tera"))
        .collect();
    files.sort();
    let mut refused = Vec::new();
    for name in files {
        let file = format!("examples/{name}");
        let text = accepted(&root(), &file);
        for e in schema_errors(&v, &text) {
            refused.push(format!("{file}: {e}"));
        }
        seen += 1;
    }
    assert!(
        refused.is_empty(),
        "the schema refuses what validate accepts:\n{}",
        refused.join("\n")
    );
    assert!(seen >= 7, "{seen} examples");
}

#[test]
fn status_words_in_any_case_are_accepted_by_both_and_other_words_by_neither() {
    let v = validator();
    let file = |status: &str| {
        format!(
            "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n\
             [[scenario]]\nname = \"s\"\nrun = \"true\"\n\n[expect.status]\nall = \"{status}\"\n"
        )
    };
    let validate = |word: &str| {
        let dir = project(&[("t.clnrm.toml", &file(word))]);
        let out = clnrm(dir.path())
            .args(["validate", "t.clnrm.toml"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for word in ["OK", "ok", "Ok", "error", "UNSET"] {
        let (code, err) = validate(word);
        assert_eq!(code, Some(0), "validate accepts {word:?}: {err}");
        assert_eq!(
            schema_errors(&v, &file(word)),
            Vec::<String>::new(),
            "{word}"
        );
    }
    for word in ["okay", "fine", ""] {
        let (code, err) = validate(word);
        assert_eq!(code, Some(2), "validate refuses {word:?}: {err}");
        assert!(
            !schema_errors(&v, &file(word)).is_empty(),
            "the schema refuses {word:?}"
        );
    }
}

/// A file of one service and one scenario, with `extra` TOML appended (or, where
/// `extra` starts with `!`, the scenario's `run` line replaced by it).
fn case(extra: &str) -> String {
    let head = "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"s\"\nservice = \"app\"\n";
    match extra.strip_prefix('!') {
        Some(instead) => format!("{head}{instead}\n"),
        None => format!("{head}run = \"true\"\n\n{extra}\n"),
    }
}

/// Files both `validate --deny-warnings` and the schema refuse, one mistake each.
const REFUSED: &[(&str, &str)] = &[
    ("unknown key", "[otel]\nexportr = \"otlp\""),
    ("unknown word", "[otel]\nexporter = \"zipkin\""),
    ("wrong type", "[[expect.span]]\nname = 5"),
    ("string for integer", "!run = \"true\"\ntimeout_ms = \"10\""),
    ("negative count", "!run = \"true\"\nretries = -1"),
    (
        "port out of range",
        "[service.db]\nimage = \"i\"\nports = [70000]",
    ),
    ("missing image", "[service.db]\nargs = [\"x\"]"),
    (
        "missing of",
        "[[expect.per_span]]\ndescendants = \"q\"\ncount = { lte = 1 }",
    ),
    (
        "span kind",
        "[[expect.span]]\nname = \"a\"\nkind = \"serverside\"",
    ),
    (
        "condition",
        "[service.db]\nimage = \"i\"\ndepends_on = { app = \"ready\" }",
    ),
    ("status word", "[expect.status]\nall = [\"OK\", \"BAD\"]"),
    (
        "step without name",
        "!run = \"true\"\n[[scenario.steps]]\ncommand = [\"true\"]",
    ),
    (
        "table for list",
        "[service.db]\nimage = \"i\"\nargs = { a = 1 }",
    ),
];

/// Files both accept, in the forms the format allows.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "status in any case and a list",
        "[expect.status]\nall = [\"ok\", \"Unset\"]",
    ),
    (
        "depends_on as a list",
        "[service.db]\nimage = \"i\"\ndepends_on = [\"app\"]",
    ),
    (
        "depends_on as a map",
        "[service.db]\nimage = \"i\"\nentrypoint = []\ndepends_on = { app = \"started\" }",
    ),
    (
        "expected_status forms",
        "![[scenario.steps]]\nname = \"a\"\nhttp = { url = \"http://app:80/\" }\nexpected_status = 204\n[[scenario.steps]]\nname = \"b\"\nhttp = { url = \"http://app:80/\" }\nexpected_status = [200, 404]",
    ),
    (
        "attrs.any as pairs",
        "[[expect.span]]\nname = \"a\"\nattrs.any = [\"k=v\"]",
    ),
];

/// Taplo, the TOML toolkit editors use (from PyPI, installed by the set-up command).
fn taplo_refuses(dir: &Path, file: &str) -> bool {
    let taplo = root().join("target/tools/taplo/bin/taplo");
    assert!(
        taplo.exists(),
        "{} is missing: run scripts/setup.sh (it installs taplo)",
        taplo.display()
    );
    let schema = format!(
        "file://{}",
        std::fs::canonicalize(root().join("schemas/clnrm.schema.json"))
            .unwrap_or_else(|e| panic!("{e}"))
            .display()
    );
    let out = std::process::Command::new(taplo)
        .args(["check", "--schema", &schema, file])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("taplo: {e}"));
    !out.status.success()
}

#[test]
fn validate_the_json_schema_and_taplo_agree_both_ways() {
    let v = validator();
    for (refused, cases) in [(true, REFUSED), (false, ACCEPTED)] {
        for (what, extra) in cases {
            let text = case(extra);
            let dir = project(&[("t.clnrm.toml", &text)]);
            let out = clnrm(dir.path())
                .args(["validate", "--deny-warnings", "t.clnrm.toml"])
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            let verdicts = (
                out.status.code() == Some(2),
                !schema_errors(&v, &text).is_empty(),
                taplo_refuses(dir.path(), "t.clnrm.toml"),
            );
            assert_eq!(
                verdicts,
                (refused, refused, refused),
                "{what}: (validate, the schema, taplo) refuse it: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn taplo_accepts_every_example_as_rendered() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).unwrap_or_else(|e| panic!("{e}")) {
        let name = entry
            .unwrap_or_else(|e| panic!("{e}"))
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !(name.ends_with(".clnrm.toml") || name.ends_with(".clnrm.toml.tera")) {
            continue;
        }
        let text = accepted(&root(), &format!("examples/{name}"));
        let out = format!(
            "{}.toml",
            name.trim_end_matches(".tera").trim_end_matches(".toml")
        );
        std::fs::write(dir.path().join(&out), text).unwrap_or_else(|e| panic!("{e}"));
        names.push(out);
    }
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        assert!(
            !taplo_refuses(dir.path(), &name),
            "taplo refuses examples/{name}"
        );
    }
}
