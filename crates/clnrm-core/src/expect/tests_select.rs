//! Selectors and predicates (SPEC §15): each criterion both ways, `count`, `absent`,
//! `each`, `[[expect.per_span]]`, events and links, what a failure says, and the
//! engine against a straightforward reference matcher on generated traces.

use super::tests::{one, span, unmet};
use super::*;
use crate::model::{Predicate, Selector};
use crate::otel::{AttrValue, SpanRecord};
use proptest::prelude::*;

#[test]
fn selectors_pick_by_service_status_attributes_parent_ancestor_and_duration() {
    let u = unmet(
        r#"[[expect.span]]
service = "pay"
kind = "client"
status = "ERROR"
attrs = { "db.system" = { in = ["postgresql", "mysql"] } }
parent = { name = "charge", kind = "client" }
ancestor = { kind = "server", attrs = { "http.status_code" = { gte = 200, lt = 300 } } }
duration_ms = { lt = 20 }

[[expect.span]]
name = "root"
attrs = { route = { regex = "^/pa" }, "http.status_code" = { ne = 500 }, missing = { exists = false } }

[[expect.span]]
name = "charge"
attrs = { amount = { exists = true }, route = { exists = false } }
count = { eq = 1 }
"#,
    );
    assert!(u.is_empty(), "{u:#?}");
}

#[test]
fn count_absent_and_each_say_how_many_matched_and_which_failed() {
    let m = one("[[expect.span]]\nservice = \"pay\"\nkind = \"client\"\ncount = { eq = 1 }\n");
    assert!(
        m.contains("expected {kind client, service \"pay\"}: matching spans == 1"),
        "{m}"
    );
    assert!(m.contains("found 2: span \"charge\""), "{m}");

    let m = one("[[expect.span]]\nname = \"db.*\"\nabsent = true\n");
    assert!(
        m.contains("expected no span \"db.*\"; found 1 matching: span \"db.query\""),
        "{m}"
    );
    assert!(unmet("[[expect.span]]\nservice = \"inventory\"\nabsent = true\n").is_empty());

    let u = unmet("[[expect.span]]\nservice = \"pay\"\neach = { status = \"OK\" }\n");
    assert_eq!(u.len(), 1, "{u:#?}");
    assert_eq!(u[0].what, "[[expect.span]] {service \"pay\"} each");
    assert_eq!(u[0].matched, Some(4));
    assert_eq!(u[0].near.len(), 1);
    assert!(
        u[0].found
            .contains("1 of 4 do not: span \"db.query\" (kind client, status ERROR"),
        "{}",
        u[0].found
    );
    assert!(
        u[0].found.contains("status: expected OK, found ERROR"),
        "{}",
        u[0].found
    );
    // `each` with nothing matched is the default check's failure, not a pass.
    let u = unmet("[[expect.span]]\nservice = \"inventory\"\neach = { status = \"OK\" }\n");
    assert_eq!(u.len(), 1, "{u:#?}");
    assert_eq!(u[0].matched, Some(0));
}

#[test]
fn a_failure_lists_the_closest_spans_with_each_failed_predicate() {
    let u = unmet("[[expect.span]]\nkind = \"client\"\nattrs = { amount = { gt = 5000 } }\n");
    assert_eq!(u.len(), 1, "{u:#?}");
    let f = &u[0].found;
    assert!(
        f.starts_with("none of the 4 spans matches; closest: "),
        "{f}"
    );
    // "charge" has the attribute (a string) and the kind: its one miss is the type.
    assert!(
        f.contains("span \"charge\" (kind client, status OK, 30.0 ms, attrs {amount=\"1299\"}): attribute \"amount\": expected > 5000, found \"1299\" (a string, not a number)"),
        "{f}"
    );
    assert_eq!(u[0].near.len(), 3);
    assert_eq!(u[0].near[0].span_id, "c");
    assert_eq!(u[0].near[0].misses.len(), 1);
}

#[test]
fn per_span_counts_descendants_under_each_span() {
    let m = one(
        "[[expect.per_span]]\nof = { kind = \"server\" }\ndescendants = { kind = \"client\" }\ncount = { lte = 1 }\n",
    );
    assert!(
        m.contains("expected under each span {kind server}: {kind client} descendants <= 1"),
        "{m}"
    );
    assert!(
        m.contains("found 1 of 1 spans do not: \"root\" (span r) has 2 (charge, db.query)"),
        "{m}"
    );
    assert!(
        unmet("[[expect.per_span]]\nof = \"charge\"\ndescendants = \"db.*\"\ncount = { eq = 1 }\n")
            .is_empty()
    );
    // Nothing to check under is a failure, not a pass.
    let m =
        one("[[expect.per_span]]\nof = \"GET /none\"\ndescendants = \"x\"\ncount = { lte = 1 }\n");
    assert!(m.contains("no span named \"GET /none\""), "{m}");
}

