//! The spans of a scenario's latest run, saved under `.clnrm/artifacts/` for later
//! stages (`clnrm diff`). One file per scenario, `<sanitised id>-<hash>.spans.json`:
//!
//! ```json
//! { "format": "clnrm.spans.v1", "scenario": "tests/a.clnrm.toml::smoke",
//!   "run_id": "5527fdcef48d", "spans": [ { "trace_id": "…", "span_id": "…",
//!   "parent_span_id": "…", "name": "…", "kind": "server", "start_time_unix_nano": 1,
//!   "end_time_unix_nano": 2, "attributes": {…}, "events": […], "status": "OK",
//!   "resource": {…}, "scope": "…" } ] }
//! ```
//!
//! Written through a temporary file and a rename, so a reader never sees half a file.

use super::span::SpanRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The value of `format` in every artifact.
pub const FORMAT: &str = "clnrm.spans.v1";

/// A saved artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpansArtifact {
    /// [`FORMAT`].
    pub format: String,
    /// Scenario id.
    pub scenario: String,
    /// The run that collected them.
    pub run_id: String,
    /// The spans, in arrival order.
    pub spans: Vec<SpanRecord>,
    /// What the run that collected them concluded; `None` in an artifact of an older
    /// clnrm.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Values that were the scenario's own containers (id, host name, address) →
    /// the service id each stands for: a baseline stores the service id instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identities: BTreeMap<String, String>,
}

/// The outcome of the run that saved an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `passed`, `failed`, `error`, `flaky`.
    pub status: String,
    /// Why it did not pass (`diff`, `expectation`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Verdict {
    /// Whether its tree may become the baseline: it passed, or failed only because
    /// its tree is not the baseline's (accepting a new tree is what recording is for).
    pub fn recordable(&self) -> bool {
        self.status == "passed"
            || (self.status == "failed" && self.reason.as_deref() == Some("diff"))
    }
}

/// What is saved beside the spans.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// The run's verdict.
    pub verdict: Option<Verdict>,
    /// Container identities → service ids.
    pub identities: BTreeMap<String, String>,
}

/// A [`SpansArtifact`] to write, borrowing its spans.
#[derive(Serialize)]
struct SpansArtifactRef<'a> {
    format: &'a str,
    scenario: &'a str,
    run_id: &'a str,
    spans: &'a [SpanRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a Verdict>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    identities: &'a BTreeMap<String, String>,
}

/// Where the artifact of `scenario` lives under `dir`.
pub fn artifact_path(dir: &Path, scenario: &str) -> PathBuf {
    dir.join(format!("{}.spans.json", artifact_stem(scenario)))
}

/// Where the artifact of `scenario`'s run before the latest is kept under `dir` (for
/// `clnrm expect`, which keeps what two runs agree on).
pub fn previous_path(dir: &Path, scenario: &str) -> PathBuf {
    dir.join(format!("{}.spans.prev.json", artifact_stem(scenario)))
}

/// Where the log of `service` in `scenario` is saved under `dir`.
pub fn log_path(dir: &Path, scenario: &str, service: &str) -> PathBuf {
    dir.join(format!(
        "{}.{}.log",
        artifact_stem(scenario),
        sanitised(service, 60)
    ))
}

/// `scenario`'s id made a file name: sanitised, shortened, and kept unique by a hash.
fn artifact_stem(scenario: &str) -> String {
    let hash = crate::digest::hex(&Sha256::digest(scenario.as_bytes())[..4]);
    format!("{}-{hash}", sanitised(scenario, 80))
}

