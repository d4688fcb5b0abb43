//! The diff engine: unit cases and properties (identity, invariance under new ids,
//! times and sibling order, and exact precision and recall for single mutations).

use super::*;
use crate::model::{SpanKind, StatusCode};
use crate::otel::{AttrValue, SpanRecord};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn span(id: usize, parent: Option<usize>, name: &str, attrs: &[(&str, &str)]) -> SpanRecord {
    SpanRecord {
        trace_id: "t".into(),
        span_id: format!("s{id}"),
        parent_span_id: parent.map(|p| format!("s{p}")),
        name: name.into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: id as u64 * 1000,
        end_time_unix_nano: id as u64 * 1000 + 500,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttrValue::Str((*v).to_owned())))
            .collect(),
        events: Vec::new(),
        links: Vec::new(),
        status: StatusCode::Ok,
        status_message: String::new(),
        resource: BTreeMap::new(),
        scope: String::new(),
    }
}

fn tree(spans: &[SpanRecord]) -> SpanTree {
    SpanTree::from_spans(spans, &Normalize::new(true, &[]))
}

fn counts(a: &[SpanRecord], b: &[SpanRecord]) -> Counts {
    diff(&tree(a), &tree(b), Compare::default()).counts()
}

fn sample() -> Vec<SpanRecord> {
    vec![
        span(0, None, "root", &[]),
        span(1, Some(0), "http", &[("route", "/a"), ("code", "200")]),
        span(2, Some(0), "http", &[("route", "/b"), ("code", "200")]),
        span(3, Some(1), "db", &[("op", "select")]),
    ]
}

#[test]
fn one_changed_attribute_among_same_named_siblings_is_one_change() {
    let mut b = sample();
    b[2].attributes
        .insert("code".into(), AttrValue::Str("500".into()));
    let d = diff(&tree(&sample()), &tree(&b), Compare::default());
    assert_eq!(
        d.counts(),
        Counts {
            changed: 1,
            missing: 0,
            extra: 0
        }
    );
    let text = render_tree(
        &d,
        Display {
            only_diffs: true,
            max_depth: 10,
        },
    );
    assert_eq!(
        text,
        "  ✓ root (internal)\n    ✏️ http (internal)  code: \"200\" → \"500\"\n"
    );
}

#[test]
fn missing_and_extra_subtrees_are_reported_once_each() {
    let mut b = sample();
    b.remove(3);
    b.push(span(9, Some(2), "cache", &[]));
    let d = diff(&tree(&sample()), &tree(&b), Compare::default());
    assert_eq!(
        d.counts(),
        Counts {
            changed: 0,
            missing: 1,
            extra: 1
        }
    );
    let text = render_tree(
        &d,
        Display {
            only_diffs: false,
            max_depth: 10,
        },
    );
    assert!(text.contains("❌ db (internal)"), "{text}");
    assert!(text.contains("➕ cache (internal)"), "{text}");
    assert!(text.contains("✓ root"), "{text}");
}

#[test]
fn kind_and_status_changes_pair_by_name() {
    let mut b = sample();
    b[3].kind = SpanKind::Client;
    b[1].status = StatusCode::Error;
    let d = diff(&tree(&sample()), &tree(&b), Compare::default());
    assert_eq!(
        d.counts(),
        Counts {
            changed: 2,
            missing: 0,
            extra: 0
        }
    );
    let text = render_tree(
        &d,
        Display {
            only_diffs: true,
            max_depth: 10,
        },
    );
    assert!(text.contains("kind: internal → client"), "{text}");
    assert!(text.contains("status: OK → ERROR"), "{text}");
}

