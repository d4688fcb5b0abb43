//! Every expectation kind, passing and failing, and properties of the matchers.

use super::*;
use crate::diag::Source;
use crate::model::parse_test_file;
use crate::otel::{SpanRecord, parse_line};
use proptest::prelude::*;

const HEAD: &str =
    "[meta]\nname = \"t\"\nversion = \"1\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n";

pub(super) fn set(expectations: &str) -> ExpectSet {
    let src = Source::file("t.clnrm.toml", format!("{HEAD}{expectations}"));
    let (file, diags) = parse_test_file(&src);
    assert!(!diags.has_errors(), "{diags:?}");
    ExpectSet::new(file.expect("parsed").expect, src, "t.clnrm.toml".into())
}

/// A span: `(name, id, parent, start ms, end ms, extra JSON fields)`.
pub(super) fn span(
    name: &str,
    id: &str,
    parent: &str,
    start: u64,
    end: u64,
    extra: &str,
) -> SpanRecord {
    let sep = if extra.is_empty() { "" } else { "," };
    let line = format!(
        r#"{{"name":"{name}","trace_id":"t","span_id":"{id}","parent_span_id":"{parent}","start_time_unix_nano":{},"end_time_unix_nano":{}{sep}{extra}}}"#,
        start * 1_000_000,
        end * 1_000_000
    );
    parse_line(&line).expect("span line").remove(0)
}

/// root(0..100) → auth(10..20), charge(30..60) → db(35..50)
pub(super) fn trace() -> Vec<SpanRecord> {
    vec![
        span(
            "root",
            "r",
            "",
            0,
            100,
            r#""kind":"server","status":"OK","attributes":{"http.status_code":200,"route":"/pay"},"resource":{"service.name":"pay"}"#,
        ),
        span(
            "auth",
            "a",
            "r",
            10,
            20,
            r#""status":"OK","events":[{"name":"token.checked","time_unix_nano":15}],"resource":{"service.name":"pay"}"#,
        ),
        span(
            "charge",
            "c",
            "r",
            30,
            60,
            r#""kind":"client","status":"OK","attributes":{"amount":"1299"},"resource":{"service.name":"pay"}"#,
        ),
        span(
            "db.query",
            "d",
            "c",
            35,
            50,
            r#""kind":"client","status":"ERROR","attributes":{"db.system":"postgresql"},"resource":{"service.name":"pay"}"#,
        ),
    ]
}

pub(super) fn unmet(e: &str) -> Vec<Unmet> {
    check(&set(e), &trace())
}

pub(super) fn one(e: &str) -> String {
    let u = unmet(e);
    assert_eq!(u.len(), 1, "{u:#?}");
    u[0].to_string()
}

#[test]
fn span_expectations_pass_on_a_match() {
    let u = unmet(
        "[[expect.span]]\nname = \"ro*\"\nkind = \"server\"\nattrs.all = { \"http.status_code\" = \"200\" }\nattrs.any = { route = \"/pay\", other = 1 }\nduration_ms = { min = 50, max = 150 }\n\n[[expect.span]]\nname = \"auth\"\nparent = \"root\"\nevents.all = [\"token.checked\"]\n\n[[expect.span]]\nname = \"charge\"\nattrs.all = { amount = 1299 }\n",
    );
    assert!(u.is_empty(), "{u:#?}");
}

#[test]
fn a_span_expectation_failure_names_position_and_the_nearest_span() {
    let m = one(
        "[[expect.span]]\nname = \"charge\"\nparent = \"auth\"\nkind = \"server\"\nattrs.all = { amount = 5 }\n",
    );
    assert!(
        m.starts_with("[[expect.span]] \"charge\" (t.clnrm.toml:9:1)"),
        "{m}"
    );
    assert!(
        m.contains("expected a span \"charge\" {kind server, amount = 5, parent \"auth\"}"),
        "{m}"
    );
    // The closest span is the one of that name, with every criterion it failed.
    assert!(
        m.contains("closest: span \"charge\" (kind client, status OK, 30.0 ms, attrs {amount=\"1299\"}): kind: expected server, found client; attribute \"amount\": expected = 5, found \"1299\"; parent: expected \"auth\", found \"root\""),
        "{m}"
    );
}

