//! The diff engine's figures for README's performance table: normalising and diffing
//! two 100,000-span trees that differ in 1% of their spans (target: diff < 1 s), and a
//! typical 50-span trace. Run with `cargo bench -p clnrm-core --bench diff_trees`.

use clnrm_core::diff::{Compare, Normalize, SpanTree, diff};
use clnrm_core::model::{SpanKind, StatusCode};
use clnrm_core::otel::{AttrValue, SpanRecord};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A trace of `n` spans: a root, `n / 100` request spans, each with 99 children of 8 names.
fn trace(n: usize) -> Vec<SpanRecord> {
    let mut spans = Vec::with_capacity(n);
    let span = |id: usize,
                parent: Option<usize>,
                name: String,
                attrs: BTreeMap<String, AttrValue>| SpanRecord {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: format!("{id:016x}"),
        parent_span_id: parent.map(|p| format!("{p:016x}")),
        name,
        kind: SpanKind::Internal,
        start_time_unix_nano: id as u64 * 1_000,
        end_time_unix_nano: id as u64 * 1_000 + 500,
        attributes: attrs,
        events: Vec::new(),
        links: Vec::new(),
        status: StatusCode::Ok,
        status_message: String::new(),
        resource: BTreeMap::new(),
        scope: String::new(),
    };
    let attrs = |i: usize| {
        BTreeMap::from([
            (
                "http.route".to_owned(),
                AttrValue::Str(format!("/items/{}", i % 97)),
            ),
            ("http.status_code".to_owned(), AttrValue::Int(200)),
            ("item.index".to_owned(), AttrValue::Int(i as i64)),
        ])
    };
    spans.push(span(0, None, "root".into(), BTreeMap::new()));
    let requests = (n / 100).max(1);
    for r in 0..requests {
        let rid = spans.len();
        spans.push(span(rid, Some(0), "http.request".into(), attrs(r)));
        for c in 0..99 {
            if spans.len() >= n {
                break;
            }
            let id = spans.len();
            spans.push(span(id, Some(rid), format!("op.{}", c % 8), attrs(c)));
        }
    }
    spans.truncate(n);
    spans
}

/// Changes one attribute in every 100th span (1%).
fn mutate(spans: &[SpanRecord]) -> Vec<SpanRecord> {
    let mut out = spans.to_vec();
    for (i, s) in out.iter_mut().enumerate() {
        if i % 100 == 37 {
            s.attributes
                .insert("http.status_code".into(), AttrValue::Int(500));
        }
    }
    out
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..5).map(|_| f()).collect();
    v.sort();
    v[2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = Normalize::new(true, &[]);
    for size in [100_000, 50] {
        let a = trace(size);
        let b = mutate(&a);
        let normalise = median(|| {
            let t = Instant::now();
            let _ = SpanTree::from_spans(&a, &n);
            t.elapsed()
        });
        let (ta, tb) = (SpanTree::from_spans(&a, &n), SpanTree::from_spans(&b, &n));
        let mut changed = 0;
        let compare = median(|| {
            let t = Instant::now();
            let d = diff(&ta, &tb, Compare::default());
            let e = t.elapsed();
            changed = d.counts().changed;
            e
        });
        println!(
            "{size:>7} spans, {changed} changed: normalise {:.2} ms per tree, diff {:.2} ms (median of 5)",
            normalise.as_secs_f64() * 1e3,
            compare.as_secs_f64() * 1e3
        );
    }
}
