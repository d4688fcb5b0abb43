//! The OTLP receiver a run starts when a scenario exports over OTLP: HTTP
//! `POST /v1/traces` with protobuf or JSON bodies (gzip accepted), and gRPC
//! `TraceService/Export`.
//!
//! It takes spans from the run's containers only. It listens on the addresses it is
//! given (loopback and the gateway containers reach the host through), never on every
//! interface unless told to, and every request must carry the run's random token in
//! the `x-clnrm-token` header (gRPC metadata), which clnrm hands to every container
//! in `OTEL_EXPORTER_OTLP_HEADERS`; without it: 401 or `UNAUTHENTICATED`, and nothing
//! changes.
//!
//! Spans are attributed to open scenarios: by the sending container's address when
//! it belongs to one (a container cannot speak for another scenario), else by the
//! resource attribute `clnrm.scenario` when that names an open scenario. Spans from a
//! sender that belongs to no open scenario yet (a service starting up) wait, within a
//! bound, for its scenario to open. Anything else is dropped.
//!
//! Memory stays bounded whatever is sent: bodies are at most [`MAX_BODY`] bytes (also
//! after gzip), at most [`DECODE_SLOTS`] bodies are read and decoded at once, and each
//! scenario keeps at most its [`SpanLimits`]; past them its spans are dropped and the
//! scenario is told ([`Collected::overflow`]).

mod grpc;
mod http;

pub use http::{BadBody, decode_body};

use super::limits::{Overflow, SpanBudget, SpanLimits};
use super::span::SpanRecord;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The resource attribute naming the scenario a span belongs to.
pub const SCENARIO_ATTR: &str = "clnrm.scenario";

/// The header (gRPC metadata key) that must carry the run's token.
pub const TOKEN_HEADER: &str = "x-clnrm-token";

/// Largest body accepted (after decompression).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Bodies read and decoded at once, at most (each up to [`MAX_BODY`]).
pub const DECODE_SLOTS: usize = 2;

/// Connections served at once, at most; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 256;

/// Spans held, for all senders together, until their scenario opens.
pub const EARLY_LIMITS: SpanLimits = SpanLimits {
    max_spans: 10_000,
    max_bytes: 16 * 1024 * 1024,
};

/// Where and how a receiver listens.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Addresses to listen on; the same port on each where it is free.
    pub listen: Vec<IpAddr>,
    /// The value `x-clnrm-token` must have; `None` accepts any request (for tests and
    /// clnrm's own telemetry checks only).
    pub token: Option<String>,
    /// The address containers reach it at (`host.docker.internal`); `None`: the
    /// engine's `host-gateway`.
    pub advertise: Option<IpAddr>,
}

impl ReceiverConfig {
    /// Loopback only, no token.
    pub fn loopback() -> Self {
        Self {
            listen: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            token: None,
            advertise: None,
        }
    }

    /// A new random token (128 bits, hex), from the system's random source.
    pub fn random_token() -> std::io::Result<String> {
        use std::io::Read;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(crate::digest::hex(&bytes))
    }
}

/// One open scenario's spans.
struct Open {
    budget: SpanBudget,
    last_arrival: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<String, Open>,
    ip_owner: HashMap<IpAddr, String>,
    /// Spans from senders that belong to no open scenario yet, by address (a service
    /// starting up before its scenario opens); the token says they are the run's.
    early: HashMap<IpAddr, Vec<SpanRecord>>,
    early_budget: (usize, usize),
    /// Spans nobody could be given (no open scenario, unknown sender).
    unattributed: usize,
}

impl Inner {
    fn early_fits(&mut self, span: &SpanRecord) -> bool {
        let size = span.approx_bytes();
        let (n, bytes) = self.early_budget;
        if n >= EARLY_LIMITS.max_spans || bytes + size > EARLY_LIMITS.max_bytes {
            return false;
        }
        self.early_budget = (n + 1, bytes + size);
        true
    }

    fn take_early(&mut self, ip: &IpAddr) -> Vec<SpanRecord> {
        let spans = self.early.remove(ip).unwrap_or_default();
        let bytes: usize = spans.iter().map(SpanRecord::approx_bytes).sum();
        self.early_budget = (
            self.early_budget.0.saturating_sub(spans.len()),
            self.early_budget.1.saturating_sub(bytes),
        );
        spans
    }
}