#[test]
fn a_missing_span_lists_the_names_seen() {
    let m = one("[[expect.span]]\nname = \"refund\"\n");
    assert!(
        m.contains(
            "no span named \"refund\"; spans seen: \"auth\", \"charge\", \"db.query\", \"root\""
        ),
        "{m}"
    );
}

#[test]
fn events_and_durations_are_checked() {
    let m = one(
        "[[expect.span]]\nname = \"auth\"\nevents.all = [\"token.checked\", \"token.refreshed\"]\nduration_ms = { max = 5 }\n",
    );
    assert!(
        m.contains("event \"token.refreshed\": expected present, found events \"token.checked\""),
        "{m}"
    );
    assert!(
        m.contains("duration: expected <= 5 ms, found 10.0 ms"),
        "{m}"
    );
    assert!(
        unmet("[[expect.span]]\nname = \"auth\"\nevents.any = [\"nope\", \"token.checked\"]\n")
            .is_empty()
    );
}

#[test]
fn graph_expectations() {
    assert!(unmet("[expect.graph]\nmust_include = [[\"root\", \"charge\"], [\"charge\", \"db.*\"]]\nmust_not_cross = [[\"auth\", \"db.query\"]]\nacyclic = true\n").is_empty());
    let m = one("[expect.graph]\nmust_include = [[\"auth\", \"db.query\"]]\n");
    assert!(
        m.contains(
            "expected an edge \"auth\" → \"db.query\"; found \"db.query\" has parent \"charge\""
        ),
        "{m}"
    );
    let m = one("[expect.graph]\nmust_not_cross = [[\"charge\", \"db.query\"]]\n");
    assert!(m.contains("under \"charge\""), "{m}");
}

#[test]
fn a_cycle_is_found() {
    let spans = vec![span("a", "1", "2", 0, 1, ""), span("b", "2", "1", 0, 1, "")];
    let u = check(&set("[expect.graph]\nacyclic = true\n"), &spans);
    assert_eq!(u.len(), 1);
    assert!(u[0].found.contains("a cycle through"), "{:?}", u[0]);
}

#[test]
fn count_expectations() {
    assert!(unmet("[expect.counts]\nspans_total = { eq = 4 }\nevents_total = { gte = 1, lte = 1 }\nerrors_total = { eq = 1 }\nby_name = { \"db.*\" = { eq = 1 } }\n").is_empty());
    let m = one("[expect.counts]\nspans_total = { gte = 5, lte = 3 }\n");
    assert!(
        m.contains("expected spans_total >= 5 and spans_total <= 3; found 4"),
        "{m}"
    );
    let m = one("[expect.counts]\nby_name = { charge = { eq = 2 } }\n");
    assert!(m.contains("by_name \"charge\""), "{m}");
}

#[test]
fn window_expectations() {
    assert!(
        unmet(
            "[[expect.window]]\nouter = \"root\"\ncontains = [\"auth\", \"charge\", \"db.query\"]\n"
        )
        .is_empty()
    );
    let m = one("[[expect.window]]\nouter = \"charge\"\ncontains = [\"db.query\", \"auth\"]\n");
    assert!(m.contains("\"auth\" runs -20.0..-10.0 ms"), "{m}");
    let m = one("[[expect.window]]\nouter = \"nope\"\ncontains = [\"auth\"]\n");
    assert!(m.contains("no span named \"nope\""), "{m}");
}

#[test]
fn order_expectations() {
    assert!(unmet("[expect.order]\nmust_precede = [[\"auth\", \"charge\"]]\nmust_follow = [[\"charge\", \"auth\"]]\n").is_empty());
    let m = one("[expect.order]\nmust_precede = [[\"charge\", \"auth\"]]\n");
    assert!(
        m.contains("expected \"charge\" to end before \"auth\" starts"),
        "{m}"
    );
    let m = one("[expect.order]\nmust_follow = [[\"auth\", \"charge\"]]\n");
    assert!(
        m.contains("\"auth\" starts 50.0 ms before \"charge\" ends"),
        "{m}"
    );
}

