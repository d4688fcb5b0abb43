//! The OTLP receiver against real clients: opentelemetry-otlp exporting over HTTP
//! protobuf and gRPC, OTLP-JSON over plain HTTP, and hostile requests: no token, a
//! wrong token, spans for another scenario, floods past the limits, gzip bombs.

use clnrm_core::otel::receiver::{MAX_BODY, TOKEN_HEADER};
use clnrm_core::otel::{Receiver, ReceiverConfig, SpanLimits};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TOKEN: &str = "5ec2e7";

/// Sends spans the way an instrumented service would: `checkout` with a `db.query`
/// child, resource `clnrm.scenario = scenario`.
fn export_with_sdk(exporter: opentelemetry_otlp::SpanExporter, scenario: &str) {
    let resource = Resource::builder()
        .with_service_name("shop")
        .with_attribute(KeyValue::new("clnrm.scenario", scenario.to_owned()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("shop");
    tracer.in_span("checkout", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("http.status_code", 200));
        cx.span().set_status(Status::Ok);
        let child = tracer
            .span_builder("db.query")
            .with_kind(SpanKind::Client)
            .start_with_context(&tracer, &cx);
        drop(child);
    });
    provider.shutdown().expect("flush");
}

fn assert_shop_spans(receiver: &Receiver, scenario: &str) {
    let spans = receiver.close(scenario, &[]).spans;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let parent = spans
        .iter()
        .find(|s| s.name == "checkout")
        .expect("checkout");
    let child = spans
        .iter()
        .find(|s| s.name == "db.query")
        .expect("db.query");
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(parent.span_id.as_str())
    );
    assert_eq!(child.kind, clnrm_core::model::SpanKind::Client);
    assert_eq!(parent.status, clnrm_core::model::StatusCode::Ok);
    assert_eq!(
        parent.attributes["http.status_code"],
        clnrm_core::otel::AttrValue::Int(200)
    );
    assert_eq!(
        parent.resource["service.name"],
        clnrm_core::otel::AttrValue::Str("shop".into())
    );
}

/// The receiver on its own runtime.
fn with_receiver(test: impl FnOnce(&Receiver, &tokio::runtime::Runtime)) {
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
    let receiver = rt.block_on(Receiver::start(config)).expect("start");
    test(&receiver, &rt);
}

#[test]
fn opentelemetry_otlp_over_http_protobuf_is_received_and_attributed() {
    with_receiver(|receiver, rt| {
        // The HTTP client needs the runtime's reactor; the simple processor exports
        // from this thread.
        let _guard = rt.enter();
        receiver.open("t::http", &[], SpanLimits::default());
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!(
                "http://127.0.0.1:{}/v1/traces",
                receiver.http_port()
            ))
            .with_headers([(TOKEN_HEADER.to_owned(), TOKEN.to_owned())].into())
            .build()
            .expect("exporter");
        export_with_sdk(exporter, "t::http");
        assert_shop_spans(receiver, "t::http");
    });
}

#[test]
fn opentelemetry_otlp_over_grpc_is_received_and_attributed() {
    with_receiver(|receiver, rt| {
        let _guard = rt.enter();
        receiver.open("t::grpc", &[], SpanLimits::default());
        let exporter = grpc_exporter(receiver, Some(TOKEN));
        export_with_sdk(exporter, "t::grpc");
        assert_shop_spans(receiver, "t::grpc");
    });
}

fn grpc_exporter(receiver: &Receiver, token: Option<&str>) -> opentelemetry_otlp::SpanExporter {
    use opentelemetry_otlp::WithTonicConfig;
    let mut metadata = tonic::metadata::MetadataMap::new();
    if let Some(t) = token {
        metadata.insert(TOKEN_HEADER, t.parse().expect("metadata value"));
    }
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://127.0.0.1:{}", receiver.grpc_port()))
        .with_metadata(metadata)
        .build()
        .expect("exporter")
}

/// POSTs with the receiver's token.
fn post(port: u16, content_type: &str, extra_headers: &str, body: &[u8]) -> u16 {
    post_raw(
        port,
        content_type,
        &format!("{TOKEN_HEADER}: {TOKEN}\r\n{extra_headers}"),
        body,
    )
}

