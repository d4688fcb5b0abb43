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
