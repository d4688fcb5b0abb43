//! The runs service's figures under a database restart and under overload (SPEC §16,
//! issue 32), on a PostgreSQL cluster of the bench's own (Debian's binaries, run as
//! the `postgres` user: needs root) on loopback, `clnrm serve --no-worker`:
//! - accept latency while PostgreSQL restarts: one client submits a small run every
//!   20 ms for 12 s, each sent again with its `Idempotency-Key` after a 503 or a lost
//!   connection until it is accepted; PostgreSQL is restarted (`pg_ctl restart -m
//!   fast`) 4 s in. Prints p50/p99/max of the time from a submission's first sending
//!   to its 201, for those sent in the restart's window (from the restart to 1 s after
//!   the server is back) and for the others, and how many answers were 503.
//! - submissions per second before 503s start: `--max-queued 2000`, four client
//!   threads submit as fast as the server answers until the first 503.
//!
//! Run with `cargo bench -p clnrm-cli --bench serve_faults`.

#[path = "../tests/common/engine.rs"]
mod engine;
#[path = "../tests/common/pg_cluster.rs"]
mod pg_cluster;
#[path = "../tests/common/server.rs"]
mod server;

use pg_cluster::PgCluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The run submitted: one scenario (never run: the server has no worker).
fn body() -> String {
    serde_json::json!({"files": {"tests/a.clnrm.toml": format!(
        "[meta]\nname = \"b\"\nversion = \"1\"\n\n[service.app]\nimage = \"{}\"\n\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n",
        engine::IMAGE
    )}})
    .to_string()
}

/// A cluster of the bench's own on a free loopback port, in `dir` (under the bench's
/// temporary directory, which alone is made searchable by `postgres`).
fn postgres(dir: &Path) -> PgCluster {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    PgCluster::start(dir, None, "127.0.0.1", port)
}

/// One submission attempt: the status, or none (no connection, no answer).
fn submit(addr: SocketAddr, token: &str, key: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let body = body();
    let head = format!(
        "POST /api/v1/runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    // Fewer than 100 samples have no p99 of their own: the max says it.
    let p99 = if v.len() >= 100 {
        format!(", p99 {:.1} ms", percentile(&v, 0.99))
    } else {
        String::new()
    };
    format!(
        "p50 {:.1} ms{p99}, max {:.1} ms of {} submissions",
        percentile(&v, 0.5),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

/// `clnrm serve --no-worker` on `url`, and a token of scope `run`.
fn serve(dir: &Path, url: &str, args: &[&str]) -> (server::Proc, String) {
    let mut all = vec!["--no-worker"];
    all.extend_from_slice(args);
    let srv = server::serve_on(dir, url, &all);
    let token = server::token_on(dir, url, "run");
    (srv, token)
}

fn restart_window(dir: &Path) {
    let pg = postgres(dir);
    let (srv, token) = serve(dir, &pg.url(), &[]);
    let addr: SocketAddr = srv.addr.parse().unwrap();
    // (sent at, latency to the 201) for every submission; 503s seen.
    let done: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let unavailable = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (done, unavailable, stop) = (done.clone(), unavailable.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (key, first) = (format!("bench-{i}"), Instant::now());
                loop {
                    match submit(addr, &token, &key) {
                        Some(201) => break,
                        Some(503) => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(other) => panic!("submission {i}: {other}"),
                        None => {}
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                done.lock()
                    .unwrap()
                    .push((first, first.elapsed().as_secs_f64() * 1e3));
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(4));
    let restart = Instant::now();
    pg.restart();
    let back = Instant::now() + Duration::from_secs(1);
    let restart_took = restart.elapsed();
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let done = done.lock().unwrap();
    let (inside, outside): (Vec<_>, Vec<_>) = done
        .iter()
        .partition(|(at, _)| *at >= restart && *at <= back);
    println!(
        "accept latency while PostgreSQL restarts ({:.0} ms for pg_ctl restart -m fast; window to 1 s after): {}; 503 answers: {}",
        restart_took.as_secs_f64() * 1e3,
        summary(inside.iter().map(|(_, l)| *l).collect()),
        unavailable.load(Ordering::Relaxed)
    );
    println!(
        "accept latency outside that window: {}",
        summary(outside.iter().map(|(_, l)| *l).collect())
    );
}

fn until_full(dir: &Path) {
    const QUEUE: usize = 2000;
    let pg = postgres(&dir.join("full"));
    let (srv, token) = serve(dir, &pg.url(), &["--max-queued", &QUEUE.to_string()]);
    let addr: SocketAddr = srv.addr.parse().unwrap();
    let (accepted, full) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let first_full: Arc<Mutex<Option<Instant>>> = Arc::default();
    let start = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (accepted, full, first_full, token) = (
                accepted.clone(),
                full.clone(),
                first_full.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !full.load(Ordering::Relaxed) {
                    match submit(addr, &token, &format!("full-{c}-{i}")) {
                        Some(201) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(503) => {
                            first_full.lock().unwrap().get_or_insert_with(Instant::now);
                            full.store(true, Ordering::Relaxed);
                        }
                        // No answer (a connection refused under the load): again.
                        None => {}
                        Some(other) => panic!("{other}"),
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let took = first_full
        .lock()
        .unwrap()
        .map_or(start.elapsed(), |t| t - start);
    let n = accepted.load(Ordering::Relaxed);
    println!(
        "submissions accepted before the first 503 (--max-queued {QUEUE}, 4 clients, a connection each per submission): {n} in {:.2} s = {:.0}/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Only this directory: never what holds it (/tmp keeps its own mode).
    let out = Command::new("chmod")
        .args(["755", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::create_dir_all(dir.path().join("full")).unwrap();
    restart_window(dir.path());
    until_full(dir.path());
}