#[test]
fn ignored_attributes_and_timestamps_do_not_count() {
    let mut b = sample();
    b[1].attributes
        .insert("request.id".into(), AttrValue::Str("x-123".into()));
    for s in &mut b {
        s.start_time_unix_nano += 77;
        s.end_time_unix_nano += 999_999;
    }
    let n = Normalize::new(true, &["request.*".to_owned()]);
    let d = diff(
        &SpanTree::from_spans(&sample(), &n),
        &SpanTree::from_spans(&b, &n),
        Compare::default(),
    );
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn durations_are_compared_only_when_asked_and_beyond_the_threshold() {
    let n = Normalize::new(false, &[]);
    let mut b = sample();
    b[3].end_time_unix_nano += 5_000_000; // 0.5 ms → 5.5 ms
    b[1].end_time_unix_nano += 100; // a little
    let (ta, tb) = (
        SpanTree::from_spans(&sample(), &n),
        SpanTree::from_spans(&b, &n),
    );
    assert!(diff(&ta, &tb, Compare::default()).is_empty());
    let d = diff(
        &ta,
        &tb,
        Compare {
            durations: Some(0.5),
        },
    );
    assert_eq!(
        d.counts(),
        Counts {
            changed: 1,
            missing: 0,
            extra: 0
        }
    );
}

#[test]
fn baselines_round_trip_as_stable_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trace.json");
    let mut b = Baseline::load(&path).expect("missing is empty");
    b.scenarios.insert("f::s".into(), tree(&sample()));
    b.save(&path).expect("save");
    let first = std::fs::read_to_string(&path).expect("read");
    let back = Baseline::load(&path).expect("load");
    assert_eq!(back, b);
    back.save(&path).expect("save again");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        first,
        "stable bytes"
    );
    std::fs::write(&path, "{\"format\": \"other\", \"scenarios\": {}}").expect("write");
    assert!(Baseline::load(&path).is_err());
    std::fs::write(&path, "not json").expect("write");
    assert!(Baseline::load(&path).is_err());
}

/// A random tree: span i > 0 has a parent among 0..i; names and attributes from small sets.
fn random_spans() -> impl Strategy<Value = Vec<SpanRecord>> {
    prop::collection::vec((0usize..1000, 0usize..4, 0usize..3, 0usize..3), 1..40).prop_map(
        |nodes| {
            nodes
                .iter()
                .enumerate()
                .map(|(i, (p, name, a, b))| {
                    let parent = (i > 0).then(|| p % i);
                    let attrs = [("a", ["x", "y", "z"][*a]), ("b", ["1", "2", "3"][*b])];
                    span(i, parent, &format!("n{name}"), &attrs)
                })
                .collect()
        },
    )
}

fn descendants(spans: &[SpanRecord], root: usize) -> Vec<usize> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let id = format!("s{}", out[i]);
        for (j, s) in spans.iter().enumerate() {
            if s.parent_span_id.as_deref() == Some(id.as_str()) {
                out.push(j);
            }
        }
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_tree_has_no_diff_with_itself(spans in random_spans()) {
        prop_assert!(counts(&spans, &spans).is_empty());
    }

    #[test]
    fn new_ids_times_and_sibling_order_make_no_diff(spans in random_spans(), shift in 1u64..1_000_000, seed in any::<u64>()) {
        let mut other = spans.clone();
        for s in &mut other {
            s.span_id = format!("new-{}", s.span_id);
            s.parent_span_id = s.parent_span_id.as_ref().map(|p| format!("new-{p}"));
            s.trace_id = "another-trace".into();
            s.start_time_unix_nano += shift;
            s.end_time_unix_nano += shift * 3;
        }
        // A deterministic shuffle.
        let n = other.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
            other.swap(i, j);
        }
        prop_assert!(counts(&spans, &other).is_empty());
    }

    #[test]
    fn a_dropped_subtree_is_exactly_one_missing(spans in random_spans(), pick in any::<usize>()) {
        prop_assume!(spans.len() > 1);
        let k = 1 + pick % (spans.len() - 1);
        let gone = descendants(&spans, k);
        let kept: Vec<SpanRecord> = spans.iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, s)| s.clone()).collect();
        prop_assert_eq!(counts(&spans, &kept), Counts { changed: 0, missing: 1, extra: 0 });
    }

    #[test]
    fn an_added_subtree_is_exactly_one_extra(spans in random_spans(), pick in any::<usize>()) {
        let k = pick % spans.len();
        let mut more = spans.clone();
        let n = spans.len();
        more.push(span(n, Some(k), "added", &[("a", "x")]));
        more.push(span(n + 1, Some(n), "added-child", &[]));
        prop_assert_eq!(counts(&spans, &more), Counts { changed: 0, missing: 0, extra: 1 });
    }

    #[test]
    fn a_changed_attribute_is_exactly_one_change(spans in random_spans(), pick in any::<usize>()) {
        let k = pick % spans.len();
        let mut changed = spans.clone();
        changed[k].attributes.insert("a".into(), AttrValue::Str("changed".into()));
        let d = diff(&tree(&spans), &tree(&changed), Compare::default());
        prop_assert_eq!(d.counts(), Counts { changed: 1, missing: 0, extra: 0 });
    }

    #[test]
    fn a_renamed_span_is_one_missing_and_one_extra(spans in random_spans(), pick in any::<usize>()) {
        let k = pick % spans.len();
        let mut renamed = spans.clone();
        renamed[k].name = "renamed".into();
        prop_assert_eq!(counts(&spans, &renamed), Counts { changed: 0, missing: 1, extra: 1 });
    }
}