fn post_raw(port: u16, content_type: &str, extra_headers: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

const JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"by-address","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

#[test]
fn json_without_a_scenario_attribute_is_attributed_by_sender_address() {
    with_receiver(|receiver, _| {
        receiver.open("t::by-ip", &[LOCAL], SpanLimits::default());
        assert_eq!(
            post(
                receiver.http_port(),
                "application/json",
                "",
                JSON.as_bytes()
            ),
            200
        );
        let spans = receiver.close("t::by-ip", &[LOCAL]).spans;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "by-address");
        assert_eq!(
            post(
                receiver.http_port(),
                "application/json",
                "",
                JSON.as_bytes()
            ),
            200
        );
        assert!(
            receiver.close("t::by-ip", &[]).spans.is_empty(),
            "no longer that scenario's"
        );
        // Kept for whichever scenario that sender turns out to belong to.
        assert_eq!(receiver.take_from(LOCAL).len(), 1);
    });
}

#[test]
fn gzip_bodies_are_accepted() {
    use flate2::write::GzEncoder;
    with_receiver(|receiver, _| {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(JSON.as_bytes()).expect("gzip");
        let body = gz.finish().expect("gzip");
        let code = post(
            receiver.http_port(),
            "application/json",
            "Content-Encoding: gzip\r\n",
            &body,
        );
        assert_eq!(code, 200);
        assert_eq!(receiver.take_from(LOCAL).len(), 1);
    });
}

