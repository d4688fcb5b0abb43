//! clnrm's gRPC client (`clnrm_core::grpc`, what `grpc` steps will call through)
//! against a real gRPC server of another implementation: the Python greeter of
//! `examples/grpc-greeter/app` (grpcio, its reflection service, the OpenTelemetry
//! instrumentation), built from that directory once per run of the tests and started
//! here with its port published on loopback. The same calls with the messages
//! described by the example's `.proto`, compiled in-process, and by the server's
//! reflection service: OK and non-OK statuses with their messages, a server stream
//! collected in order, a method the server does not have.
mod common;

#[path = "common/engine.rs"]
mod engine;

use clnrm_core::grpc::{self, Call, Protos, proto};
use serde_json::json;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "clnrm-test/greeter:latest";

/// The greeter running in a container of its own, removed when dropped.
struct Greeter {
    id: String,
    addr: SocketAddr,
}

impl Greeter {
    fn start() -> Self {
        let context = common::context("examples/grpc-greeter/app");
        // Built as a user of the example would by hand; the engine's cache makes the
        // next run's build instant.
        let context = context.display().to_string();
        engine::docker(&["build", "-q", "-t", IMAGE, &context]);
        let id = engine::docker(&["run", "-d", "--rm", "-p", "127.0.0.1::50051", IMAGE]);
        let text = engine::docker(&["port", &id, "50051/tcp"]);
        let addr: SocketAddr = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("docker port said {text:?}"));
        let greeter = Self { id, addr };
        // Up once its log says so (a TCP connect alone is answered by the engine's
        // proxy before the server listens).
        let start = Instant::now();
        loop {
            let log = Command::new("docker")
                .args(["logs", &greeter.id])
                .output()
                .unwrap_or_else(|e| panic!("docker logs: {e}"));
            if String::from_utf8_lossy(&log.stdout).contains("greeter listening") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the greeter never listened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        greeter
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

async fn call(
    addr: SocketAddr,
    protos: &Protos,
    method: &str,
    body: serde_json::Value,
) -> grpc::Answer {
    let m = protos
        .method(method, "the greeter")
        .unwrap_or_else(|e| panic!("{e}"));
    let request = proto::request(&m, &body).unwrap_or_else(|e| panic!("{e}"));
    grpc::call::call(Call {
        addr,
        authority: "greeter:50051",
        method: &m,
        request,
        metadata: &[("x-team".to_owned(), "qa".to_owned())],
        timeout: Duration::from_secs(10),
    })
    .await
    .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Every call of the test, on the messages `protos` describes.
async fn calls(addr: SocketAddr, protos: &Protos) {
    let hello = call(
        addr,
        protos,
        "demo.greeter.v1.Greeter/SayHello",
        json!({"name": "ada"}),
    )
    .await;
    assert_eq!(hello.code_name(), "OK", "{hello:?}");
    assert_eq!(hello.messages, vec![json!({"message": "Hello, ada!"})]);
    let empty = call(
        addr,
        protos,
        "demo.greeter.v1.Greeter/SayHello",
        json!({"name": ""}),
    )
    .await;
    assert_eq!(
        (empty.code, empty.code_name()),
        (3, "INVALID_ARGUMENT"),
        "{empty:?}"
    );
    assert_eq!(empty.message, "name is empty");
    assert!(empty.messages.is_empty());
    let stream = call(
        addr,
        protos,
        "demo.greeter.v1.Greeter/SayHellos",
        json!({"name": "ada", "times": 3}),
    )
    .await;
    assert_eq!(stream.code_name(), "OK", "{stream:?}");
    let indices: Vec<i64> = stream
        .messages
        .iter()
        .filter_map(|m| m["index"].as_i64())
        .collect();
    assert_eq!(indices, vec![1, 2, 3], "{stream:?}");
    assert_eq!(stream.messages[2]["message"], "Hello #3, ada!");
    let out = call(
        addr,
        protos,
        "demo.greeter.v1.Greeter/SayHellos",
        json!({"name": "ada", "times": 0}),
    )
    .await;
    assert_eq!(out.code_name(), "OUT_OF_RANGE", "{out:?}");
    assert!(out.messages.is_empty(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_python_grpc_server_with_its_proto_file_and_with_its_reflection() {
    let greeter = Greeter::start();
    let context = common::context("examples/grpc-greeter/app");
    let files =
        Protos::compile(&context, &["greeter.proto".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
    calls(greeter.addr, &files).await;

    let reflected = grpc::descriptors(
        greeter.addr,
        "greeter:50051",
        "demo.greeter.v1.Greeter",
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    calls(greeter.addr, &reflected).await;
    // What the server does not have is said as the reflection service says it.
    let e = grpc::descriptors(
        greeter.addr,
        "greeter:50051",
        "demo.greeter.v1.Nobody",
        Duration::from_secs(10),
    )
    .await
    .err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("NOT_FOUND")),
        "{e:?}"
    );
    let e = reflected
        .method("demo.greeter.v1.Greeter/SayGoodbye", "its reflection")
        .err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("no method \"SayGoodbye\"")),
        "{e:?}"
    );
}
