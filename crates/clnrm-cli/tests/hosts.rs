//! The runs service across hosts, under faults (SPEC §16, issue 32): PostgreSQL, `clnrm
//! serve` and three `clnrm worker`s each on a host of its own (a network namespace;
//! `common/hosts.rs`), every worker reaching the engine's socket as it would its own
//! engine; the test is the client. While 200 runs are submitted, one fault every few
//! seconds, chosen by a fixed seed: a worker's link cut past its lease, a worker
//! stopped (SIGSTOP) past its lease, a worker killed (-9) and started again,
//! PostgreSQL restarted, `serve` killed and started again, `serve`'s link cut. Then:
//! every accepted run ended exactly once, none was stored twice (the client's retries
//! carry an `Idempotency-Key`), each scenario's result is recorded once, and nothing of
//! the workers' is left on the engine. It prints the counts.
//!
//! Latency is not among the faults: it needs the kernel's `netem` queueing discipline,
//! which this machine's kernel does not have.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/hosts.rs"]
mod hosts;

use hosts::{Host, Net, sh};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUNS: usize = 200;
const LEASE_SECS: u64 = 3;
const SEED: u64 = 0x5eed_2026_c1a2;
const PORT: u16 = 7878;

/// A generator of the faults' choices: the same sequence every time (xorshift64).
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// PostgreSQL on a host: a cluster of its own, listening on the host's address.
struct Postgres {
    host: Host,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
}

impl Postgres {
    fn start(host: Host, dir: &Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path()).max())
            .map(|v| v.join("bin"))
            .expect("PostgreSQL's binaries (scripts/setup.sh installs Debian's postgresql)");
        let (data, sockets) = (dir.join("pg"), dir.join("pg-sockets"));
        for d in [&data, &sockets] {
            std::fs::create_dir_all(d).unwrap();
            sh("chown", &["postgres:", &d.display().to_string()]);
        }
        let pg = Self {
            host,
            bin,
            data,
            sockets,
        };
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
            ],
        );
        let hba = pg.data.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).unwrap();
        text.push_str(&format!("host all all {}/24 trust\n", pg.host.ip));
        std::fs::write(&hba, text).unwrap();
        pg.ctl(&["start"]);
        pg
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let tool = self.bin.join(program).display().to_string();
        let mut all = vec!["-u", "postgres", "--", tool.as_str()];
        all.extend_from_slice(args);
        let out = self.host.command("runuser").args(&all).output().unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &[&str]) {
        let options = format!(
            "-p 5432 -k {} -c listen_addresses={} -c fsync=off -c synchronous_commit=off -c max_connections=200",
            self.sockets.display(),
            self.host.ip
        );
        let data = self.data.display().to_string();
        let log = self.data.join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-o", &options];
        if action == ["restart"] {
            args.extend(["-m", "fast"]);
        }
        args.extend_from_slice(action);
        self.as_postgres("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@{}:5432/postgres", self.host.ip)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let tool = self.bin.join("pg_ctl").display().to_string();
        let _ = self
            .host
            .command("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &tool,
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

/// A `clnrm` process on a host, its stderr in a file; killed when dropped.
struct Clnrm {
    child: Child,
}

impl Clnrm {
    fn spawn(host: &Host, dir: &Path, name: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = host
            .command(env!("CARGO_BIN_EXE_clnrm"))
            .current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child }
    }

    fn signal(&self, sig: &str) {
        sh("kill", &[sig, &self.child.id().to_string()]);
    }
}

impl Drop for Clnrm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request to `addr`, bounded in time; (status, headers' text, body).
fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Result<(u16, String, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_write_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").ok_or("no answer")?;
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((status, headers.to_owned(), body.to_owned()))
}

/// What the client saw.
#[derive(Default)]
struct Submitted {
    /// Accepted run ids, by submission.
    ids: BTreeMap<usize, String>,
    /// Attempts that got no answer or a 5xx, sent again with the same key.
    retried: usize,
    /// Answers that were a replay of an earlier attempt's run.
    replayed: usize,
}

/// Submits `RUNS` runs, each sent again with its key until it is accepted.
fn submit_all(addr: SocketAddr, token: &str, into: &Mutex<Submitted>) {
    for i in 0..RUNS {
        let body = json!({"files": {"tests/a.clnrm.toml": format!(
            "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{}\"\n\n[[scenario]]\nname = \"run {i}\"\nrun = \"echo run-{i}\"\n",
            engine::IMAGE
        )}})
        .to_string();
        let head = format!(
            "POST /api/v1/runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: submission-{i}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match request(addr, &head, body.as_bytes()) {
                Ok((201, headers, answer)) => {
                    let id = serde_json::from_str::<Value>(&answer).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let mut s = into.lock().unwrap();
                    if headers
                        .to_ascii_lowercase()
                        .contains("idempotent-replayed: true")
                    {
                        s.replayed += 1;
                    }
                    s.ids.insert(i, id);
                    break;
                }
                Ok((status, _, answer)) if status < 500 => {
                    panic!("submission {i}: {status}: {answer}")
                }
                _ => into.lock().unwrap().retried += 1,
            }
            assert!(
                Instant::now() < deadline,
                "submission {i} was never accepted"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        std::thread::sleep(Duration::from_millis(120));
    }
}

/// The rows of `sql` on the database at `url` (each row's columns as text).
fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    use sqlx::{Connection, Row};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<String, _>(i)
                            .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect()
    })
}

