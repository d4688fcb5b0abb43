//! `clnrm run --server URL`: the project packed as a `.tar.gz` (what `.gitignore` and
//! clnrm's own outputs leave out excluded), submitted to a runs service, its events
//! followed over Server-Sent Events and shown by the same reporter as a local run;
//! the report and exit code are made from them as a local run makes its own. Ctrl-C
//! cancels the remote run.

use crate::cli::{RunArgs, RunFormat};
use crate::exit;
use crate::sink::{CliSink, Output};
use bytes::Bytes;
use clnrm_core::exec::{Event, ScenarioResult};
use clnrm_core::pipeline::Sink;
use clnrm_core::project::Project;
use clnrm_core::report::RunReport;
use http_body_util::{BodyExt, Full};
use std::path::{Path, PathBuf};

/// The most a packed project may hold (the service's default bound).
const MAX_PACKED: u64 = 64 << 20;

/// Runs the command remotely.
pub fn run(args: &RunArgs) -> i32 {
    let url = args.server.as_deref().unwrap_or_default();
    let Some(base) = Base::parse(url) else {
        eprintln!(
            "error: --server {url}: expected http://HOST:PORT (https: put the service behind a proxy you reach over http, or tunnel)"
        );
        return exit::INVALID_INPUT;
    };
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("CLNRM_TOKEN").ok())
        .unwrap_or_default();
    if token.is_empty() {
        eprintln!("error: --server needs a token: --token T or CLNRM_TOKEN");
        return exit::INVALID_INPUT;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let (project, _) = Project::discover(&cwd);
    let outcomes = project.layout().outcomes();
    // `--failed`: the ids whose last outcome here (from runs here or on a service)
    // failed; the service runs those of them its selection holds.
    let only: Vec<String> = if args.failed {
        // As for a run here: an unusable file is a warning.
        let (failed, warning) = clnrm_core::pipeline::outcomes::failed_at(&outcomes);
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        let failed: Vec<String> = failed.into_iter().collect();
        if failed.is_empty() {
            eprintln!("--failed: no scenario failed in its last run; nothing runs");
            return exit::SUCCESS;
        }
        let (max, bytes) = (
            clnrm_server::job::MAX_SCENARIO_IDS,
            clnrm_server::job::MAX_SCENARIO_BYTES,
        );
        if failed.len() > max || failed.iter().map(String::len).sum::<usize>() > bytes {
            eprintln!(
                "error: --failed: {} scenarios failed, more than a run on a service may name ({max} ids, {bytes} bytes of ids); run them without --failed",
                failed.len()
            );
            return exit::INVALID_INPUT;
        }
        failed
    } else {
        Vec::new()
    };
    // The contexts the selected files build from travel with them (the service refuses
    // one outside the project).
    let contexts: Vec<PathBuf> = if args.paths.is_empty() {
        Vec::new()
    } else {
        super::prepare(&args.paths, &args.vars)
            .files
            .iter()
            .flat_map(|f| clnrm_core::plan::file_contexts(f).into_keys())
            .filter(|c| c.starts_with(&project.root) && c.is_dir())
            .collect()
    };
    let mut paths = args.paths.clone();
    paths.extend(contexts);
    let packed = match pack(&project.root, &paths, &cwd) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot pack the project: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let rt = match super::runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    rt.block_on(remote(args, &base, &token, packed, &only, &outcomes))
        .unwrap_or_else(|c| c)
}

/// `http://host:port` and a path prefix.
struct Base {
    addr: String,
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("http://")?;
        let (addr, prefix) = match rest.split_once('/') {
            Some((a, p)) => (a, format!("/{}", p.trim_end_matches('/'))),
            None => (rest, String::new()),
        };
        let prefix = if prefix == "/" { String::new() } else { prefix };
        (!addr.is_empty()).then(|| Self {
            addr: addr.to_owned(),
            prefix,
        })
    }
}

