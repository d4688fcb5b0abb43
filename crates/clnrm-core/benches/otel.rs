//! Span figures of README's performance table: the OTLP receiver's throughput for
//! OTLP/HTTP protobuf batches of 512 spans on loopback with the run token checked
//! (target ≥ 500,000 spans/s), the receiver's peak memory under a 1 GB flood of valid
//! spans at one scenario (target ≤ 256 MB of resident memory), and checking
//! expectations of every kind against a 10,000-span trace, 50 selector expectations with
//! predicates against a 10,000-span trace (target ≤ 20 ms) and `[[expect.per_span]]`
//! over 1,000 parents × 10 descendants (target ≤ 10 ms).
//! Run with `cargo bench -p clnrm-core --bench otel` (`-- --selectors` for the last two
//! alone).

use clnrm_core::diag::Source;
use clnrm_core::expect::{ExpectSet, check};
use clnrm_core::model::parse_test_file;
use clnrm_core::otel::{Receiver, ReceiverConfig, SpanLimits, parse_line};
use clnrm_core::validate::{ValidateOptions, check_files};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

const BATCH: usize = 512;
const CLIENTS: usize = 2;
const REQUESTS_PER_CLIENT: usize = 200;

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn batch() -> Vec<u8> {
    batch_of(BATCH, 0)
}

