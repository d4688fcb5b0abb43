//! The OTLP receiver against real clients: opentelemetry-otlp exporting over HTTP
//! protobuf and gRPC, OTLP-JSON over plain HTTP, and hostile requests.

use clnrm_core::otel::Receiver;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

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
    let spans = receiver.take(scenario);
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
    let receiver = rt.block_on(Receiver::start(LOCAL)).expect("start");
    test(&receiver, &rt);
}

#[test]
fn opentelemetry_otlp_over_http_protobuf_is_received_and_attributed() {
    with_receiver(|receiver, rt| {
        // The HTTP client needs the runtime's reactor; the simple processor exports
        // from this thread.
        let _guard = rt.enter();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!(
                "http://127.0.0.1:{}/v1/traces",
                receiver.http_port()
            ))
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
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://127.0.0.1:{}", receiver.grpc_port()))
            .build()
            .expect("exporter");
        export_with_sdk(exporter, "t::grpc");
        assert_shop_spans(receiver, "t::grpc");
    });
}

fn post(port: u16, content_type: &str, extra_headers: &str, body: &[u8]) -> u16 {
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
        receiver.assign(&[LOCAL], "t::by-ip");
        assert_eq!(
            post(
                receiver.http_port(),
                "application/json",
                "",
                JSON.as_bytes()
            ),
            200
        );
        let spans = receiver.take("t::by-ip");
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "by-address");
        receiver.unassign(&[LOCAL]);
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
            receiver.take("t::by-ip").is_empty(),
            "no longer that scenario's"
        );
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
        let big = vec![b'{'; clnrm_core::otel::receiver::MAX_BODY + 1];
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
