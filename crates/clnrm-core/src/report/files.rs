//! Report files: `report.json`, `junit.xml`, `report.md` and `report.html` in a run's
//! report directory, and each file's `[report]` paths with that file's results. Every file
//! is written through a temporary file and a rename, so a reader never sees half of it.

use super::html::{SpanSource, to_html};
use super::{RunReport, to_digest, to_json, to_junit, to_markdown};
use crate::plan::PlannedFile;
use std::path::Path;

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    /// The file (or the directory that could not be made).
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Writes the run's reports into `dir` (if any; `report.html` with the spans of
/// `spans`) and each file's `[report]` paths.
pub fn write_reports(
    report: &RunReport,
    dir: Option<&Path>,
    files: &[PlannedFile],
    spans: &SpanSource<'_>,
) -> Result<(), WriteError> {
    if let Some(dir) = dir {
        write(
            &dir.join("report.json"),
            &format!("{:#}\n", to_json(report)),
        )?;
        write(&dir.join("junit.xml"), &to_junit(report))?;
        write(&dir.join("report.md"), &to_markdown(report))?;
        write(&dir.join("report.html"), &to_html(report, spans))?;
    }
    for (i, f) in files.iter().enumerate() {
        let mine = report.of_file(i);
        if let Some(p) = &f.report_json {
            write(p, &format!("{:#}\n", to_json(&mine)))?;
        }
        if let Some(p) = &f.report_junit {
            write(p, &to_junit(&mine))?;
        }
        if let Some(p) = &f.report_digest {
            write(p, &to_digest(&mine, &f.display))?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write(path: &Path, text: &str) -> Result<(), WriteError> {
    let fail = |p: &Path, source| WriteError {
        path: p.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(path, e)
        })
}
