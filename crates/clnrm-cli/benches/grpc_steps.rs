//! What a `grpc` step costs clnrm over the call itself (SPEC §17; target ≤ 2 ms, as for
//! `http` steps), against the real engine and the Python greeter of
//! `examples/grpc-greeter/app` (grpcio), built from source by clnrm:
//! - clnrm: whole-process `clnrm run` of one scenario with 1 + `STEPS` unary
//!   `SayHello` calls (messages from the example's `.proto`, `expected_json` checked)
//!   against the same with 1 + 1; the difference over `STEPS` − 1 is what one more
//!   step costs (the call, the `.proto` compiled, the request from JSON, the checks,
//!   its span, its part of the report);
//! - the call itself: `STEPS` sequential calls through `clnrm_core::grpc::call` in this
//!   process (a fresh connection each, as a step makes), descriptors compiled once, to
//!   a container of the same image.
//!
//! Run with `cargo bench -p clnrm-cli --bench grpc_steps`. Medians of `ROUNDS` rounds.

#[path = "../tests/common/engine.rs"]
mod engine;
#[path = "common/step_cost.rs"]
mod step_cost;

use step_cost::clnrm;

use clnrm_core::grpc::{Call, Protos, proto};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const STEPS: usize = 300;

fn app() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/grpc-greeter/app")
}

fn project(dir: &Path, steps: usize) {
    let app = app().canonicalize().expect("the example's app");
    let mut text = format!(
        "[meta]\nname = \"g\"\nversion = \"1\"\n\n[service.hello]\nbuild = \"{}\"\nhealth_check = {{ cmd = [\"bash\", \"-c\", \"exec 3<>/dev/tcp/127.0.0.1/50051\"], interval_ms = 100, retries = 200 }}\n\n[[scenario]]\nname = \"s\"\nservice = \"hello\"\n",
        app.display()
    );
    for i in 0..steps {
        text.push_str(&format!(
            "\n[[scenario.steps]]\nname = \"hello {i}\"\ngrpc = {{ target = \"hello:50051\", method = \"demo.greeter.v1.Greeter/SayHello\", json = {{ name = \"ada\" }}, proto = [\"{}\"] }}\nexpected_json = {{ \"$.message\" = \"Hello, ada!\" }}\n",
            app.join("greeter.proto").display()
        ));
    }
    std::fs::create_dir_all(dir.join(".clnrm")).expect("project");
    std::fs::create_dir_all(dir.join("tests")).expect("tests");
    std::fs::write(dir.join("tests/g.clnrm.toml"), text).expect("file");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, many) = (dir.path().join("one"), dir.path().join("many"));
    project(&one, 1);
    project(&many, STEPS);
    // Built once, outside the timings.
    clnrm(&one);

    // The call itself, against a container of the image clnrm built.
    let record = std::fs::read_to_string(one.join(".clnrm/cache/builds.json")).expect("builds");
    let tag = serde_json::from_str::<serde_json::Value>(&record).expect("json")["images"][0]["tag"]
        .as_str()
        .expect("a built image")
        .to_owned();
    let id = engine::docker(&["run", "-d", "--rm", "-p", "127.0.0.1::50051", &tag]);
    let port_line = engine::docker(&["port", &id, "50051/tcp"]);
    let addr: std::net::SocketAddr = port_line
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a published port");
    let protos = Protos::compile(&app(), &["greeter.proto".to_owned()]).expect("protos");
    let method = protos
        .method("demo.greeter.v1.Greeter/SayHello", "greeter.proto")
        .expect("method");
    let request = proto::request(&method, &serde_json::json!({"name": "ada"})).expect("request");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let call = || {
        let start = Instant::now();
        let answer = rt
            .block_on(clnrm_core::grpc::call::call(Call {
                addr,
                authority: "hello:50051",
                method: &method,
                request: request.clone(),
                metadata: &[],
                timeout: Duration::from_secs(10),
            }))
            .ok()
            .filter(|a| a.code == 0);
        (start.elapsed(), answer.is_some())
    };
    let ready = Instant::now();
    while !call().1 {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bare = step_cost::bare_cost(ROUNDS, STEPS, || call().0);
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    step_cost::report(("grpc", "call"), bare, (ROUNDS, STEPS), (&one, &many));
}