#[test]
fn runs_flow_through_partitions_restarts_and_kills_and_each_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    sh("chmod", &["755", &dir.path().display().to_string()]);
    let mut net = Net::new();
    let db_host = net.host("db");
    let api = net.host("api");
    let worker_hosts: Vec<Host> = (0..3).map(|i| net.host(&format!("w{i}"))).collect();
    let pg = Postgres::start(db_host, dir.path());
    let url = pg.url();
    let lease = LEASE_SECS.to_string();

    let token_out = api
        .command(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir.path())
        .args([
            "serve",
            "token",
            "create",
            "--scope",
            "run",
            "--database",
            &url,
        ])
        .output()
        .unwrap();
    assert!(token_out.status.success(), "{token_out:?}");
    let token = String::from_utf8_lossy(&token_out.stdout).trim().to_owned();

    let listen = format!("{}:{PORT}", api.ip);
    let serve_args = [
        "serve",
        "--listen",
        &listen,
        "--database",
        &url,
        "--no-worker",
        "--lease-secs",
        &lease,
    ];
    let addr: SocketAddr = listen.parse().unwrap();
    let listening = |what: &str| {
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what} never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut serve = Clnrm::spawn(&api, dir.path(), "serve", &serve_args);
    listening("serve");
    let worker_args = ["worker", "--database", &url, "--lease-secs", &lease];
    let mut workers: Vec<Clnrm> = worker_hosts
        .iter()
        .enumerate()
        .map(|(i, h)| Clnrm::spawn(h, dir.path(), &format!("worker{i}"), &worker_args))
        .collect();
    let mut pids: BTreeSet<u32> = workers.iter().map(|w| w.child.id()).collect();

    let submitted = Arc::new(Mutex::new(Submitted::default()));
    let client = {
        let (submitted, token) = (submitted.clone(), token.clone());
        std::thread::spawn(move || submit_all(addr, &token, &submitted))
    };

    // One fault every few seconds while the runs come in.
    let mut seeded = Seeded(SEED);
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    let lease = Duration::from_secs(LEASE_SECS);
    // Each kind once in every six faults, in an order the seed gives; at least two
    // rounds, and on until every run was submitted.
    let mut order: Vec<u64> = Vec::new();
    while !client.is_finished() || faults.values().sum::<usize>() < 12 {
        if order.is_empty() {
            order = (0..6).collect();
            for k in (1..order.len()).rev() {
                order.swap(k, seeded.below(k as u64 + 1) as usize);
            }
        }
        std::thread::sleep(Duration::from_millis(1000 + 100 * seeded.below(10)));
        let w = seeded.below(workers.len() as u64) as usize;
        let kind = match order.pop().unwrap_or_default() {
            0 => {
                worker_hosts[w].cut();
                std::thread::sleep(lease + Duration::from_secs(2));
                worker_hosts[w].heal();
                "worker's link cut past its lease"
            }
            1 => {
                workers[w].signal("-STOP");
                std::thread::sleep(lease + Duration::from_secs(1));
                workers[w].signal("-CONT");
                "worker stopped past its lease"
            }
            2 => {
                workers[w].signal("-KILL");
                let _ = workers[w].child.wait();
                workers[w] = Clnrm::spawn(
                    &worker_hosts[w],
                    dir.path(),
                    &format!("worker{w}"),
                    &worker_args,
                );
                pids.insert(workers[w].child.id());
                "worker killed and started again"
            }
            3 => {
                pg.ctl(&["restart"]);
                "PostgreSQL restarted"
            }
            4 => {
                serve.signal("-KILL");
                let _ = serve.child.wait();
                serve = Clnrm::spawn(&api, dir.path(), "serve", &serve_args);
                listening("serve, started again");
                "serve killed and started again"
            }
            _ => {
                api.cut();
                std::thread::sleep(Duration::from_secs(2));
                api.heal();
                "serve's link cut"
            }
        };
        *faults.entry(kind).or_default() += 1;
    }
    client.join().expect("the client");

    // Every accepted run ends.
    let start = Instant::now();
    loop {
        let open = query(
            &url,
            "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')",
        );
        if open[0][0] == "0" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{} runs never ended; logs in {}",
            open[0][0],
            dir.path().display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for w in &workers {
        w.signal("-TERM");
    }
    for w in &mut workers {
        let _ = w.child.wait();
    }

    let submitted = submitted.lock().unwrap();
    let accepted: BTreeSet<&String> = submitted.ids.values().collect();
    assert_eq!(accepted.len(), RUNS, "each submission made its own run");
    let stored = query(&url, "SELECT id, status, COALESCE(summary, '') FROM runs");
    let stored_ids: BTreeSet<&String> = stored.iter().map(|r| &r[0]).collect();
    assert_eq!(
        stored_ids, accepted,
        "exactly the accepted runs are stored: none lost, none made twice by a retry"
    );
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &stored {
        *outcomes.entry(r[1].as_str()).or_default() += 1;
        // A run ends passed, or as an error only when its worker was lost three
        // times (the service's bound on a run that kills its workers).
        assert!(
            r[1] == "passed" || (r[1] == "error" && r[2].contains("its worker was lost")),
            "run {} ended {} ({}); logs in {}",
            r[0],
            r[1],
            r[2],
            dir.path().display()
        );
    }
    let recorded = query(
        &url,
        "SELECT run_id, COUNT(*) FROM scenario_runs GROUP BY run_id",
    );
    let twice: Vec<_> = recorded.iter().filter(|r| r[1] != "1").collect();
    assert!(
        twice.is_empty(),
        "results recorded more than once: {twice:?}"
    );
    assert_eq!(
        recorded.len(),
        outcomes.get("passed").copied().unwrap_or(0),
        "every passed run's scenario is recorded"
    );

    // Nothing of any worker process, killed ones included, is left on the engine.
    for pid in &pids {
        for what in [["ps", "-a"], ["network", "ls"]] {
            let out = std::process::Command::new("docker")
                .args(what)
                .args(["-q", "--filter", &format!("label=clnrm.pid={pid}")])
                .output()
                .unwrap();
            let left = String::from_utf8_lossy(&out.stdout);
            assert!(
                left.trim().is_empty(),
                "worker {pid} left {} {left}",
                what[0]
            );
        }
    }
    let lost = RUNS - accepted.len();
    let again = query(&url, "SELECT COUNT(*) FROM runs WHERE attempts > 1");
    println!(
        "{RUNS} runs submitted ({} attempts sent again, {} answered with the run of an earlier attempt); faults: {faults:?}; outcomes: {outcomes:?}, {} claimed more than once; lost {lost}, duplicated {}",
        submitted.retried,
        submitted.replayed,
        again[0][0],
        stored.len() - accepted.len()
    );
}