/// A request of `n` spans, each with `pad` bytes of attribute text.
fn batch_of(n: usize, pad: usize) -> Vec<u8> {
    let filler = "x".repeat(pad);
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: if i == 0 {
                Vec::new()
            } else {
                1u64.to_be_bytes().to_vec()
            },
            name: format!("op.{}", i % 16),
            kind: 2,
            start_time_unix_nano: 1_000_000 * i as u64,
            end_time_unix_nano: 1_000_000 * i as u64 + 500_000,
            attributes: vec![
                kv("http.route", Value::StringValue(format!("/items/{i}"))),
                kv("http.status_code", Value::IntValue(200)),
                kv("pad", Value::StringValue(filler.clone())),
            ],
            status: Some(Status {
                code: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("bench".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends `n` requests, each answered by a fresh connection if the receiver closed the
/// last one (it does once a scenario is over its limits); for the flood.
fn flood_client(port: u16, body: &[u8], n: usize) {
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\nx-clnrm-token: {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    for _ in 0..n {
        let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// Sends `n` requests over one keep-alive connection; returns when all are answered 200.
fn client(port: u16, body: &[u8], n: usize) {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\nx-clnrm-token: {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for _ in 0..n {
        writer.write_all(head.as_bytes()).expect("head");
        writer.write_all(body).expect("body");
        let mut status = String::new();
        reader.read_line(&mut status).expect("status");
        assert!(status.contains(" 200 "), "{status}");
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut rest = vec![0; len];
        reader.read_exact(&mut rest).expect("body");
    }
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A receiver that requires [`TOKEN`], on loopback, in its own runtime.
fn receiver() -> (tokio::runtime::Runtime, Receiver) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = ReceiverConfig {
        listen: vec![LOCAL],
        token: Some(TOKEN.into()),
        advertise: None,
    };
    let receiver = rt.block_on(Receiver::start(config)).expect("receiver");
    (rt, receiver)
}

fn throughput() {
    let (_rt, receiver) = receiver();
    let port = receiver.http_port();
    let body = batch();
    let unbounded = SpanLimits {
        max_spans: usize::MAX,
        max_bytes: usize::MAX,
    };
    receiver.open("bench", &[LOCAL], unbounded);
    client(port, &body, 10); // warm-up
    let _ = receiver.close("bench", &[LOCAL]);
    let mut rates = Vec::new();
    for _ in 0..3 {
        receiver.open("bench", &[LOCAL], unbounded);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..CLIENTS {
                s.spawn(|| client(port, &body, REQUESTS_PER_CLIENT));
            }
        });
        let elapsed = start.elapsed();
        let got = receiver.close("bench", &[LOCAL]).spans.len();
        assert_eq!(got, CLIENTS * REQUESTS_PER_CLIENT * BATCH);
        rates.push(got as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "OTLP/HTTP protobuf with the run token, batches of {BATCH} spans, {CLIENTS} keep-alive clients: {:.0} spans/s (median of 3; target >= 500000)",
        rates[1]
    );
}

/// This process's resident memory, current and peak, in MiB (from /proc).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// 1 GiB of valid spans, in 8 MiB requests from 8 clients at once, at one open
/// scenario with the default limits; prints the peak resident memory.
fn flood() {
    let (_rt, receiver) = receiver();
    let port = receiver.http_port();
    let body = batch_of(8_000, 1_000);
    let requests = (1usize << 30) / body.len();
    let before = rss_mib().0;
    receiver.open("flooded", &[LOCAL], SpanLimits::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..8 {
            let body = &body;
            s.spawn(move || flood_client(port, body, requests / 8 + usize::from(c < requests % 8)));
        }
    });
    let elapsed = start.elapsed();
    let collected = receiver.close("flooded", &[LOCAL]);
    let (_, peak) = rss_mib();
    println!(
        "1 GiB flood ({requests} requests of {:.1} MiB) at one scenario in {:.1} s: kept {} spans, dropped {}; peak RSS {peak:.0} MiB (before: {before:.0} MiB; target <= 256)",
        body.len() as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        collected.spans.len(),
        collected.overflow.map_or(0, |o| o.dropped),
    );
}

fn expectations() {
    let n = 10_000;
    let spans: Vec<_> = (0..n)
        .flat_map(|i| {
            let parent = if i == 0 { String::new() } else { format!("{:x}", (i - 1) / 10) };
            parse_line(&format!(
                r#"{{"name":"op.{}","trace_id":"t","span_id":"{i:x}","parent_span_id":"{parent}","start_time_unix_nano":{},"end_time_unix_nano":{},"kind":"server","status":"OK","attributes":{{"http.status_code":200,"i":{i}}}}}"#,
                i % 20,
                i * 10,
                i * 10 + 1_000_000
            ))
            .unwrap_or_default()
        })
        .collect();
    let text = "[meta]\nname = \"b\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n\
        [[expect.span]]\nname = \"op.1*\"\nparent = \"op.*\"\nkind = \"server\"\nattrs.all = { \"http.status_code\" = 200 }\n\n\
        [[expect.span]]\nname = \"op.7\"\nattrs.all = { i = 9987 }\n\n\
        [expect.graph]\nmust_include = [[\"op.0\", \"op.1\"]]\nmust_not_cross = [[\"op.3\", \"nothing\"]]\nacyclic = true\n\n\
        [expect.counts]\nspans_total = { eq = 10000 }\nby_name = { \"op.1\" = { gte = 1 } }\n\n\
        [[expect.window]]\nouter = \"op.0\"\ncontains = [\"op.19\"]\n\n\
        [expect.order]\nmust_precede = [[\"op.0\", \"op.19\"]]\n\n\
        [expect.status]\nall = \"OK\"\n\n\
        [expect.hermeticity]\nno_external_services = true\nspan_attrs.forbid_keys = [\"secret.*\"]\n";
    let src = Source::file("b.clnrm.toml", text);
    let (file, _) = parse_test_file(&src);
    let set = ExpectSet::new(file.expect("parses").expect, src, "b.clnrm.toml".into());
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let unmet = check(&set, &spans);
            let e = t.elapsed();
            assert!(unmet.len() <= 2, "{unmet:#?}");
            e
        })
        .collect();
    times.sort();
    println!(
        "checking every expectation kind against a {n}-span trace: {:.1} ms (median of 5)",
        times[2].as_secs_f64() * 1e3
    );
}

/// A trace of `groups` requests under one root: each request a server span of one of
/// three services with `per` client spans (statements) under it; every 50th request
/// failed with an exception event, and one statement in 100 links to the root.
fn request_trace(groups: usize, per: usize) -> Vec<clnrm_core::otel::SpanRecord> {
    let mut lines = vec![
        r#"{"name":"POST /checkout","trace_id":"t","span_id":"0000000000000001","kind":"server","start_time_unix_nano":0,"end_time_unix_nano":900000000000,"status":"OK","attributes":{"http.route":"/checkout","http.response.status_code":200},"resource":{"service.name":"edge"}}"#.to_string(),
    ];
    let mut id = 1usize;
    for g in 0..groups {
        let server = id;
        let failed = g % 50 == 0;
        let service = format!("svc-{}", g % 3);
        let start = g * 10_000_000;
        lines.push(format!(
            r#"{{"name":"GET /r{r}","trace_id":"t","span_id":"{sid:016x}","parent_span_id":"0000000000000001","kind":"server","start_time_unix_nano":{start},"end_time_unix_nano":{end},"status":"{status}","attributes":{{"http.route":"/r{r}","http.response.status_code":{code}}},"events":[{events}],"resource":{{"service.name":"{service}"}}}}"#,
            r = g % 7,
            sid = server + 1,
            end = start + 5_000_000,
            status = if failed { "ERROR" } else { "OK" },
            code = if failed { 500 } else { 200 },
            events = if failed {
                r#"{"name":"exception","attributes":{"exception.type":"app.Error"}}"#
            } else {
                ""
            },
        ));
        id += 1;
        for c in 0..per {
            let link = if id % 100 == 2 {
                r#"{"trace_id":"t","span_id":"0000000000000001"}"#
            } else {
                ""
            };
            lines.push(format!(
                r#"{{"name":"SELECT t{t}","trace_id":"t","span_id":"{cid:016x}","parent_span_id":"{sid:016x}","kind":"client","start_time_unix_nano":{s},"end_time_unix_nano":{e},"status":"UNSET","attributes":{{"db.system":"postgresql","db.rows":{rows},"db.statement":"SELECT * FROM t{t} WHERE id = $1"}},"links":[{link}],"resource":{{"service.name":"{service}"}}}}"#,
                t = id % 13,
                cid = id + 1,
                sid = server + 1,
                s = start + c * 100_000,
                e = start + c * 100_000 + 50_000,
                rows = id % 50,
            ));
            id += 1;
        }
    }
    lines
        .iter()
        .flat_map(|l| parse_line(l).unwrap_or_default())
        .collect()
}

/// 50 `[[expect.span]]` tables, ten forms with five values each, all of them met by
/// `request_trace(1000, 9)`.
fn selector_expectations() -> String {
    let mut text = String::from(
        "[meta]\nname = \"b\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n",
    );
    for k in 0..5 {
        let forms = [
            format!(
                "name = \"GET /r{k}\"\nkind = \"server\"\nparent = \"POST /checkout\"\ncount = {{ gte = 1 }}"
            ),
            format!(
                "service = \"svc-{}\"\nkind = \"client\"\nattrs = {{ \"db.rows\" = {{ gte = 0, lt = 50 }}, \"db.system\" = \"postgresql\" }}\ncount = {{ gte = 1 }}",
                k % 3
            ),
            format!(
                "name = \"SELECT t{k}\"\nancestor = {{ name = \"POST /checkout\" }}\neach = {{ attrs = {{ \"db.statement\" = {{ regex = \"^SELECT \\\\* FROM t[0-9]+ \" }} }} }}"
            ),
            format!(
                "name = \"GET /r{k}\"\nstatus = \"ERROR\"\neach = {{ events = [{{ name = \"exception\", attrs = {{ \"exception.type\" = {{ contains = \"Error\" }} }} }}] }}"
            ),
            format!("name = \"INSERT t{k}*\"\nabsent = true"),
            format!(
                "kind = \"client\"\nattrs = {{ \"db.rows\" = {{ in = [{}, {}] }} }}\nparent = {{ kind = \"server\", attrs = {{ \"http.route\" = {{ exists = true }} }} }}\ncount = {{ gte = 1 }}",
                k + 2,
                k + 12
            ),
            format!(
                "name = \"GET /r{k}\"\nduration_ms = {{ gte = 1 }}\neach = {{ attrs = {{ \"http.response.status_code\" = {{ ne = 404 }} }} }}"
            ),
            format!(
                "kind = \"client\"\nservice = \"svc-{}\"\nlinks = [{{ to = {{ name = \"POST /checkout\" }} }}]\ncount = {{ gte = 1 }}",
                k % 3
            ),
            format!(
                "name = \"SELECT t{k}\"\nservice = \"svc-{}\"\nattrs = {{ \"db.system\" = {{ ne = \"mysql\" }} }}\ncount = {{ gte = 1 }}",
                k % 3
            ),
            format!(
                "name = \"POST /checkout\"\nattrs = {{ \"http.route\" = \"/checkout\", \"http.response.status_code\" = {{ lt = {} }} }}\ncount = {{ eq = 1 }}",
                300 + k
            ),
        ];
        for form in forms {
            text.push_str("\n[[expect.span]]\n");
            text.push_str(&form);
            text.push('\n');
        }
    }
    text
}

/// The median of `rounds` checks of `text`'s expectations against `spans`, `unmet` of
/// them required to fail; `text` must first pass `validate`.
fn median_check(
    text: &str,
    spans: &[clnrm_core::otel::SpanRecord],
    rounds: usize,
    unmet: usize,
) -> Duration {
    let dir = std::env::temp_dir().join(format!("clnrm-bench-selectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("b.clnrm.toml");
    std::fs::write(&path, text).expect("the file");
    let checked = check_files(
        std::slice::from_ref(&path),
        &dir,
        &ValidateOptions::default(),
    )
    .pop()
    .expect("one file");
    let _ = std::fs::remove_dir_all(&dir);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let set = ExpectSet::new(
        checked.file.expect("valid").expect,
        checked.rendered.expect("read"),
        "b.clnrm.toml".into(),
    );
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let failed = check(&set, spans);
            let e = t.elapsed();
            assert_eq!(failed.len(), unmet, "{failed:#?}");
            e
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn selectors() {
    let spans = request_trace(1000, 9);
    let text = selector_expectations();
    assert_eq!(text.matches("[[expect.span]]").count(), 50);
    let t = median_check(&text, &spans, 11, 0);
    println!(
        "checking 50 selector expectations with predicates against a {}-span trace: {:.1} ms (median of 11; target ≤ 20 ms)",
        spans.len(),
        t.as_secs_f64() * 1e3
    );
    // One more that fails: every span it does not pick is ranked, the closest three
    // described.
    let failing = format!(
        "{text}\n[[expect.span]]\nkind = \"client\"\nattrs = {{ \"db.rows\" = {{ gt = 1000 }} }}\ncount = {{ gte = 1 }}\n"
    );
    let t = median_check(&failing, &spans, 11, 1);
    println!(
        "the same and one that fails (its closest spans found among {}): {:.1} ms (median of 11)",
        spans.len(),
        t.as_secs_f64() * 1e3
    );
    let spans = request_trace(1000, 10);
    let text = "[meta]\nname = \"b\"\nversion = \"1\"\n\n[service.app]\nimage = \"clnrm/busybox:latest\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n\
        [[expect.per_span]]\nof = { kind = \"server\", name = \"GET /r*\" }\n\
        descendants = { name = \"SELECT *\", kind = \"client\", attrs = { \"db.system\" = \"postgresql\" } }\n\
        count = { lte = 10 }\n";
    let t = median_check(text, &spans, 11, 0);
    println!(
        "[[expect.per_span]] over 1,000 parents × 10 descendants ({} spans): {:.2} ms (median of 11; target ≤ 10 ms)",
        spans.len(),
        t.as_secs_f64() * 1e3
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::args().any(|a| a == "--selectors") {
        selectors();
        return;
    }
    if std::env::args().any(|a| a == "--flood-child") {
        flood();
        return;
    }
    throughput();
    // The flood runs in a process of its own, so its peak memory is the receiver's
    // alone, not what the throughput rounds left in this one.
    let me = std::env::current_exe().expect("this bench");
    let status = std::process::Command::new(me)
        .arg("--flood-child")
        .status()
        .expect("flood");
    assert!(status.success(), "the flood failed");
    expectations();
    selectors();
}