/// A consumer linked to its producer; an exception event with its type.
fn messaging() -> Vec<SpanRecord> {
    vec![
        span("produce", "p", "", 0, 10, r#""kind":"producer""#),
        span(
            "consume",
            "k",
            "",
            20,
            30,
            r#""kind":"consumer","links":[{"trace_id":"t","span_id":"p","attributes":{"messaging.operation":"receive"}}],"events":[{"name":"exception","time_unix_nano":25,"attributes":{"exception.type":"ValueError","exception.message":"bad order"}}]"#,
        ),
    ]
}

fn check_messaging(e: &str) -> Vec<Unmet> {
    check(&super::tests::set(e), &messaging())
}

#[test]
fn links_and_events_with_attributes_hold_both_ways() {
    assert!(
        check_messaging(
            r#"[[expect.span]]
name = "consume"
links = [{ to = { kind = "producer" }, attrs = { "messaging.operation" = "receive" } }]
events = [{ name = "exception", attrs = { "exception.type" = "ValueError" } }, { name = "retry", absent = true }]

[[expect.span]]
name = "produce"
links = [{ absent = true }]
"#
        )
        .is_empty()
    );
    let u = check_messaging(
        "[[expect.span]]\nname = \"consume\"\nlinks = [{ to = \"other\" }]\nevents = [{ name = \"exception\", attrs = { \"exception.type\" = \"KeyError\" } }]\n",
    );
    assert_eq!(u.len(), 1, "{u:#?}");
    let f = &u[0].found;
    assert!(
        f.contains("links: expected link to \"other\", found a link to \"produce\""),
        "{f}"
    );
    assert!(
        f.contains("events: expected event \"exception\" with exception.type = \"KeyError\", found event \"exception\" with exception.type \"ValueError\""),
        "{f}"
    );
    let u = check_messaging(
        "[[expect.span]]\nname = \"consume\"\nevents = [{ name = \"exception\", absent = true }]\n",
    );
    assert!(u[0].found.contains("found event \"exception\" {exception.message=\"bad order\", exception.type=\"ValueError\"}"), "{:?}", u[0]);
}

#[test]
fn selectors_work_where_names_did_graph_window_order() {
    assert!(
        unmet(
            r#"[expect.graph]
must_include = [[{ kind = "server" }, { attrs = { amount = { exists = true } } }]]
must_not_cross = [[{ name = "auth" }, { kind = "client" }]]

[[expect.window]]
outer = { kind = "server" }
contains = [{ status = "ERROR" }, "auth"]

[expect.order]
must_precede = [["auth", { name = "charge", kind = "client" }]]
"#
        )
        .is_empty()
    );
    let m = one("[expect.graph]\nmust_include = [[\"auth\", { kind = \"client\" }]]\n");
    assert!(
        m.contains("expected an edge \"auth\" → {kind client}"),
        "{m}"
    );
}

// The engine against a reference: the same selection by a direct reading of each
// criterion (ancestors by walking parent ids, no memo, no index).

#[derive(Clone, Debug)]
enum GenSel {
    Leaf {
        name: Option<&'static str>,
        kind: Option<crate::model::SpanKind>,
        x: Option<(u8, i64)>,
    },
    Parent(Box<GenSel>, Box<GenSel>),
    Ancestor(Box<GenSel>, Box<GenSel>),
}

fn leaf() -> impl Strategy<Value = GenSel> {
    use crate::model::SpanKind;
    (
        prop::option::of(prop::sample::select(vec!["a", "b", "c*"])),
        prop::option::of(prop::sample::select(vec![
            SpanKind::Server,
            SpanKind::Client,
        ])),
        prop::option::of((0u8..4, 0i64..5)),
    )
        .prop_map(|(name, kind, x)| GenSel::Leaf { name, kind, x })
}

fn gen_sel() -> impl Strategy<Value = GenSel> {
    leaf().prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (leaf(), inner.clone()).prop_map(|(a, b)| GenSel::Parent(Box::new(a), Box::new(b))),
            (leaf(), inner).prop_map(|(a, b)| GenSel::Ancestor(Box::new(a), Box::new(b))),
        ]
    })
}

