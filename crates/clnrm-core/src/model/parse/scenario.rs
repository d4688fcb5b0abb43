//! Reading a `[[scenario]]` table: its keys, its steps and its own expectations.

use super::expect::read_expect;
use super::step::read_step;
use crate::model::reader::{Reader, Table};
use crate::model::{Artifacts, Scenario};

pub(super) fn read_scenario(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Option<Scenario> {
    let name = t.req(r, "name", "\"smoke\"");
    let steps = t
        .tables(r, "steps")
        .into_iter()
        .filter_map(|s| read_step(r, s))
        .collect();
    let artifacts = t.table(r, "artifacts").map(|mut a| {
        let out = Artifacts {
            collect: a.get(r, "collect").unwrap_or_default(),
        };
        a.finish(r);
        out
    });
    let expect = t
        .table(r, "expect")
        .map(|e| read_expect(r, e))
        .unwrap_or_default();
    let scenario = Scenario {
        name: name?,
        tags: t.get(r, "tags").unwrap_or_default(),
        service: t.get(r, "service"),
        services: t.get(r, "services"),
        run: t.get(r, "run"),
        run_written: t.has("run"),
        steps,
        timeout_ms: t.get(r, "timeout_ms"),
        priority: t.get(r, "priority"),
        concurrent: t.get(r, "concurrent"),
        retries: t.get(r, "retries"),
        artifacts,
        expect,
        span: t.anchor(),
    };
    t.finish(r);
    Some(scenario)
}
