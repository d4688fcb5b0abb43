//! A TCP forwarder that adds latency, owned by the test: clients connect to it, it
//! connects each to the upstream address, and every chunk is passed on `delay` after it
//! arrived, in each direction (the round trip grows by twice that; what is in flight
//! stays in flight, as on a slow link, rather than being sent one chunk at a time).
//! The kernel's `netem`, the usual way, is not on every machine here; this is the
//! same fault at the level of the connection.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The forwarder; it stops accepting when dropped (connections open then go on).
pub struct Delay {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Delay {
    /// Listens on `listen` (port 0: any) and forwards to `upstream`, with no delay yet.
    pub fn start(listen: &str, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("{listen}: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (delay, stopping) = (delay_ms.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let delay = delay.clone();
                // Connecting upstream on a thread of its own: one slow to answer does
                // not hold back the next client.
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                    else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    for (from, to) in [(&client, &server), (&server, &client)] {
                        if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                            pump(from, to, delay.clone());
                        }
                    }
                });
            }
        });
        Self {
            addr,
            delay_ms,
            stop,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The delay of each direction from now on (chunks read already keep theirs).
    pub fn set(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read: a reader thread
/// stamps chunks, a writer thread sends each at its time. At the end of either side,
/// both are shut down.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader_from = from.try_clone().ok();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_millis(delay.load(Ordering::SeqCst));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, chunk)) = rx.recv() {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        if let Some(from) = reader_from {
            let _ = from.shutdown(Shutdown::Both);
        }
    });
}
