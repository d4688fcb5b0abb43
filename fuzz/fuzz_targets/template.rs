//! A template and a file it may include or import (itself, too): rendering with the
//! recursion and nesting bounds, and reading what it renders to. The input is the
//! template, a NUL byte, and the included file `part.tera`.
#![no_main]

use clnrm_core::diag::Source;
use clnrm_core::template::{TemplateEngine, VarLayers};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static DIR: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("a temporary directory"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (main, part) = text.split_once('\0').unwrap_or((text, ""));
    let root = DIR.path();
    if std::fs::write(root.join("part.tera"), part).is_err() {
        return;
    }
    let path = root.join("t.clnrm.toml.tera");
    let mut engine = TemplateEngine::new(root);
    let src = Source::file("t.clnrm.toml.tera", main);
    if let Ok(rendered) = engine.render(&src, &path, &VarLayers::default()) {
        let _ = clnrm_core::model::parse_test_file(&rendered.source);
    }
});
