//! A fault-injecting proxy in front of the container engine's socket, owned by the
//! test: clnrm talks to it through `DOCKER_HOST`, and the test makes it stall, slow
//! down, cut responses short, or hold back requests of a kind, while it counts the
//! requests it sees.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards everything.
    Pass,
    /// Forwards nothing, in either direction, on every connection, old or new.
    Stall,
    /// Waits this long before forwarding each chunk of an answer.
    Slow(Duration),
    /// Closes every connection once this many bytes of answers went through it.
    Cut(usize),
    /// Holds a request whose first line contains the text for the duration.
    Hold(String, Duration),
}

struct Shared {
    mode: Mutex<Mode>,
    /// The first line of every request seen.
    seen: Mutex<Vec<String>>,
    closed: AtomicBool,
}

/// A running proxy; stops accepting when dropped.
pub struct EngineProxy {
    shared: Arc<Shared>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// The engine's own socket (the one the tests otherwise use).
fn upstream() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

impl EngineProxy {
    /// Starts passing everything through.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind: {e}"));
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Pass),
            seen: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(engine) = UnixStream::connect(upstream()) else {
                    continue;
                };
                relay(client, engine, s.clone());
            }
        });
        Self {
            shared,
            path,
            _dir: dir,
        }
    }

    /// The value of `DOCKER_HOST` that reaches the engine through the proxy.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Changes what the proxy does, from now on.
    pub fn set(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// How many requests so far had `text` in their first line.
    pub fn seen(&self, text: &str) -> usize {
        lock(&self.shared.seen)
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        *lock(&self.shared.mode) = Mode::Pass;
        // Wake the accept loop so that it sees it is closed.
        let _ = UnixStream::connect(&self.path);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies both ways between `client` and `engine` on two threads.
fn relay(client: UnixStream, engine: UnixStream, shared: Arc<Shared>) {
    let (Ok(client2), Ok(engine2)) = (client.try_clone(), engine.try_clone()) else {
        return;
    };
    let s = shared.clone();
    std::thread::spawn(move || pump(client, engine, &s, true));
    std::thread::spawn(move || pump(engine2, client2, &shared, false));
}

/// Forwards `from` to `to` under the current mode until either side closes.
fn pump(mut from: UnixStream, mut to: UnixStream, shared: &Shared, request: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut answered = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if request {
            let text = String::from_utf8_lossy(chunk);
            let first = text.lines().next().unwrap_or("").to_owned();
            if ["GET ", "POST ", "DELETE ", "PUT ", "HEAD "]
                .iter()
                .any(|m| first.starts_with(m))
            {
                lock(&shared.seen).push(first.clone());
                let mode = lock(&shared.mode).clone();
                if let Mode::Hold(text, d) = mode
                    && first.contains(&text)
                {
                    // Held until the time is up or the test changes the mode.
                    let until = std::time::Instant::now() + d;
                    while std::time::Instant::now() < until
                        && *lock(&shared.mode) == Mode::Hold(text.clone(), d)
                        && !shared.closed.load(Ordering::SeqCst)
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        // A stall holds what it has, and everything after, until it is lifted.
        while *lock(&shared.mode) == Mode::Stall && !shared.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mode = lock(&shared.mode).clone();
        match mode {
            Mode::Slow(d) if !request => std::thread::sleep(d),
            Mode::Cut(limit) if !request && answered + n > limit => {
                let _ = to.write_all(&chunk[..limit.saturating_sub(answered)]);
                break;
            }
            _ => {}
        }
        answered += n;
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
    if matches!(*lock(&shared.mode), Mode::Cut(_)) {
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    }
}