#[test]
fn status_expectations() {
    assert!(
        unmet("[expect.status]\nby_name = { \"db.*\" = \"error\", auth = \"OK\" }\n").is_empty()
    );
    let m = one("[expect.status]\nall = \"OK\"\n");
    assert!(m.contains("\"db.query\" is ERROR"), "{m}");
    let m = one("[expect.status]\nby_name = { \"cache.*\" = \"OK\" }\n");
    assert!(m.contains("no span named \"cache.*\""), "{m}");
    // A list: any of its statuses will do.
    assert!(unmet("[expect.status]\nall = [\"OK\", \"ERROR\"]\n").is_empty());
    let m = one("[expect.status]\nall = [\"OK\", \"UNSET\"]\n");
    assert!(m.contains("every span OK or UNSET"), "{m}");
    assert!(m.contains("\"db.query\" is ERROR"), "{m}");
}

#[test]
fn route_names_with_braces_match_themselves() {
    let spans = vec![span("GET /orders/{id}", "g", "", 0, 10, r#""status":"OK""#)];
    let s = set(
        "[[expect.span]]\nname = \"GET /orders/{id}\"\n\n[expect.counts]\nby_name = { \"GET /orders/*\" = { eq = 1 } }\n",
    );
    let found = check(&s, &spans);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn hermeticity_expectations() {
    assert!(unmet("[expect.hermeticity]\nno_external_services = true\nresource_attrs.must_match = { \"service.name\" = \"pay\" }\nspan_attrs.forbid_keys = [\"card.*\"]\n").is_empty());
    let mut spans = trace();
    spans[2].attributes.insert(
        "net.peer.name".into(),
        crate::otel::AttrValue::Str("stripe.com".into()),
    );
    let u = check(
        &set("[expect.hermeticity]\nno_external_services = true\n"),
        &spans,
    );
    assert!(u[0].found.contains("net.peer.name=\"stripe.com\""), "{u:?}");
    let m =
        one("[expect.hermeticity]\nresource_attrs.must_match = { \"service.name\" = \"other\" }\n");
    assert!(m.contains("has resource service.name \"pay\""), "{m}");
    let m = one("[expect.hermeticity]\nspan_attrs.forbid_keys = [\"db.*\"]\n");
    assert!(m.contains("\"db.query\" carries db.system"), "{m}");
}

#[test]
fn the_scenarios_own_services_loopback_allowed_hosts_and_a_servers_own_address_are_internal() {
    let with = |attrs: &[(&str, &str)], kind: &str| {
        let mut spans = trace();
        spans[2].kind = match kind {
            "server" => crate::model::SpanKind::Server,
            _ => crate::model::SpanKind::Client,
        };
        for (k, v) in attrs {
            spans[2]
                .attributes
                .insert((*k).into(), crate::otel::AttrValue::Str((*v).into()));
        }
        spans
    };
    let own = vec![
        "db".to_owned(),
        "4f2a9c1e0b7d".to_owned(),
        "172.18.0.3".to_owned(),
    ];
    let scope = Scope {
        own_hosts: &own,
        ..Scope::default()
    };
    let strict = set("[expect.hermeticity]\nno_external_services = true\n");
    for attrs in [
        vec![
            ("net.peer.name", "db"),
            ("db.connection_string", "postgresql://app@db:5432/x"),
        ],
        vec![("network.peer.address", "172.18.0.3")],
        vec![("net.peer.name", "4f2a9c1e0b7d")],
        vec![
            ("http.url", "http://localhost:8080/health"),
            ("net.peer.ip", "127.0.0.1"),
        ],
    ] {
        let u = check_in(&strict, &with(&attrs, "client"), &scope);
        assert!(u.is_empty(), "{attrs:?}: {u:?}");
    }
    // A server span's own address names itself.
    let server = with(
        &[
            ("http.host", "orders.example:8080"),
            ("server.address", "orders.example"),
        ],
        "server",
    );
    assert!(check_in(&strict, &server, &scope).is_empty());
    // The same on a client span is a peer.
    let client = with(&[("server.address", "orders.example")], "client");
    assert_eq!(check_in(&strict, &client, &scope).len(), 1);
    // Unless allowed.
    let allowing = set(
        "[expect.hermeticity]\nno_external_services = true\nallow_hosts = [\"orders.example\"]\n",
    );
    assert!(check_in(&allowing, &client, &scope).is_empty());
    // Without the scenario's hosts, its database is external.
    let db = with(&[("net.peer.name", "db")], "client");
    assert_eq!(check(&strict, &db).len(), 1);
    // An address of its own however written (an IPv4 address as IPv6), loopback too.
    for attrs in [
        vec![("net.peer.ip", "::ffff:172.18.0.3")],
        vec![("net.peer.ip", "::ffff:127.0.0.1")],
    ] {
        let u = check_in(&strict, &with(&attrs, "client"), &scope);
        assert!(u.is_empty(), "{attrs:?}: {u:?}");
    }
    // The gateway (where clnrm's requests come from) is internal as the peer of a
    // SERVER span, not as what a client calls.
    let gated = Scope {
        own_hosts: &own,
        gateway: Some("172.18.0.1"),
        ..Scope::default()
    };
    let from_clnrm = with(&[("net.peer.ip", "::ffff:172.18.0.1")], "server");
    assert!(check_in(&strict, &from_clnrm, &gated).is_empty());
    assert_eq!(check_in(&strict, &from_clnrm, &scope).len(), 1);
    let to_gateway = with(&[("net.peer.ip", "172.18.0.1")], "client");
    assert_eq!(check_in(&strict, &to_gateway, &gated).len(), 1);
}

#[test]
fn no_spans_where_expectations_exist_fails() {
    let u = check(&set("[expect.counts]\nspans_total = { gte = 0 }\n"), &[]);
    assert_eq!(u.len(), 1);
    assert!(u[0].found.contains("no spans at all"), "{u:?}");
    assert!(
        check(&set(""), &[]).is_empty(),
        "no expectations, nothing to meet"
    );
}

/// A random tree: span i > 0 has a parent among 0..i; spans are sequential in time.
fn tree() -> impl Strategy<Value = Vec<SpanRecord>> {
    prop::collection::vec((0usize..1000, 0usize..5), 1..30).prop_map(|nodes| {
        nodes
            .iter()
            .enumerate()
            .map(|(i, (p, name))| {
                let parent = if i == 0 {
                    String::new()
                } else {
                    format!("s{}", p % i)
                };
                let start = i as u64 * 10;
                span(
                    &format!("n{name}"),
                    &format!("s{i}"),
                    &parent,
                    start,
                    start + 5,
                    "",
                )
            })
            .collect()
    })
}

fn derived_expectations(spans: &[SpanRecord]) -> String {
    let mut text = format!(
        "[expect.counts]\nspans_total = {{ eq = {} }}\n\n",
        spans.len()
    );
    let mut include = Vec::new();
    for s in spans {
        if let Some(p) = &s.parent_span_id
            && let Some(parent) = spans.iter().find(|x| &x.span_id == p)
        {
            include.push(format!("[\"{}\", \"{}\"]", parent.name, s.name));
            text.push_str(&format!(
                "[[expect.span]]\nname = \"{}\"\nparent = \"{}\"\n\n",
                s.name, parent.name
            ));
        }
    }
    if spans.len() > 1 {
        text.push_str(&format!(
            "[expect.order]\nmust_precede = [[\"{}\", \"{}\"]]\n\n",
            spans[0].name,
            spans[spans.len() - 1].name
        ));
    }
    text.push_str(&format!(
        "[expect.graph]\nacyclic = true\nmust_include = [{}]\n",
        include.join(", ")
    ));
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_tree_meets_the_expectations_derived_from_it(spans in tree()) {
        // Order between equal names is about their first spans; keep it well defined.
        let first_last_distinct = spans.len() < 2 || spans[0].name != spans[spans.len() - 1].name;
        prop_assume!(first_last_distinct);
        let u = check(&set(&derived_expectations(&spans)), &spans);
        prop_assert!(u.is_empty(), "{:#?}", u);
    }

    #[test]
    fn dropping_a_span_breaks_the_count(spans in tree(), drop in 0usize..1000) {
        let e = set(&format!("[expect.counts]\nspans_total = {{ eq = {} }}\n", spans.len()));
        let mut fewer = spans.clone();
        fewer.remove(drop % spans.len());
        let u = check(&e, &fewer);
        prop_assert_eq!(u.len(), 1);
    }

    #[test]
    fn removing_a_span_breaks_exactly_the_expectations_that_name_it(parents in prop::collection::vec(0usize..1000, 1..25), pick in any::<usize>()) {
        // Unique names u0..un: one [[expect.span]] per span and one must_include per edge.
        let spans: Vec<SpanRecord> = parents
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let parent = if i == 0 { String::new() } else { format!("s{}", p % i) };
                span(&format!("u{i}"), &format!("s{i}"), &parent, i as u64, i as u64 + 1, "")
            })
            .collect();
        let mut text = String::new();
        let mut edges = Vec::new();
        for s in &spans {
            text.push_str(&format!("[[expect.span]]\nname = \"{}\"\n\n", s.name));
            if let Some(p) = &s.parent_span_id {
                edges.push((format!("u{}", &p[1..]), s.name.clone()));
            }
        }
        if !edges.is_empty() {
            let list: Vec<String> = edges.iter().map(|(a, b)| format!("[\"{a}\", \"{b}\"]")).collect();
            text.push_str(&format!("[expect.graph]\nmust_include = [{}]\n", list.join(", ")));
        }
        let e = set(&text);
        prop_assert!(check(&e, &spans).is_empty());
        let gone = pick % spans.len();
        let name = format!("u{gone}");
        let mut fewer = spans.clone();
        fewer.remove(gone);
        if fewer.is_empty() {
            return Ok(());
        }
        let mut broken: Vec<String> = check(&e, &fewer)
            .iter()
            .map(|u| if u.what.starts_with("[[expect.span]]") { u.what.clone() } else { u.expected.clone() })
            .collect();
        broken.sort();
        let mut expected = vec![format!("[[expect.span]] \"{name}\"")];
        expected.extend(
            edges
                .iter()
                .filter(|(a, b)| *a == name || *b == name)
                .map(|(a, b)| format!("an edge \"{a}\" → \"{b}\"")),
        );
        expected.sort();
        prop_assert_eq!(broken, expected);
    }

    #[test]
    fn matchers_never_panic_on_arbitrary_spans(spans in tree(), shuffle in any::<u64>()) {
        let mut spans = spans;
        if let Some(s) = spans.first_mut() { s.parent_span_id = Some(format!("s{}", shuffle % 40)); }
        let all = "[[expect.span]]\nname = \"n*\"\nparent = \"n1\"\nduration_ms = { min = 1 }\n\n[expect.graph]\nacyclic = true\nmust_not_cross = [[\"n1\", \"n2\"]]\n\n[[expect.window]]\nouter = \"n0\"\ncontains = [\"n3\"]\n\n[expect.order]\nmust_follow = [[\"n1\", \"n2\"]]\n\n[expect.status]\nall = \"UNSET\"\n";
        let _ = check(&set(all), &spans);
    }
}

#[test]
fn a_failure_in_a_template_points_at_the_template_line_or_says_rendered() {
    let template = Source::file(
        "t.clnrm.toml.tera",
        "[meta]\nname = \"t\"\nversion = \"1\"\n{% for i in [1, 2, 3] %}\n# generated {{ i }}\n{% endfor %}\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n[[expect.span]]\nname = \"missing\"\n\n{{ '[[ expect.span ]]' }}\nname = \"also-missing\"\n",
    );
    let rendered_text = "[meta]\nname = \"t\"\nversion = \"1\"\n\n# generated 1\n\n# generated 2\n\n# generated 3\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n[[expect.span]]\nname = \"missing\"\n\n[[ expect.span ]]\nname = \"also-missing\"\n";
    let rendered = Source::rendered(&template, rendered_text.to_owned());
    let (file, diags) = parse_test_file(&rendered);
    assert!(!diags.has_errors(), "{diags:?}");
    let set = ExpectSet::new(
        file.expect("parsed").expect,
        rendered,
        "t.clnrm.toml.tera".into(),
    );
    let u = check(&set, &trace());
    assert_eq!(u.len(), 2, "{u:?}");
    // Literal in the template: its template line (11), not the rendered one (15).
    assert_eq!((u[0].at.line, u[0].at.rendered), (Some(11), false));
    assert_eq!(u[0].at.to_string(), "t.clnrm.toml.tera:11:1");
    // Written by a tag: the rendered line, marked.
    assert!(u[1].at.rendered, "{:?}", u[1].at);
    assert!(u[1].at.to_string().ends_with("(rendered)"), "{}", u[1].at);
}