struct State {
    inner: Mutex<Inner>,
    arrived: tokio::sync::Notify,
    token: Option<String>,
    decode: Arc<tokio::sync::Semaphore>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a request carrying `token` (the header's value) may send spans.
    fn allows(&self, token: Option<&[u8]>) -> bool {
        match (&self.token, token) {
            (None, _) => true,
            (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got),
            (Some(_), None) => false,
        }
    }

    /// Whether everything `peer` sends now would be dropped: it belongs to a scenario
    /// that is over its limits. Such requests are answered without being decoded.
    fn full(&self, peer: Option<IpAddr>) -> bool {
        let mut inner = self.lock();
        let Some(id) = peer.and_then(|ip| inner.ip_owner.get(&ip).cloned()) else {
            return false;
        };
        match inner.open.get_mut(&id) {
            Some(open) if open.budget.is_full() => {
                open.budget.drop_unread();
                true
            }
            _ => false,
        }
    }

    /// Files `spans` sent from `peer`; returns how many were dropped.
    fn ingest(&self, peer: Option<IpAddr>, spans: Vec<SpanRecord>) -> usize {
        let now = Instant::now();
        let mut dropped = 0;
        {
            let mut inner = self.lock();
            let owner = peer.and_then(|ip| inner.ip_owner.get(&ip).cloned());
            for span in spans {
                let target = owner
                    .clone()
                    .or_else(|| match span.resource.get(SCENARIO_ATTR) {
                        Some(super::AttrValue::Str(id)) if inner.open.contains_key(id) => {
                            Some(id.clone())
                        }
                        _ => None,
                    });
                match (target, peer) {
                    (Some(id), _) => {
                        if let Some(open) = inner.open.get_mut(&id) {
                            open.last_arrival = Some(now);
                            dropped += usize::from(!open.budget.push(span));
                        }
                    }
                    (None, Some(ip)) => {
                        if inner.early_fits(&span) {
                            inner.early.entry(ip).or_default().push(span);
                        } else {
                            dropped += 1;
                        }
                    }
                    (None, None) => {
                        inner.unattributed += 1;
                        dropped += 1;
                    }
                }
            }
        }
        self.arrived.notify_waiters();
        dropped
    }
}

/// Compares without stopping at the first difference, so that timing tells nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a closed scenario collected.
#[derive(Debug, Default)]
pub struct Collected {
    /// Spans, in arrival order.
    pub spans: Vec<SpanRecord>,
    /// What did not fit its limits, if anything.
    pub overflow: Option<Overflow>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    state: Arc<State>,
    advertise: Option<IpAddr>,
    http: Vec<SocketAddr>,
    grpc: Vec<SocketAddr>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Binds one listener per address, on one port where possible.
async fn bind_all(addrs: &[IpAddr]) -> std::io::Result<Vec<TcpListener>> {
    let Some(first) = addrs.first() else {
        return Err(std::io::Error::other("no address to listen on"));
    };
    let mut last_error = None;
    for _ in 0..8 {
        let lead = TcpListener::bind(SocketAddr::new(*first, 0)).await?;
        let port = lead.local_addr()?.port();
        let mut all = vec![lead];
        for ip in &addrs[1..] {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(l) => all.push(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    last_error = Some(e);
                    break;
                }
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{ip}: {e}"))),
            }
        }
        if all.len() == addrs.len() {
            return Ok(all);
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no common free port")))
}

impl Receiver {
    /// Starts the HTTP and gRPC listeners on free ports of every address of `config`.
    pub async fn start(config: ReceiverConfig) -> std::io::Result<Self> {
        let state = Arc::new(State {
            inner: Mutex::new(Inner::default()),
            arrived: tokio::sync::Notify::new(),
            token: config.token,
            decode: Arc::new(tokio::sync::Semaphore::new(DECODE_SLOTS)),
        });
        let stop = CancellationToken::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let mut http = Vec::new();
        for l in bind_all(&config.listen).await? {
            http.push(l.local_addr()?);
            tokio::spawn(http::serve(
                l,
                state.clone(),
                connections.clone(),
                stop.clone(),
            ));
        }
        let mut grpc = Vec::new();
        for l in bind_all(&config.listen).await? {
            grpc.push(l.local_addr()?);
            tokio::spawn(grpc::serve(l, state.clone(), stop.clone()));
        }
        Ok(Self {
            state,
            advertise: config.advertise,
            http,
            grpc,
            stop,
        })
    }

    /// The HTTP listeners' port.
    pub fn http_port(&self) -> u16 {
        self.http.first().map_or(0, SocketAddr::port)
    }

    /// The gRPC listeners' port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc.first().map_or(0, SocketAddr::port)
    }

    /// Every address it listens on (HTTP and gRPC).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.http.iter().chain(&self.grpc).copied().collect()
    }

    /// The one address every container reaches this receiver at (it listens there),
    /// or `None`: it listens on every interface, and a container reaches it at its own
    /// network's gateway.
    pub fn advertised(&self) -> Option<IpAddr> {
        self.advertise
    }

