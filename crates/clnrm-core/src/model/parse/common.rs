//! Reading the top-level tables that the current and the legacy layout share:
//! `[vars]`, `[determinism]`, `[otel]`, `[expect]`, `[limits]`, `[report]` and
//! `[snapshot]` (which the config reads too).

use super::expect::read_expect;
use super::otel::read_otel;
use crate::diag::{Code, Span};
use crate::model::reader::{self, FromToml, Reader, Table};
use crate::model::{
    Content, Determinism, Limits, Meta, ReportPaths, SnapshotTable, Sp, SpMap, TestFile,
};

/// The tables shared by the current and the legacy layout.
pub(super) fn read_common(r: &mut Reader<'_>, root: &mut Table<'_, '_>) -> TestFile {
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
        .retain(|(k, _)| match crate::model::compiled::compile(&k.value) {
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
