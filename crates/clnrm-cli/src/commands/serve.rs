//! `clnrm serve`, `clnrm serve token create` and `clnrm worker`: the runs service of
//! `clnrm-server`, started with the project's database.

use crate::cli::{DatabaseArgs, ServeAction, ServeArgs, TokenAction, WorkerArgs};
use crate::exit;
use clnrm_server::sql::{Backend, Sql};
use clnrm_server::store::Scope;
use clnrm_server::{App, Options};
use tokio_util::sync::CancellationToken;

/// The database URL: the flag, else `sqlite://.clnrm/server.db` in the project.
fn database(db: &DatabaseArgs) -> Result<String, i32> {
    let url = match &db.database {
        Some(u) => u.clone(),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
            let (project, _) = clnrm_core::project::Project::discover(&cwd);
            format!(
                "sqlite://{}",
                project.layout().dir().join("server.db").display()
            )
        }
    };
    if Backend::of(&url).is_none() {
        eprintln!(
            "error: --database {url}: expected sqlite://PATH or postgres://USER@HOST:PORT/DB"
        );
        return Err(exit::INVALID_INPUT);
    }
    Ok(url)
}

/// The URL as printed: a user and password are left out.
fn shown(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

async fn open(url: &str) -> Result<Sql, i32> {
    Sql::open(url).await.map_err(|e| {
        // The URL may hold a password: say the database's kind only.
        let kind = if url.starts_with("sqlite") {
            url
        } else {
            "the PostgreSQL database"
        };
        eprintln!("error: {kind}: {e}");
        exit::ENVIRONMENT
    })
}

/// The first Ctrl-C or SIGTERM stops taking work (what runs finishes); a second ends
/// the process at once (its runs go back to the queue when their leases run out).
fn on_signals(stop: CancellationToken) {
    let signals = clnrm_core::exec::Stop::default();
    tokio::spawn(super::watch_signals(signals.clone()));
    tokio::spawn(async move {
        signals.interrupt.cancelled().await;
        stop.cancel();
        signals.force.cancelled().await;
        std::process::exit(exit::INTERRUPTED);
    });
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, each run's own spans are exported as
/// `clnrm run` exports them.
fn own_spans() -> Option<clnrm_server::Observer> {
    crate::telemetry::wanted().then(|| {
        clnrm_server::Observer(std::sync::Arc::new(|| {
            Box::new(crate::sink::CliSink::telemetry_only()) as Box<dyn clnrm_core::pipeline::Sink>
        }))
    })
}

/// `clnrm serve`.
pub fn serve(args: ServeArgs) -> i32 {
    let rt = match clnrm_server::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::ENVIRONMENT;
        }
    };
    if let Some(ServeAction::Token(t)) = &args.action {
        let TokenAction::Create { scope, name, db } = &t.action;
        return rt
            .block_on(async {
                let url = database(db)?;
                let store = open(&url).await?;
                let scope = Scope::parse(scope).unwrap_or(Scope::Read);
                match clnrm_server::auth::create(&store, name, scope).await {
                    Ok(token) => {
                        println!("{token}");
                        eprintln!(
                            "token \"{name}\" ({}) made; it is shown this once",
                            scope.as_str()
                        );
                        Ok(exit::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Err(exit::ENVIRONMENT)
                    }
                }
            })
            .unwrap_or_else(|c| c);
    }
    rt.block_on(async {
        let url = database(&args.db)?;
        let store = open(&url).await?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let (project, diags) = clnrm_core::project::Project::discover(&cwd);
        if diags.iter().any(|d| d.is_error()) {
            for d in &diags {
                eprintln!(
                    "{}",
                    clnrm_core::diag::render_human(d, crate::output::stderr_style())
                );
            }
            return Err(exit::INVALID_INPUT);
        }
        let options = Options {
            listen: args.listen,
            webhooks: project.config.webhooks.clone(),
            observer: own_spans(),
            workers: if args.no_worker {
                0
            } else {
                args.workers as usize
            },
            max_upload: (args.max_upload_mb as usize) << 20,
            max_queued: args.max_queued,
            allow_host_volumes: args.allow_host_volumes,
            allow_builds: args.allow_builds,
            lease: std::time::Duration::from_secs(args.lease.lease_secs),
            ..Options::default()
        };
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| {
                eprintln!("error: cannot listen on {}: {e}", options.listen);
                exit::ENVIRONMENT
            })?;
        let addr = listener.local_addr().map_err(|_| exit::ENVIRONMENT)?;
        eprintln!(
            "clnrm serve: listening on http://{addr} (database {}, {} worker{})",
            shown(&url),
            options.workers,
            if options.workers == 1 { "" } else { "s" }
        );
        let stop = CancellationToken::new();
        on_signals(stop.clone());
        let app = App::new(store, options);
        clnrm_server::serve(app, listener, stop)
            .await
            .map_err(|e| {
                eprintln!("error: {e}");
                exit::ENVIRONMENT
            })?;
        Ok(exit::SUCCESS)
    })
    .unwrap_or_else(|c| c)
}

/// `clnrm worker`.
pub fn worker(args: WorkerArgs) -> i32 {
    let rt = match clnrm_server::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::ENVIRONMENT;
        }
    };
    rt.block_on(async {
        let url = database(&args.db)?;
        let store = open(&url).await?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let (project, _) = clnrm_core::project::Project::discover(&cwd);
        let options = Options {
            workers: args.workers as usize,
            webhooks: project.config.webhooks.clone(),
            observer: own_spans(),
            lease: std::time::Duration::from_secs(args.lease.lease_secs),
            ..Options::default()
        };
        eprintln!(
            "clnrm worker: {} worker(s) on {}",
            options.workers,
            shown(&url)
        );
        let stop = CancellationToken::new();
        on_signals(stop.clone());
        let app = App::new(store, options);
        for w in clnrm_server::worker::spawn_all(app, stop) {
            let _ = w.await;
        }
        Ok(exit::SUCCESS)
    })
    .unwrap_or_else(|c| c)
}
