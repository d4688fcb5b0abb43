//! Dry-run validation: load → render (templates) → parse → rules, for many files at
//! once on a bounded pool of threads (files are independent). No containers, no
//! async: this stage is pure CPU and file reads.

mod load;
mod rules;

pub use load::{MAX_FILE_BYTES, load};
pub use rules::check;

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
}

/// Validates one file with a reusable engine.
pub fn check_file(
    engine: &mut TemplateEngine,
    path: &Path,
    display: &str,
    vars: &VarLayers,
) -> CheckedFile {
    let mut out = CheckedFile {
        path: path.to_path_buf(),
        display: display.to_owned(),
        source: None,
        rendered: None,
        file: None,
        diagnostics: Vec::new(),
        dependencies: Vec::new(),
    };
    let source = match load(path, display) {
        Ok(s) => s,
        Err(d) => {
            out.diagnostics.push(d);
            return out;
        }
    };
    out.source = Some(source.clone());
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
        check(f, &rendered, &mut diags);
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

/// Validates `paths` in parallel; results are in the order of `paths`.
pub fn check_files(paths: &[PathBuf], root: &Path, opts: &ValidateOptions) -> Vec<CheckedFile> {
    let threads = if opts.threads == 0 {
        num_cpus::get()
    } else {
        opts.threads
    }
    .clamp(1, paths.len().max(1));
    let next = AtomicUsize::new(0);
    let display = |p: &Path| {
        let rel = p.strip_prefix(root).unwrap_or(p);
        rel.strip_prefix(".").unwrap_or(rel).display().to_string()
    };
    let mut results: Vec<(usize, CheckedFile)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut engine = TemplateEngine::new(root);
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break };
                        done.push((i, check_file(&mut engine, path, &display(path), &opts.vars)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, f)| f).collect()
}