fn toml_of(g: &GenSel) -> String {
    match g {
        GenSel::Leaf { name, kind, x } => {
            let mut parts = Vec::new();
            if let Some(n) = name {
                parts.push(format!("name = \"{n}\""));
            }
            if let Some(k) = kind {
                parts.push(format!("kind = \"{}\"", k.as_str()));
            }
            if let Some((op, v)) = x {
                let op = ["eq", "gt", "lte", "ne"][*op as usize];
                parts.push(format!("attrs = {{ x = {{ {op} = {v} }} }}"));
            }
            format!("{{ {} }}", parts.join(", "))
        }
        GenSel::Parent(a, p) | GenSel::Ancestor(a, p) => {
            let key = if matches!(g, GenSel::Parent(..)) {
                "parent"
            } else {
                "ancestor"
            };
            let leaf = toml_of(a);
            let inner = leaf.trim_end_matches('}').trim_end();
            let sep = if inner.ends_with('{') { "" } else { "," };
            format!("{inner}{sep} {key} = {} }}", toml_of(p))
        }
    }
}

fn reference(g: &GenSel, spans: &[SpanRecord], i: usize) -> bool {
    let s = &spans[i];
    let parent = |i: usize| {
        let p = spans[i].parent_span_id.as_deref()?;
        spans.iter().position(|c| c.span_id == p)
    };
    match g {
        GenSel::Leaf { name, kind, x } => {
            name.is_none_or(|n| crate::model::NamePattern::new(n).is_match(&s.name))
                && kind.is_none_or(|k| s.kind == k)
                && x.is_none_or(|(op, v)| match s.attributes.get("x") {
                    Some(AttrValue::Int(a)) => match op {
                        0 => *a == v,
                        1 => *a > v,
                        2 => *a <= v,
                        _ => *a != v,
                    },
                    _ => false,
                })
        }
        GenSel::Parent(a, p) => {
            reference(a, spans, i) && parent(i).is_some_and(|j| reference(p, spans, j))
        }
        GenSel::Ancestor(a, p) => {
            if !reference(a, spans, i) {
                return false;
            }
            let mut cur = parent(i);
            let mut steps = 0;
            while let Some(j) = cur {
                if reference(p, spans, j) {
                    return true;
                }
                steps += 1;
                if steps > spans.len() {
                    return false;
                }
                cur = parent(j);
            }
            false
        }
    }
}

