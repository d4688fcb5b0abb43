//! Span figures of README's performance table: the OTLP receiver's throughput for
//! OTLP/HTTP protobuf batches of 512 spans on loopback (target ≥ 200,000 spans/s), and
//! checking expectations of every kind against a 10,000-span trace.
//! Run with `cargo bench -p clnrm-core --bench otel`.

use clnrm_core::diag::Source;
use clnrm_core::expect::{ExpectSet, check};
use clnrm_core::model::parse_test_file;
use clnrm_core::otel::{Receiver, parse_line};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
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

fn batch() -> Vec<u8> {
    let spans = (0..BATCH)
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

/// Sends `n` requests over one keep-alive connection; returns when all are answered 200.
fn client(port: u16, body: &[u8], n: usize) {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
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

fn throughput() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let receiver = rt
        .block_on(Receiver::start(Ipv4Addr::LOCALHOST.into()))
        .expect("receiver");
    let port = receiver.http_port();
    let body = batch();
    client(port, &body, 10); // warm-up
    let _ = receiver.take_from(Ipv4Addr::LOCALHOST.into());
    let mut rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..CLIENTS {
                s.spawn(|| client(port, &body, REQUESTS_PER_CLIENT));
            }
        });
        let elapsed = start.elapsed();
        let got = receiver.take_from(Ipv4Addr::LOCALHOST.into()).len();
        assert_eq!(got, CLIENTS * REQUESTS_PER_CLIENT * BATCH);
        rates.push(got as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "OTLP/HTTP protobuf, batches of {BATCH} spans, {CLIENTS} keep-alive clients: {:.0} spans/s (median of 3; target >= 200000)",
        rates[1]
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
    let text = "[meta]\nname = \"b\"\nversion = \"1\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n\n\
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
    let set = ExpectSet {
        expect: file.expect("parses").expect,
        source: src,
        display: "b.clnrm.toml".into(),
    };
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    throughput();
    expectations();
}
