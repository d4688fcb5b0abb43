//! A `clnrm serve` (or `clnrm worker`) process for a test, on a free port and a
//! database of its own, and a minimal HTTP/1.1 client for it (a fresh connection per
//! request, `Connection: close`): enough for JSON, SSE and uploads.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `clnrm serve` or `clnrm worker`; killed when dropped.
pub struct Proc {
    pub child: Child,
    /// `127.0.0.1:PORT` (serve only).
    pub addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database URL of a test's directory.
pub fn database(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("server.db").display())
}

/// A new, empty database on the PostgreSQL server of the tests (`scripts/postgres.sh`).
pub fn postgres() -> String {
    use sqlx::{Connection, Executor};
    let base = std::env::var("CLNRM_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into());
    let name = format!("clnrm_cli_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {base} does not answer ({e}); start it with scripts/postgres.sh"
                )
            });
        let drop = format!("DROP DATABASE IF EXISTS {name}");
        c.execute(drop.as_str()).await.expect("drop");
        let create = format!("CREATE DATABASE {name}");
        c.execute(create.as_str()).await.expect("create");
    });
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    format!("{server}/{name}")
}

/// `clnrm serve --listen 127.0.0.1:0 --database <dir>/server.db ARGS`, once it listens.
pub fn serve(dir: &Path, args: &[&str]) -> Proc {
    serve_on(dir, &database(dir), args)
}

/// `clnrm serve --listen 127.0.0.1:0 --database URL ARGS` in `dir`, once it listens.
pub fn serve_on(dir: &Path, url: &str, args: &[&str]) -> Proc {
    serve_with(dir, url, args, &[])
}

/// `serve_on` with `env` set in the server's environment.
pub fn serve_with(dir: &Path, url: &str, args: &[&str], env: &[(&str, String)]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", url])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("clnrm serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("clnrm serve did not say where it listens: {first}"))
        .to_owned();
    // Keep draining stderr so that the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Proc { child, addr }
}

/// `clnrm worker --database <dir>/server.db ARGS`.
pub fn worker(dir: &Path, args: &[&str]) -> Proc {
    worker_on(dir, &database(dir), args)
}

/// `clnrm worker --database URL ARGS` in `dir`.
pub fn worker_on(dir: &Path, url: &str, args: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["worker", "--database", url])
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("clnrm worker");
    Proc {
        child,
        addr: String::new(),
    }
}

/// A token of `scope` in `dir`'s database.
pub fn token(dir: &Path, scope: &str) -> String {
    token_on(dir, &database(dir), scope)
}

/// A token of `scope` in the database at `url`.
pub fn token_on(dir: &Path, url: &str, scope: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args([
            "serve",
            "token",
            "create",
            "--scope",
            scope,
            "--database",
            url,
        ])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request; `headers` as (name, value).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// A GET with a bearer token.
pub fn get(addr: &str, path: &str, token: &str) -> Answer {
    let auth = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", &auth)], b"")
}

/// A JSON POST with a bearer token.
pub fn post_json(addr: &str, path: &str, token: &str, body: &serde_json::Value) -> Answer {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// One SSE event.
#[derive(Clone, Debug, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: serde_json::Value,
}

/// The events of `GET path` until the server ends the stream.
pub fn events(addr: &str, path: &str, token: &str, last_id: Option<&str>) -> Vec<Sse> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Accept", "text/event-stream"),
    ];
    if let Some(id) = last_id {
        headers.push(("Last-Event-ID", id));
    }
    let a = request(addr, "GET", path, &headers, b"");
    assert_eq!(a.status, 200, "{}", a.body);
    let mut out = Vec::new();
    for block in a.body.split("\n\n") {
        let mut e = Sse {
            id: None,
            event: String::new(),
            data: serde_json::Value::Null,
        };
        for line in block.lines() {
            if let Some(v) = line
                .strip_prefix("id: ")
                .or_else(|| line.strip_prefix("id:"))
            {
                e.id = Some(v.to_owned());
            } else if let Some(v) = line
                .strip_prefix("event: ")
                .or_else(|| line.strip_prefix("event:"))
            {
                e.event = v.to_owned();
            } else if let Some(v) = line
                .strip_prefix("data: ")
                .or_else(|| line.strip_prefix("data:"))
            {
                e.data = serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.to_owned()));
            }
        }
        if !e.event.is_empty() {
            out.push(e);
        }
    }
    out
}

/// Waits until `cond` holds (at most `limit`).
pub fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `.tar.gz` of `files` (path, content), paths written as given (even `..`).
pub fn tar_gz(files: &[(&str, &[u8])], symlink: Option<(&str, &str)>) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        t.append(&h, *data).expect("append");
    }
    if let Some((path, target)) = symlink {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        t.append_link(&mut h, path, target).expect("link");
    }
    let raw = t.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    gz.finish().expect("gzip")
}