/// Several `--filter` globs as the one the service takes: `{a,b}` (globs holding
/// braces of their own are joined as they are, which a brace inside would break: the
/// service then refuses the glob and says so).
fn one_glob(globs: &[String]) -> Option<String> {
    match globs {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("{{{}}}", many.join(","))),
    }
}

fn options(args: &RunArgs, only: &[String]) -> serde_json::Value {
    let vars: serde_json::Map<String, serde_json::Value> = args
        .vars
        .vars
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    let mut options = serde_json::json!({
        "workers": args.workers,
        "filter": one_glob(&args.filter),
        "tags": args.tags.tags,
        "vars": vars,
        "force": args.force,
        "retries": args.retries,
        "update_baseline": args.update_baseline,
    });
    // Only when there are any: a service of before `--failed` refuses the key.
    if !only.is_empty() {
        options["scenarios"] = serde_json::json!(only);
    }
    options
}

/// Why a request to the service got no answer.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The service's address did not accept the connection.
    #[error("cannot reach {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What connecting said.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP handshake failed.
    #[error("{addr}: {source}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// What the handshake said.
        #[source]
        source: hyper::Error,
    },
    /// The request could not be made (a header value it cannot hold).
    #[error(transparent)]
    Request(#[from] hyper::http::Error),
    /// No answer in time.
    #[error("no answer in time")]
    Timeout,
    /// Sending the request, or reading the answer's head, failed.
    #[error("{method} {path}: {source}")]
    Send {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// What sending said.
        #[source]
        source: hyper::Error,
    },
}

/// A request to the service; the status and body (read whole unless `stream`).
async fn send(
    base: &Base,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<hyper::Response<hyper::body::Incoming>, SendError> {
    let stream = tokio::net::TcpStream::connect(&base.addr)
        .await
        .map_err(|source| SendError::Connect {
            addr: base.addr.clone(),
            source,
        })?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|source| SendError::Handshake {
            addr: base.addr.clone(),
            source,
        })?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.prefix))
        .header(hyper::header::HOST, base.addr.as_str());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(Full::new(body))?;
    sender
        .send_request(req)
        .await
        .map_err(|source| SendError::Send {
            method: method.to_owned(),
            path: path.to_owned(),
            source,
        })
}

/// Attempts of a submission before giving up.
const SUBMIT_ATTEMPTS: u32 = 8;

