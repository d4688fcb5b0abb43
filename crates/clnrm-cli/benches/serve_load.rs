//! The runs service under load (SPEC §9): 200 clients submit a small run at the same
//! moment (a barrier), each over a connection of its own opened beforehand, from one
//! client thread; every run must be accepted
//! (201) and then finished by the server's workers. Prints the accept latency (p50,
//! p99, max; target p99 ≤ 100 ms) and the event latency: for each event a client
//! following a run receives, the time from when the run emitted it (`at_ms`, stamped
//! by the worker) to when the client read it (target median ≤ 50 ms). Once on SQLite,
//! once on PostgreSQL (`scripts/postgres.sh`), against the real engine.
//!
//! Run with `cargo bench -p clnrm-cli --bench serve_load`.

#[path = "../tests/common/engine.rs"]
mod engine;
#[path = "../tests/common/server.rs"]
mod server;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CLIENTS: usize = 200;

fn file() -> String {
    format!(
        "[meta]\nname = \"l\"\nversion = \"1\"\n\n[service.app]\nimage = \"{}\"\n\n[[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\nname = \"a\"\ncommand = [\"true\"]\n\n[[scenario.steps]]\nname = \"b\"\ncommand = [\"sleep\", \"0.05\"]\n",
        engine::IMAGE
    )
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Follows run `id`'s events live; each one's delay from `at_ms` to its arrival.
fn follow(addr: &str, token: &str, id: &str) -> Vec<f64> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/v1/runs/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut delays = Vec::new();
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { break };
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let arrived = now_ms();
        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        if let Some(at) = v["at_ms"].as_f64() {
            delays.push(arrived - at);
        }
        if v["event"] == "run_finished" {
            break;
        }
    }
    delays
}

/// `CLIENTS` submissions at the same moment from one client thread (so that the
/// clients take as little as they can of the 2 cores the server runs on), each on a
/// connection of its own opened beforehand: each one's time from sending the request
/// to reading the whole answer, and the run id.
fn submit_all(addr: &str, token: &str, body: &str) -> Vec<(f64, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "POST /api/v1/runs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conns = Vec::new();
        for _ in 0..CLIENTS {
            conns.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let go = Arc::new(tokio::sync::Barrier::new(CLIENTS));
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let (request, go) = (request.clone(), go.clone());
                tokio::spawn(async move {
                    go.wait().await;
                    let t = Instant::now();
                    c.write_all(request.as_bytes()).await.unwrap();
                    let mut answer = Vec::new();
                    c.read_to_end(&mut answer).await.unwrap();
                    let took = t.elapsed().as_secs_f64() * 1000.0;
                    let text = String::from_utf8_lossy(&answer).into_owned();
                    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
                    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(json).unwrap();
                    (took, v["id"].as_str().unwrap().to_owned())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
}

fn load(name: &str, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let srv = server::serve_on(dir.path(), url, &["--workers", "2"]);
    let token = server::token_on(dir.path(), url, "run");
    let body = serde_json::json!({"files": {"tests/l.clnrm.toml": file()}});
    // Warm the workers' pools (and the server's first connections) with one run.
    let warm = server::post_json(&srv.addr, "/api/v1/runs", &token, &body).json();
    let warm_id = warm["id"].as_str().unwrap().to_owned();
    follow(&srv.addr, &token, &warm_id);

    let started = Instant::now();
    let results = submit_all(&srv.addr, &token, &body.to_string());
    // Clients follow the last 20 runs submitted while the queue drains.
    let followers: Vec<_> = results[CLIENTS - 20..]
        .iter()
        .map(|r| {
            let (addr, token, id) = (srv.addr.clone(), token.clone(), r.1.clone());
            std::thread::spawn(move || follow(&addr, &token, &id))
        })
        .collect();
    let mut accept: Vec<f64> = results.iter().map(|r| r.0).collect();
    accept.sort_by(f64::total_cmp);
    let ids: Vec<String> = results.into_iter().map(|r| r.1).collect();
    server::until("every run to finish", Duration::from_secs(600), || {
        let page = server::get(&srv.addr, "/api/v1/runs?status=passed&limit=500", &token).json();
        page["runs"].as_array().map_or(0, Vec::len) > CLIENTS
    });
    let drained = started.elapsed();
    for id in &ids {
        let run = server::get(&srv.addr, &format!("/api/v1/runs/{id}"), &token).json();
        assert_eq!(run["status"], "passed", "{run:#}");
        assert_eq!(run["attempts"], 1, "{run:#}");
    }
    // Event latency over every event of those runs, followed while queued and running.
    let mut delays: Vec<f64> = followers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    delays.sort_by(f64::total_cmp);
    println!(
        "{name}: {CLIENTS} submissions at once, all 201: accept latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; all {CLIENTS} runs passed (1 attempt each) in {:.1} s with 2 workers",
        percentile(&accept, 0.5),
        percentile(&accept, 0.99),
        accept[accept.len() - 1],
        drained.as_secs_f64()
    );
    println!(
        "{name}: event latency (run emits → SSE client reads), {} events: median {:.1} ms, max {:.1} ms",
        delays.len(),
        percentile(&delays, 0.5),
        delays[delays.len() - 1]
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sqlite_dir = tempfile::tempdir().unwrap();
    load("SQLite", &server::database(sqlite_dir.path()));
    load("PostgreSQL", &server::postgres());
}