    /// The token requests must carry, if any.
    pub fn token(&self) -> Option<&str> {
        self.state.token.as_deref()
    }

    /// `ips` no longer belong to the run (their container is gone): what they sent
    /// for no scenario is dropped.
    pub fn forget(&self, ips: &[IpAddr]) {
        let mut inner = self.state.lock();
        for ip in ips {
            inner.ip_owner.remove(ip);
            inner.take_early(ip);
        }
    }

    /// Opens `scenario`: from now on spans from `ips` belong to it, as do spans naming
    /// it in `clnrm.scenario`, within `limits`. Spans those addresses sent before (a
    /// service starting up) are given to it too.
    pub fn open(&self, scenario: &str, ips: &[IpAddr], limits: SpanLimits) {
        let mut inner = self.state.lock();
        let mut budget = SpanBudget::new(limits);
        for ip in ips {
            inner.ip_owner.insert(*ip, scenario.to_owned());
            let early = inner.take_early(ip);
            budget.extend(early);
        }
        let last_arrival = (!budget.spans().is_empty()).then(Instant::now);
        inner.open.insert(
            scenario.to_owned(),
            Open {
                budget,
                last_arrival,
            },
        );
    }

    /// Closes `scenario` and returns what it collected; spans from `ips` belong to
    /// nobody any more.
    pub fn close(&self, scenario: &str, ips: &[IpAddr]) -> Collected {
        let mut inner = self.state.lock();
        for ip in ips {
            inner.ip_owner.remove(ip);
        }
        let Some(open) = inner.open.remove(scenario) else {
            return Collected::default();
        };
        let (spans, overflow) = open.budget.into_parts();
        Collected { spans, overflow }
    }

    /// How many spans so far could be given to no scenario and were dropped.
    pub fn unattributed(&self) -> usize {
        self.state.lock().unattributed
    }

    /// Removes and returns the spans that came from `ip` and belong to no scenario.
    pub fn take_from(&self, ip: IpAddr) -> Vec<SpanRecord> {
        self.state.lock().take_early(&ip)
    }

    /// Waits until the spans of `scenario` are in: until a span named `wait_for`
    /// arrived (bounded by its timeout), else until `quiet` passed without a new span,
    /// at most `max`. With `first`, `quiet` counts only once a first span arrived: a
    /// scenario that expects spans and has none yet is not done (its exporter's
    /// batch may be late on a loaded machine), but no longer than `max`.
    pub async fn settle(
        &self,
        scenario: &str,
        wait_for: Option<(&str, Duration)>,
        first: bool,
        quiet: Duration,
        max: Duration,
    ) {
        let start = Instant::now();
        if let Some((name, timeout)) = wait_for {
            let _ = tokio::time::timeout(
                timeout,
                self.until(|inner| {
                    inner
                        .open
                        .get(scenario)
                        .is_some_and(|o| o.budget.spans().iter().any(|s| s.name == name))
                }),
            )
            .await;
            return;
        }
        loop {
            let notified = self.state.arrived.notified();
            let arrived = self
                .state
                .lock()
                .open
                .get(scenario)
                .and_then(|o| o.last_arrival);
            // One reading of the clock: a second could be past `max`.
            let left = max.saturating_sub(start.elapsed());
            if left.is_zero() {
                return;
            }
            if first && arrived.is_none() {
                let _ = tokio::time::timeout(left, notified).await;
                continue;
            }
            let since = arrived.unwrap_or(start).elapsed().min(start.elapsed());
            if since >= quiet {
                return;
            }
            let _ = tokio::time::timeout((quiet - since).min(left), notified).await;
        }
    }

    /// Waits (bounded) until a span named `name` came from one of `ips`; for a
    /// service's `wait_for_span` readiness gate.
    pub async fn wait_span_from(&self, ips: &[IpAddr], name: &str, timeout: Duration) -> bool {
        tokio::time::timeout(
            timeout,
            self.until(|inner| {
                ips.iter().any(|ip| {
                    inner
                        .early
                        .get(ip)
                        .is_some_and(|v| v.iter().any(|s| s.name == name))
                        || inner
                            .ip_owner
                            .get(ip)
                            .and_then(|id| inner.open.get(id))
                            .is_some_and(|o| o.budget.spans().iter().any(|s| s.name == name))
                })
            }),
        )
        .await
        .is_ok()
    }

    async fn until(&self, cond: impl Fn(&Inner) -> bool) {
        loop {
            let notified = self.state.arrived.notified();
            if cond(&self.state.lock()) {
                return;
            }
            notified.await;
        }
    }
}
