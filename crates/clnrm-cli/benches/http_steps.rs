//! What an `http` step costs clnrm over the request itself (SPEC §7.4; target ≤ 2 ms),
//! against the real engine and `tests/fixtures/tiny-http.c` built static into a
//! `FROM scratch` image:
//! - clnrm: whole-process `clnrm run` of one scenario with 1 + 1000 `GET /hello`
//!   steps against the same with 1 + 1 step; the difference over 999 is what one more
//!   step costs (request, checks, its span, its part of the report);
//! - the request itself: 1000 sequential requests by a plain client in this process
//!   (a fresh connection each, as clnrm makes) to the same container's published port.
//!
//! Run with `cargo bench -p clnrm-cli --bench http_steps`. Medians of `ROUNDS` rounds.

#[path = "../tests/common/engine.rs"]
mod engine;
#[path = "common/step_cost.rs"]
mod step_cost;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const STEPS: usize = 1000;

fn project(dir: &Path, tag: &str, steps: usize) {
    let mut text = format!(
        "[meta]\nname = \"h\"\nversion = \"1\"\n\n[service.web]\nimage = \"{tag}\"\n\n[[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\nname = \"ready\"\nhttp = {{ url = \"http://web:8080/hello\" }}\nretry = {{ attempts = 100, interval_ms = 50 }}\n"
    );
    for i in 0..steps {
        text.push_str(&format!(
            "\n[[scenario.steps]]\nname = \"get {i}\"\nhttp = {{ url = \"http://web:8080/hello\" }}\nexpected_json = {{ \"$.n\" = 3 }}\n"
        ));
    }
    std::fs::create_dir_all(dir.join(".clnrm")).expect("project");
    std::fs::create_dir_all(dir.join("tests")).expect("tests");
    std::fs::write(dir.join("tests/h.clnrm.toml"), text).expect("file");
}

/// One request the way a minimal client makes it: connect, send, read to the end.
fn request(port: u16) -> Duration {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).ok();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: web:8080\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "bad answer");
    start.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tag = engine::tiny_http_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, many) = (dir.path().join("one"), dir.path().join("many"));
    project(&one, tag, 1);
    project(&many, tag, STEPS);

    // The request itself, against a container of the same image.
    let id = String::from_utf8(
        Command::new("docker")
            .args(["run", "-d", "--rm", "-p", "127.0.0.1::8080", tag])
            .output()
            .expect("docker run")
            .stdout,
    )
    .expect("id");
    let id = id.trim().to_owned();
    let port_line = String::from_utf8(
        Command::new("docker")
            .args(["port", &id, "8080/tcp"])
            .output()
            .expect("docker port")
            .stdout,
    )
    .expect("port");
    let port: u16 = port_line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("a published port");
    let ready = Instant::now();
    while std::panic::catch_unwind(|| request(port)).is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(10),
            "server not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bare = step_cost::bare_cost(ROUNDS, STEPS, || request(port));
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    step_cost::report(("http", "request"), bare, (ROUNDS, STEPS), (&one, &many));
}