fn gen_trace() -> impl Strategy<Value = Vec<SpanRecord>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["a", "b", "c1", "c2"]),
            any::<bool>(),
            prop::option::of(0i64..5),
            any::<prop::sample::Index>(),
            any::<bool>(),
        ),
        1..12,
    )
    .prop_map(|items| {
        items
            .iter()
            .enumerate()
            .map(|(i, (name, server, x, parent, root))| {
                let parent_id = if i == 0 || *root {
                    String::new()
                } else {
                    format!("s{}", parent.index(i))
                };
                let kind = if *server { "server" } else { "client" };
                let attrs = x.map_or(String::new(), |x| format!(r#","attributes":{{"x":{x}}}"#));
                span(
                    name,
                    &format!("s{i}"),
                    &parent_id,
                    0,
                    1,
                    &format!(r#""kind":"{kind}"{attrs}"#),
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_engine_selects_what_a_direct_reading_selects(g in gen_sel(), spans in gen_trace()) {
        let text = format!("[[expect.span]]\ncount = {{ gte = 0 }}\neach = {}\n", toml_of(&g));
        let set = super::tests::set(&text);
        let each: &Selector = set.expect.spans[0].each.as_ref().expect("each");
        let trace = select::Trace::new(&spans);
        let mut m = select::Matcher::new(&trace);
        let got = m.select(each);
        let want: Vec<usize> = (0..spans.len()).filter(|i| reference(&g, &spans, *i)).collect();
        prop_assert_eq!(got, want, "{}", text);
    }
}

#[test]
fn a_predicate_says_why_a_value_fails_including_its_type() {
    let holds = |p: &Predicate, v: Option<&AttrValue>| select::holds(p, v).map_err(|w| w.found(v));
    let s = |v: &str| Some(AttrValue::Str(v.into()));
    assert_eq!(
        holds(&Predicate::Gt(1.0), s("5").as_ref()),
        Err("\"5\" (a string, not a number)".into())
    );
    assert_eq!(holds(&Predicate::Gt(1.0), Some(&AttrValue::Int(5))), Ok(()));
    assert_eq!(
        holds(&Predicate::Lte(1.0), Some(&AttrValue::Double(1.5))),
        Err("1.5".into())
    );
    assert_eq!(holds(&Predicate::Exists(false), None), Ok(()));
    assert_eq!(
        holds(&Predicate::Ne(crate::model::Scalar::Int(1)), None),
        Err("not set".into())
    );
    assert_eq!(
        holds(
            &Predicate::Contains(crate::model::Scalar::String("b".into())),
            Some(&AttrValue::Array(vec![
                AttrValue::Str("a".into()),
                AttrValue::Str("b".into())
            ]))
        ),
        Ok(())
    );
    assert_eq!(
        holds(
            &Predicate::Contains(crate::model::Scalar::String("b".into())),
            Some(&AttrValue::Int(3))
        ),
        Err("3 (an integer, not a string or a list)".into())
    );
}

#[test]
fn a_cycle_of_parent_ids_ends_the_ancestor_walk_and_names_still_select() {
    // Hostile input: a → b → c → b. The walk must end, and find what is on it.
    let spans = vec![
        span("a", "a1", "b1", 0, 10, ""),
        span("b", "b1", "c1", 0, 10, ""),
        span("c", "c1", "b1", 0, 10, ""),
        span("d.x", "d1", "", 0, 10, ""),
    ];
    let checked = |e: &str| check(&super::tests::set(e), &spans);
    assert!(checked("[[expect.span]]\nname = \"a\"\nancestor = \"c\"\n").is_empty());
    let u = checked("[[expect.span]]\nname = \"a\"\nancestor = \"nothing\"\n");
    assert_eq!(u.len(), 1, "{u:#?}");
    assert!(
        u[0].found.contains("ancestors \"b\" ← \"c\""),
        "{}",
        u[0].found
    );
    assert!(
        !u[0].found.contains("\"c\" ← \"b\""),
        "each ancestor once: {}",
        u[0].found
    );
    // A literal name, a glob and no name pick the same spans.
    assert!(checked("[[expect.span]]\nname = \"d.x\"\ncount = { eq = 1 }\n").is_empty());
    assert!(checked("[[expect.span]]\nname = \"d.*\"\ncount = { eq = 1 }\n").is_empty());
    assert!(checked("[[expect.span]]\nname = \"?\"\ncount = { eq = 3 }\n").is_empty());
    assert!(checked("[[expect.span]]\nname = \"nope\"\nabsent = true\n").is_empty());
}

#[test]
fn counts_by_name_narrows_its_name_with_selector_keys() {
    // Two client spans of service "pay": charge and db.query; one with an ERROR.
    assert!(
        unmet(
            "[expect.counts]\nby_name = { \"*\" = { eq = 2, kind = \"client\", service = \"pay\" }, \"db.*\" = { eq = 1, status = \"ERROR\", parent = \"charge\" }, \"charge\" = { eq = 1, attrs = { amount = { exists = true } } } }\n"
        )
        .is_empty()
    );
    let m = one("[expect.counts]\nby_name = { \"*\" = { lte = 1, kind = \"client\" } }\n");
    assert!(m.contains("by_name \"*\" {kind client}"), "{m}");
    assert!(m.contains("<= 1"), "{m}");
    assert!(m.contains("found 2"), "{m}");
    // The key is the name: `name` beside it is refused where it is written.
    let src = crate::diag::Source::file(
        "t.clnrm.toml",
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[expect.counts]\nby_name = { a = { eq = 1, name = \"b\" } }\n",
    );
    let (_, diags) = crate::model::parse_test_file(&src);
    let text: Vec<String> = diags
        .into_sorted()
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("the key of a `by_name` entry is its name")),
        "{text:?}"
    );
}

#[test]
fn a_parent_of_the_name_asked_for_says_what_else_it_fails() {
    let m = one(
        "[[expect.span]]\nname = \"db.query\"\nparent = { name = \"charge\", kind = \"server\" }\n",
    );
    assert!(
        m.contains("parent: expected \"charge\" {kind server}, found \"charge\", which fails kind: expected server, found client"),
        "{m}"
    );
}
