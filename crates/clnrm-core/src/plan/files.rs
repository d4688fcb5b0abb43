//! The files of a plan: each as shown and on disk, with the report files its
//! `[report]` table names resolved from its directory.

use crate::validate::CheckedFile;
use std::path::PathBuf;

/// A file whose scenarios are planned.
#[derive(Clone, Debug)]
pub struct PlannedFile {
    /// As shown to users.
    pub display: String,
    /// On disk.
    pub path: PathBuf,
    /// `[report] json`, resolved.
    pub report_json: Option<PathBuf>,
    /// `[report] junit`, resolved.
    pub report_junit: Option<PathBuf>,
    /// `[report] digest`, resolved.
    pub report_digest: Option<PathBuf>,
}

impl PlannedFile {
    /// `cf` as planned: its `[report]` paths resolved from its directory.
    pub(super) fn of(cf: &CheckedFile) -> Self {
        let base = cf.path.parent().map(PathBuf::from).unwrap_or_default();
        let report = cf.file.as_ref().and_then(|f| f.report.as_ref());
        let resolve = |p: Option<&crate::model::Sp<String>>| p.map(|v| base.join(&v.value));
        Self {
            display: cf.display.clone(),
            path: cf.path.clone(),
            report_json: resolve(report.and_then(|r| r.json.as_ref())),
            report_junit: resolve(report.and_then(|r| r.junit.as_ref())),
            report_digest: resolve(report.and_then(|r| r.digest.as_ref())),
        }
    }

    /// The report files its `[report]` table names.
    pub fn reports(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.report_json, &self.report_junit, &self.report_digest]
            .into_iter()
            .flatten()
    }
}

/// The report files the `[report]` table of `cf` names (resolved from its directory).
pub fn report_files(cf: &CheckedFile) -> Vec<PathBuf> {
    PlannedFile::of(cf).reports().cloned().collect()
}
