//! The runs service (SPEC §9): `clnrm serve` (an HTTP API over a store, plus workers)
//! and `clnrm worker` (workers only), over SQLite or PostgreSQL ([`sql`]). Clients submit a project and options; the run is
//! stored and queued before the answer; a worker claims it with a lease, runs it on
//! the clnrm pipeline (the same code as `clnrm run`), stores every event as it
//! happens and the report at the end. Handlers parse, authorise and call the store;
//! no run logic lives here.

pub mod api;
pub mod auth;
pub mod job;
pub mod openapi;
mod problem;
mod routes;
pub mod sql;
mod sse;
pub mod store;
mod ui;
pub mod upload;
pub mod webhook;
pub mod worker;

/// How often a worker says it is alive (a worker not heard from for three of these is
/// shown as gone).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use store::Store;

/// How `serve` and `worker` run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Workers in this process (0: the API only).
    pub workers: usize,
    /// The most a submitted project may hold, in bytes (compressed and unpacked).
    pub max_upload: usize,
    /// Runs that may wait in the queue; a submission past it is 503 with
    /// `Retry-After`.
    pub max_queued: u64,
    /// Uploaded test files may bind-mount host paths.
    pub allow_host_volumes: bool,
    /// Uploaded test files may build images from source (their Dockerfiles then run
    /// on the workers' engines).
    pub allow_builds: bool,
    /// How long a claimed run is a worker's without a renewal.
    pub lease: Duration,
    /// This process's name in the runs it claims.
    pub name: String,
    /// Where to post what happens to runs.
    pub webhooks: Vec<clnrm_core::project::Webhook>,
    /// Another sink for each run's events (clnrm's own spans), made per run.
    pub observer: Option<Observer>,
}

/// Makes a sink per run that sees its events beside the store (clnrm's own telemetry).
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn() -> Box<dyn clnrm_core::pipeline::Sink> + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            workers: 1,
            max_upload: 64 << 20,
            max_queued: 10_000,
            allow_host_volumes: false,
            allow_builds: false,
            lease: Duration::from_secs(15),
            name: worker::default_name(),
            webhooks: Vec::new(),
            observer: None,
        }
    }
}

/// The most event streams one process serves at once.
pub const MAX_STREAMS: usize = 512;

/// What the handlers and workers of one process share.
pub struct App<S> {
    /// The database.
    pub store: S,
    /// The options.
    pub options: Options,
    /// Says that an event was stored (run id): wakes the event streams of this process.
    pub appended: tokio::sync::broadcast::Sender<String>,
    /// Says that a run was queued: wakes this process's idle workers.
    pub queued: tokio::sync::Notify,
    /// Event streams open at once, at most [`MAX_STREAMS`] (each polls the store).
    pub streams: Arc<tokio::sync::Semaphore>,
    /// The process is stopping: event streams end (their clients reconnect elsewhere
    /// with `Last-Event-ID`).
    pub stopping: tokio_util::sync::CancellationToken,
}

impl<S: Store> App<S> {
    /// An app over `store`.
    pub fn new(store: S, options: Options) -> Arc<Self> {
        // Everything a server renders was uploaded to it.
        clnrm_core::template::set_untrusted();
        let (appended, _) = tokio::sync::broadcast::channel(1024);
        Arc::new(Self {
            store,
            options,
            appended,
            queued: tokio::sync::Notify::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        })
    }
}

/// The runtime `serve` and `worker` run on: its threads (the blocking ones too) have
/// stacks large enough to validate uploads on them
/// ([`clnrm_core::validate::RENDER_STACK`]), instead of a thread spawned per upload.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(clnrm_core::cpus().clamp(2, 8))
        .thread_stack_size(clnrm_core::validate::RENDER_STACK)
        .enable_all()
        .build()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random identifier of `bytes` random bytes, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS's generator; failing to read it is not survivable for tokens.
    getrandom::fill(&mut buf).expect("the operating system's random generator");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves the API on `listener` with `options.workers` workers beside it until
/// `stop` is cancelled; then the workers finish or give back what they hold.
pub async fn serve<S: Store>(
    app: Arc<App<S>>,
    listener: tokio::net::TcpListener,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let workers = worker::spawn_all(app.clone(), stop.clone());
    let (signal, streams) = (stop.clone(), app.stopping.clone());
    tokio::spawn(async move {
        signal.cancelled().await;
        streams.cancel();
    });
    let router = routes::router(app.clone());
    let shutdown = stop.clone();
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    stop.cancel();
    for w in workers {
        let _ = w.await;
    }
    served
}