fn sanitised(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// Saves the spans of `scenario`.
pub fn save(
    dir: &Path,
    scenario: &str,
    run_id: &str,
    spans: &[SpanRecord],
) -> std::io::Result<PathBuf> {
    save_with(dir, scenario, run_id, spans, &Meta::default())
}

/// Saves the spans of `scenario` with the run's verdict and identities.
pub fn save_with(
    dir: &Path,
    scenario: &str,
    run_id: &str,
    spans: &[SpanRecord],
    meta: &Meta,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = artifact_path(dir, scenario);
    let doc = SpansArtifactRef {
        format: FORMAT,
        scenario,
        run_id,
        spans,
        verdict: meta.verdict.as_ref(),
        identities: &meta.identities,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // Streamed to the file: a large set of spans is never a second time in memory as text.
    let written = std::fs::File::create(&tmp).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, &doc).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut w)
    });
    // Once the new one is written, the latest is kept as the previous one: linked (or
    // copied) to a temporary name and renamed over it, so that the latest stays in
    // place until the new one replaces it in one rename, and no reader ever finds
    // none. A latest without spans is not kept: the previous one stays the last run
    // that had some (what `clnrm expect` compares with).
    let keep_previous = || {
        if holds_no_spans(&path) {
            return Ok(());
        }
        let staged = tmp.with_extension(format!("prev{}", std::process::id()));
        let linked = std::fs::hard_link(&path, &staged)
            .or_else(|_| std::fs::copy(&path, &staged).map(|_| ()));
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(()) => std::fs::rename(&staged, previous_path(dir, scenario)).inspect_err(|_| {
                let _ = std::fs::remove_file(&staged);
            }),
        }
    };
    if let Err(e) = written
        .and_then(|()| keep_previous())
        .and_then(|()| std::fs::rename(&tmp, &path))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// Whether the artifact at `path` is one without spans (a small file, read only
/// then: without spans, only its identities make it larger than a few hundred
/// bytes; one that cannot be read is taken as holding some).
fn holds_no_spans(path: &Path) -> bool {
    const SMALL: u64 = 64 << 10;
    std::fs::metadata(path).is_ok_and(|m| m.len() < SMALL)
        && load_from(path).is_ok_and(|a| a.is_some_and(|a| a.spans.is_empty()))
}

/// Loads the artifact of `scenario`, if there is one.
pub fn load(dir: &Path, scenario: &str) -> std::io::Result<Option<SpansArtifact>> {
    load_from(&artifact_path(dir, scenario))
}

/// Loads the artifact of `scenario`'s run before the latest, if it was kept.
pub fn load_previous(dir: &Path, scenario: &str) -> std::io::Result<Option<SpansArtifact>> {
    load_from(&previous_path(dir, scenario))
}

fn load_from(path: &Path) -> std::io::Result<Option<SpansArtifact>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::parse_line;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spans = parse_line(r#"{"name":"a","trace_id":"t","span_id":"s","attributes":{"n":1,"x":"y"},"status":"OK","kind":"server"}"#)
            .expect("span");
        let id = "tests/a b.clnrm.toml::smoke/1";
        let path = save(dir.path(), id, "run1", &spans).expect("save");
        assert!(path.file_name().is_some_and(|n| {
            n.to_string_lossy()
                .starts_with("tests_a_b.clnrm.toml__smoke_1-")
        }));
        let back = load(dir.path(), id).expect("load").expect("present");
        assert_eq!(back.spans, spans);
        assert_eq!(back.format, FORMAT);
        assert!(load(dir.path(), "other").expect("load").is_none());
        // A second save keeps the first as the previous run.
        assert!(load_previous(dir.path(), id).expect("load").is_none());
        save(dir.path(), id, "run2", &spans).expect("save");
        assert_eq!(
            load(dir.path(), id).expect("load").expect("present").run_id,
            "run2"
        );
        let prev = load_previous(dir.path(), id).expect("load").expect("kept");
        assert_eq!(prev.run_id, "run1");
        // A run without spans is the latest, and is not kept as the previous one:
        // that stays the last run with spans.
        save(dir.path(), id, "run3", &[]).expect("save");
        assert_eq!(
            load(dir.path(), id).expect("load").expect("present").run_id,
            "run3"
        );
        let prev = load_previous(dir.path(), id).expect("load").expect("kept");
        assert_eq!(prev.run_id, "run2");
        save(dir.path(), id, "run4", &spans).expect("save");
        let prev = load_previous(dir.path(), id).expect("load").expect("kept");
        assert_eq!(prev.run_id, "run2");
        save(dir.path(), id, "run5", &spans).expect("save");
        let prev = load_previous(dir.path(), id).expect("load").expect("kept");
        assert_eq!(prev.run_id, "run4");
        // Nothing temporary is left beside them.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
