//! Reading the legacy layout (`[test.metadata]`, `[services.<id>]` with `type`,
//! top-level `[[steps]]`) as one scenario, with a warning that says how to migrate.

use super::common::read_common;
use super::service::read_services;
use super::step::read_step;
use crate::diag::{Code, Diagnostic, Span};
use crate::model::reader::{Reader, Table};
use crate::model::{Expect, Meta, Scenario, Sp, Step, TestFile};

pub(super) fn read_legacy(r: &mut Reader<'_>, mut root: Table<'_, '_>) -> Option<TestFile> {
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