/// The longest an attempt may wait for its answer (a stopped or cut-off service).
const SUBMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The longest wait between two attempts the backoff gives.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest `Retry-After` heeded.
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// `POST /api/v1/runs`, sent again while the service cannot be reached or answers
/// 502, 503 or 504 (the queue full, its database away): after a wait that doubles
/// from 0.5 s to at most 30 s, with ±20 % jitter so that many clients do not come
/// back at once, or the answer's `Retry-After` (at most 5 minutes) when that is
/// longer; the answer (status, body) of the last attempt.
async fn submit(
    base: &Base,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<(u16, String), String> {
    let mut backoff = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let sent = tokio::time::timeout(
            SUBMIT_TIMEOUT,
            send(base, "POST", "/api/v1/runs", headers, body.clone()),
        )
        .await;
        let (why, after) = match sent {
            Err(_) => (format!("no answer in {} s", SUBMIT_TIMEOUT.as_secs()), None),
            Ok(Err(SendError::Request(e))) => return Err(e.to_string()),
            Ok(Ok(resp)) if matches!(resp.status().as_u16(), 502..=504) => {
                let after = retry_after(&resp);
                let (status, text) = text(resp).await;
                (format!("{status}: {}", detail(&text)), after)
            }
            Ok(Ok(resp)) => return Ok(text(resp).await),
            Ok(Err(e)) => (e.to_string(), None),
        };
        if attempt == SUBMIT_ATTEMPTS {
            return Err(format!(
                "the service did not take the run in {SUBMIT_ATTEMPTS} attempts; the last: {why}"
            ));
        }
        // The service's Retry-After is the least wait, never a reason to come back
        // sooner than the backoff says; the jitter spreads clients over the backoff
        // and never brings one back before Retry-After.
        let after = after.unwrap_or_default().min(MAX_RETRY_AFTER);
        let pause = jittered(backoff).max(after);
        eprintln!(
            "submitting: {why}; sending it again in {:.1} s (attempt {}/{SUBMIT_ATTEMPTS}, the same Idempotency-Key)",
            pause.as_secs_f64(),
            attempt + 1
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

/// The first wait before following a run's events again.
const FOLLOW_FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The longest wait between two attempts to follow a run's events.
const FOLLOW_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long one request of following a run may wait for its answer's head: longer
/// than the service waits for its database (30 s), so that its 503 comes first.
const FOLLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a run's event stream may say nothing (not even its keep-alive) before it
/// is taken as dead and followed again.
const FOLLOW_IDLE: std::time::Duration = std::time::Duration::from_secs(45);

/// How many times a run seen to end is read once more for the events it has left.
const FOLLOW_DRAINS: u32 = 3;

/// How long a followed service may give no answer before clnrm stops following.
const FOLLOW_LOST: std::time::Duration = std::time::Duration::from_secs(300);

/// An answer's `Retry-After` (in seconds).
fn retry_after(resp: &hyper::Response<hyper::body::Incoming>) -> Option<std::time::Duration> {
    resp.headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
}

/// `d` times a random factor in [0.8, 1.2].
fn jittered(d: std::time::Duration) -> std::time::Duration {
    let r = u16::from_str_radix(&clnrm_server::random_hex(2), 16).unwrap_or(0);
    d.mul_f64(0.8 + 0.4 * f64::from(r) / f64::from(u16::MAX))
}

async fn text(resp: hyper::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    (status, body)
}

/// The `detail` of a problem answer, or the body.
fn detail(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

async fn remote(
    args: &RunArgs,
    base: &Base,
    token: &str,
    packed: Vec<u8>,
    only: &[String],
    outcomes: &Path,
) -> Result<i32, i32> {
    let auth = format!("Bearer {token}");
    // One key for every attempt: a submission whose answer was lost, sent again,
    // answers the run the first made.
    let headers = [
        ("authorization", auth.clone()),
        ("content-type", "application/gzip".to_owned()),
        ("x-clnrm-options", options(args, only).to_string()),
        (
            "idempotency-key",
            format!("clnrm-{}", clnrm_server::random_hex(16)),
        ),
    ];
    let fail = |e: String| {
        eprintln!("error: {e}");
        exit::ENVIRONMENT
    };
    let (status, body) = submit(base, &headers, Bytes::from(packed))
        .await
        .map_err(fail)?;
    if status != 201 {
        eprintln!(
            "error: the service refused the run ({status}): {}",
            detail(&body)
        );
        return Err(match status {
            400 | 403 | 413 | 415 | 422 => exit::INVALID_INPUT,
            _ => exit::ENVIRONMENT,
        });
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or_else(|| fail(format!("the service's answer has no run id: {body}")))?;
    eprintln!(
        "submitted run {id} to {}",
        args.server.as_deref().unwrap_or_default()
    );

    // Ctrl-C cancels the remote run; the stream then ends as the run does.
    let stop = clnrm_core::exec::Stop::default();
    tokio::spawn(super::watch_signals(stop.clone()));
    let cancel_base = Base {
        addr: base.addr.clone(),
        prefix: base.prefix.clone(),
    };
    let cancel_auth = auth.clone();
    let cancel_id = id.clone();
    let interrupt = stop.interrupt.clone();
    tokio::spawn(async move {
        interrupt.cancelled().await;
        let path = format!("/api/v1/runs/{cancel_id}/cancel");
        // Sent again while the service cannot be reached or answers 502/503/504
        // (restarting, its database away), as a submission is.
        let mut backoff = FOLLOW_FIRST_WAIT;
        for _ in 0..SUBMIT_ATTEMPTS {
            let sent = tokio::time::timeout(
                FOLLOW_REQUEST,
                send(
                    &cancel_base,
                    "POST",
                    &path,
                    &[("authorization", cancel_auth.clone())],
                    Bytes::new(),
                ),
            )
            .await;
            match sent {
                Ok(Ok(resp)) if !matches!(resp.status().as_u16(), 502..=504) => return,
                _ => {}
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(FOLLOW_MAX_WAIT);
        }
        eprintln!("warning: could not cancel run {cancel_id}: the service did not answer");
    });

    let output = if args.format == RunFormat::Human {
        Output::Human
    } else {
        Output::Progress
    };
    let mut sink = CliSink::new(output);
    let mut collected = Collected::default();
    // Followed until the run has ended: a stream cut short (the server stopping, the
    // network) is resumed after its last event; while the service cannot be reached or
    // answers 502/503/504 (its database away), clnrm waits (0.5 s doubling to 5 s, or
    // the answer's Retry-After) and comes back, for at most FOLLOW_LOST without an
    // answer.
    let mut last_id: Option<String> = None;
    let mut backoff = FOLLOW_FIRST_WAIT;
    let mut answered = std::time::Instant::now();
    // Whether the stream gave the run's end, and how often it was read once more
    // after the run was seen to end: what a cut stream did not give yet (a
    // failing scenario's result) must still be read, or the exit code would lie.
    let (mut ended, mut drained) = (false, 0);
    let force = stop.force.clone();
    let status = loop {
        let path = format!("/api/v1/runs/{id}/events");
        let mut headers = vec![
            ("authorization", auth.clone()),
            ("accept", "text/event-stream".to_owned()),
        ];
        if let Some(l) = &last_id {
            headers.push(("last-event-id", l.clone()));
        }
        let mut wait = None;
        let events = tokio::time::timeout(
            FOLLOW_REQUEST,
            send(base, "GET", &path, &headers, Bytes::new()),
        )
        .await
        .unwrap_or(Err(SendError::Timeout));
        match events {
            Ok(resp) if resp.status() == 200 => {
                answered = std::time::Instant::now();
                backoff = FOLLOW_FIRST_WAIT;
                let mut body = resp.into_body();
                let mut buf = String::new();
                // The service says something every 15 s (a keep-alive comment): a
                // stream silent for longer went dead (a partition) and is followed again.
                while let Ok(Some(Ok(frame))) = tokio::select! {
                    frame = tokio::time::timeout(FOLLOW_IDLE, body.frame()) => frame,
                    () = force.cancelled() => return Err(exit::INTERRUPTED),
                } {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    buf.push_str(&String::from_utf8_lossy(&data));
                    while let Some(end) = buf.find("\n\n") {
                        let block: String = buf.drain(..end + 2).collect();
                        if let Some(seen) = block.lines().find_map(|l| l.strip_prefix("id:")) {
                            last_id = Some(seen.trim().to_owned());
                        }
                        // What the worker's machine cleaned up is not this run's news.
                        if let Some(event) =
                            parse_block(&block).filter(|e| !matches!(e, Event::Reaped { .. }))
                        {
                            ended |= matches!(event, Event::RunFinished { .. });
                            sink.event(&event);
                            collected.take(event);
                        }
                    }
                }
            }
            Ok(resp) if matches!(resp.status().as_u16(), 502..=504) => {
                wait = Some(retry_after(&resp).unwrap_or_default().min(MAX_RETRY_AFTER));
            }
            Ok(resp) => {
                let (status, body) = text(resp).await;
                return Err(fail(format!("events ({status}): {}", detail(&body))));
            }
            Err(_) => wait = Some(std::time::Duration::ZERO),
        }
        let run = tokio::time::timeout(
            FOLLOW_REQUEST,
            send(
                base,
                "GET",
                &format!("/api/v1/runs/{id}"),
                &[("authorization", auth.clone())],
                Bytes::new(),
            ),
        )
        .await;
        let run = match run {
            Ok(Ok(r)) if r.status() == 200 => {
                answered = std::time::Instant::now();
                serde_json::from_str::<serde_json::Value>(&text(r).await.1).unwrap_or_default()
            }
            _ => serde_json::Value::Null,
        };
        if let Some(s @ ("passed" | "failed" | "error" | "cancelled")) = run["status"].as_str() {
            // Ended there: the stream is read to its end once more (it ends once the
            // run has), unless it gave the end already.
            if ended || drained == FOLLOW_DRAINS {
                break (s.to_owned(), run);
            }
            drained += 1;
            continue;
        }
        if answered.elapsed() > FOLLOW_LOST {
            return Err(fail(format!(
                "the service has not answered for {} s; run {id} goes on there (`GET /api/v1/runs/{id}`)",
                FOLLOW_LOST.as_secs()
            )));
        }
        let pause = match wait {
            Some(after) => {
                let pause = jittered(backoff).max(after);
                backoff = (backoff * 2).min(FOLLOW_MAX_WAIT);
                pause
            }
            None => FOLLOW_FIRST_WAIT,
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = force.cancelled() => return Err(exit::INTERRUPTED),
        }
    };
    let (status, run) = status;
    let report = collected.report(&id);
    sink.finish(&report);
    // What each scenario came to is this project's, wherever it ran (`--failed`).
    if let Err(e) = clnrm_core::pipeline::outcomes::record(outcomes, &report) {
        eprintln!(
            "warning: could not record the outcomes in {}: {e}",
            outcomes.display()
        );
    }
    // The HTML report comes from the service, which holds the scenarios' spans.
    let html = if args.format == RunFormat::Html || args.report_dir.is_some() {
        match send(
            base,
            "GET",
            &format!("/api/v1/runs/{id}/report?format=html"),
            &[("authorization", auth.clone())],
            Bytes::new(),
        )
        .await
        {
            Ok(r) => match text(r).await {
                (200, body) if body.starts_with("<!doctype html>") => Some(body),
                (status, body) => {
                    eprintln!(
                        "warning: the service's report.html ({status}): {}; this one has no spans",
                        detail(&body)
                    );
                    None
                }
            },
            Err(e) => {
                eprintln!("warning: the service's report.html: {e}; this one has no spans");
                None
            }
        }
    } else {
        None
    };
    let spans = |_: &clnrm_core::exec::ScenarioResult| None;
    match (&html, args.format) {
        (Some(page), RunFormat::Html) => print!("{page}"),
        _ => crate::sink::print_report(args.format, &report, None),
    }
    if let Some(dir) = &args.report_dir {
        let written =
            clnrm_core::report::write_reports(&report, Some(dir), &[], &spans).and_then(|()| {
                match &html {
                    Some(page) => clnrm_core::report::write(&dir.join("report.html"), page),
                    None => Ok(()),
                }
            });
        if let Err(e) = written {
            eprintln!("error: {e}");
            return Ok(exit::ENVIRONMENT);
        }
    }
    // A run that could not run at all (its project, its worker lost too often) says
    // why in its summary; a cancelled one is an interrupted one.
    if status == "error" && report.results.is_empty() {
        let why = run["summary"]["message"]
            .as_str()
            .unwrap_or("the service could not run it");
        eprintln!("error: run {id}: {why}");
        return Ok(exit::ENVIRONMENT);
    }
    if status == "cancelled" {
        return Ok(exit::INTERRUPTED);
    }
    let code = exit::of_report(&report, args.flaky_fails);
    // The events read may be short of the run's (the stream never gave its end):
    // then the service's verdict stands where it is worse.
    if !ended && code == exit::SUCCESS && status != "passed" {
        eprintln!(
            "error: run {id} ended {status} on the service, but its event stream ended before the run's end: this report is incomplete"
        );
        return Ok(if status == "failed" {
            exit::TEST_FAILURE
        } else {
            exit::ENVIRONMENT
        });
    }
    Ok(code)
}

/// One SSE block's event, when it is one of a run's.
fn parse_block(block: &str) -> Option<Event> {
    let data: String = block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&data).ok()
}

/// What the events say about the run, as a local run's report would.
#[derive(Default)]
struct Collected {
    run_id: Option<String>,
    results: Vec<ScenarioResult>,
    duration: std::time::Duration,
    interrupted: bool,
}

impl Collected {
    fn take(&mut self, event: Event) {
        match event {
            Event::RunStarted { run_id, .. } => self.run_id = Some(run_id),
            Event::ScenarioFinished(r) => match self.results.iter().position(|x| x.id == r.id) {
                Some(i) => self.results[i] = r,
                None => self.results.push(r),
            },
            Event::RunFinished {
                duration,
                interrupted,
            } => {
                self.duration = duration;
                self.interrupted = interrupted;
            }
            _ => {}
        }
    }

    fn report(self, id: &str) -> RunReport {
        let mut files: Vec<String> = Vec::new();
        let results = self
            .results
            .into_iter()
            .map(|mut r| {
                r.file_index = files.iter().position(|f| *f == r.file).unwrap_or_else(|| {
                    files.push(r.file.clone());
                    files.len() - 1
                });
                r
            })
            .collect();
        RunReport {
            run_id: self.run_id.unwrap_or_else(|| id.to_owned()),
            results,
            duration: self.duration,
            interrupted: self.interrupted,
        }
    }
}

/// What is never sent: version control, build output, clnrm's own outputs.
const SKIP: &[&str] = &[
    ".git",
    "target",
    ".clnrm/cache",
    ".clnrm/artifacts",
    ".clnrm/bench",
    ".clnrm/outcomes.json",
];

fn skipped(rel: &str) -> bool {
    SKIP.contains(&rel) || rel.starts_with(".clnrm/server.db")
}

/// `path` relative to `root`, with `/` separators ("" for the root itself).
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Why the project could not be packed.
#[derive(Debug, thiserror::Error)]
enum PackError {
    /// Walking the project failed.
    #[error(transparent)]
    Walk(#[from] ignore::Error),
    /// A path to send leads out of the project.
    #[error("{} is outside the project {}", path.display(), root.display())]
    Outside {
        /// The path.
        path: PathBuf,
        /// The project's root.
        root: PathBuf,
    },
    /// A file to send cannot be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// More to send than the service takes.
    #[error("more than {max} MiB to send", max = MAX_PACKED >> 20)]
    TooBig,
    /// The archive could not be finished.
    #[error(transparent)]
    Finish(std::io::Error),
}

/// The project as a `.tar.gz`: `paths` (default: everything) and `.clnrm/` (config,
/// templates, baselines, snapshots), without what `.gitignore` ignores, `.git`, and
/// clnrm's own outputs.
fn pack(root: &Path, paths: &[PathBuf], cwd: &Path) -> Result<Vec<u8>, PackError> {
    let mut roots: Vec<PathBuf> = if paths.is_empty() {
        vec![root.to_path_buf()]
    } else {
        paths.iter().map(|p| cwd.join(p)).collect()
    };
    if !paths.is_empty() && root.join(".clnrm").is_dir() {
        roots.push(root.join(".clnrm"));
    }
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut total = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for start in roots {
        let base = root.to_path_buf();
        let walk = ignore::WalkBuilder::new(&start)
            .hidden(false)
            .require_git(false)
            .filter_entry(move |e| !skipped(&relative(&base, e.path())))
            .build();
        for entry in walk {
            let entry = entry?;
            let path = entry.path();
            if !path.starts_with(root) {
                return Err(PackError::Outside {
                    path: path.to_path_buf(),
                    root: root.to_path_buf(),
                });
            }
            let rel_text = relative(root, path);
            if skipped(&rel_text)
                || !entry.file_type().is_some_and(|t| t.is_file())
                || !seen.insert(rel_text.clone())
            {
                continue;
            }
            let file = |source| PackError::File {
                path: path.to_path_buf(),
                source,
            };
            let meta = std::fs::metadata(path).map_err(file)?;
            total += meta.len();
            if total > MAX_PACKED {
                return Err(PackError::TooBig);
            }
            tar.append_path_with_name(path, &rel_text).map_err(file)?;
        }
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(PackError::Finish)
}