#[test]
fn hostile_requests_get_4xx_and_the_receiver_keeps_serving() {
    with_receiver(|receiver, _| {
        let port = receiver.http_port();
        let big = vec![b'{'; MAX_BODY + 1];
        let codes = vec![
            post(port, "application/json", "", b"{not json"),
            post(port, "application/json", "", br#"{"resourceSpans": 3}"#),
            post(
                port,
                "application/x-protobuf",
                "",
                b"\xff\xff\xff\xff garbage",
            ),
            post(port, "text/plain", "", b"hello"),
            post(port, "application/json", "", &big),
            post(
                port,
                "application/json",
                "Content-Encoding: gzip\r\n",
                b"not gzip",
            ),
            post(port, "application/json", "", JSON.as_bytes()),
        ];
        assert_eq!(codes, vec![400, 400, 400, 415, 413, 400, 200]);
    });
}

#[test]
fn requests_without_the_run_token_get_401_or_unauthenticated_and_change_nothing() {
    with_receiver(|receiver, rt| {
        receiver.open("t::victim", &[LOCAL], SpanLimits::default());
        let port = receiver.http_port();
        let json = JSON.as_bytes();
        assert_eq!(post_raw(port, "application/json", "", json), 401);
        let wrong = format!("{TOKEN_HEADER}: {TOKEN}0\r\n");
        assert_eq!(post_raw(port, "application/json", &wrong, json), 401);
        let short = format!("{TOKEN_HEADER}: 5ec\r\n");
        assert_eq!(post_raw(port, "application/x-protobuf", &short, b""), 401);
        let _guard = rt.enter();
        for token in [None, Some("nope")] {
            let exporter = grpc_exporter(receiver, token);
            let resource = Resource::builder()
                .with_attribute(KeyValue::new("clnrm.scenario", "t::victim"))
                .build();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = provider.tracer("evil");
            tracer.in_span("injected", |_| {});
            let _ = provider.shutdown();
        }
        assert!(receiver.close("t::victim", &[LOCAL]).spans.is_empty());
        assert!(receiver.take_from(LOCAL).is_empty());
    });
}

#[test]
fn spans_naming_a_scenario_that_is_not_open_are_dropped_and_a_sender_cannot_speak_for_another() {
    with_receiver(|receiver, _| {
        let port = receiver.http_port();
        let for_other = JSON.replace(
            r#""attributes":[]"#,
            r#""attributes":[{"key":"clnrm.scenario","value":{"stringValue":"t::other"}}]"#,
        );
        // No scenario open by that name: from an unknown sender it waits (bounded)
        // for the sender's scenario, but it is never given to "t::other".
        assert_eq!(
            post(port, "application/json", "", for_other.as_bytes()),
            200
        );
        receiver.open("t::other", &[], SpanLimits::default());
        // This sender belongs to "t::mine": naming "t::other" does not move its spans.
        receiver.open("t::mine", &[LOCAL], SpanLimits::default());
        assert_eq!(
            post(port, "application/json", "", for_other.as_bytes()),
            200
        );
        assert!(receiver.close("t::other", &[]).spans.is_empty());
        assert_eq!(receiver.close("t::mine", &[LOCAL]).spans.len(), 2);
    });
}

/// An OTLP-JSON request of `n` spans naming scenario `id`.
fn spans_json(n: usize, id: &str) -> String {
    let spans: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"{i:016x}","name":"s{i}","kind":1}}"#))
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"clnrm.scenario","value":{{"stringValue":"{id}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[test]
fn a_flood_past_the_limits_keeps_the_limits_and_says_so() {
    with_receiver(|receiver, _| {
        let port = receiver.http_port();
        let limits = SpanLimits {
            max_spans: 250,
            max_bytes: 64 * 1024 * 1024,
        };
        receiver.open("t::flood", &[LOCAL], limits);
        let body = spans_json(100, "t::flood");
        for _ in 0..5 {
            assert_eq!(post(port, "application/json", "", body.as_bytes()), 200);
        }
        let got = receiver.close("t::flood", &[LOCAL]);
        assert_eq!(got.spans.len(), 250);
        let over = got.overflow.expect("overflow");
        // The third request overflowed; the last two came from a sender whose
        // scenario was already full, and were answered unread.
        assert_eq!((over.kept, over.dropped, over.unread), (250, 50, 2));
        assert!(over.to_string().contains("max_spans = 250"), "{over}");
        // The byte bound: spans far larger than it allows.
        let small = SpanLimits {
            max_spans: 1_000_000,
            max_bytes: 64 * 1024,
        };
        receiver.open("t::bytes", &[], small);
        let big = spans_json(1_000, "t::bytes");
        assert_eq!(post(port, "application/json", "", big.as_bytes()), 200);
        let got = receiver.close("t::bytes", &[]);
        let kept: usize = got.spans.iter().map(|s| s.approx_bytes()).sum();
        assert!(kept <= 64 * 1024 && got.overflow.is_some(), "{kept}");
    });
}

#[test]
fn a_gzip_bomb_is_refused_without_inflating_it_whole() {
    use flate2::write::GzEncoder;
    with_receiver(|receiver, _| {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_BODY >> 20) + 8 {
            gz.write_all(&zeros).expect("gzip");
        }
        let body = gz.finish().expect("gzip");
        assert!(body.len() < MAX_BODY / 100);
        let code = post(
            receiver.http_port(),
            "application/x-protobuf",
            "Content-Encoding: gzip\r\n",
            &body,
        );
        assert_eq!(code, 413);
    });
}

#[test]
fn it_listens_only_where_it_is_told() {
    with_receiver(|receiver, _| {
        let addrs = receiver.addresses();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert!(addrs.iter().all(|a| a.ip() == LOCAL), "{addrs:?}");
    });
}

#[test]
fn a_scenario_that_expects_spans_waits_past_the_quiet_time_for_its_first() {
    with_receiver(|receiver, rt| {
        receiver.open("t::late", &[LOCAL], SpanLimits::default());
        // A batch exporter on a loaded machine: the first span comes well after
        // the quiet time has passed since the last step.
        let port = receiver.http_port();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            post(port, "application/json", "", JSON.as_bytes())
        });
        rt.block_on(receiver.settle(
            "t::late",
            None,
            true,
            Duration::from_millis(100),
            Duration::from_secs(60),
        ));
        let spans = receiver.close("t::late", &[LOCAL]).spans;
        assert_eq!(late.join().expect("poster"), 200);
        assert_eq!(spans.len(), 1, "{spans:#?}");
    });
}
