//! Submitting a run (`POST /api/v1/runs`): the project as a `.tar.gz` or as JSON
//! files, the options, the checks (paths, size, validation, host mounts), then stored
//! and queued before the 201.

use super::request::{Api, bytes, parsed};
use crate::auth;
use crate::job::RunOptions;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Idempotency, Inserted, Scope, Store};
use crate::upload::{Bundle, Refused};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `POST /runs` with a JSON body: the project's files and the options.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// Path (relative to the project root) → the file's text; at least one.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    files: serde_json::Map<String, Value>,
    /// How to run.
    #[serde(default)]
    options: RunOptions,
}

/// The answer to a submission.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The run's id.
    id: String,
    /// `queued`; for a submission repeated with its `Idempotency-Key`, the run's
    /// status now.
    status: String,
}

/// The longest `Idempotency-Key` taken.
const MAX_KEY: usize = 255;

/// Seconds a client is asked to wait when the queue is full.
const QUEUE_FULL_RETRY_SECS: u32 = 2;

/// Query of `POST /runs` with a `.tar.gz` body: the options as parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TarQuery {
    /// Scenarios at once.
    #[param(minimum = 1, maximum = 1024)]
    workers: Option<u64>,
    /// Scenario-id glob.
    filter: Option<String>,
    /// Only scenarios with this tag.
    tag: Option<String>,
    /// Run everything.
    force: Option<bool>,
    /// Runs after a failure.
    #[param(maximum = 100)]
    retries: Option<u64>,
    /// Record baselines.
    update_baseline: Option<bool>,
}

/// Submits a run: a project (`.tar.gz`, or JSON files) and options; stored and queued
/// before the answer.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    params(TarQuery, ("X-Clnrm-Options" = Option<String>, Header, description = "the options as JSON, with a .tar.gz body"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a submission sent again with the key (by the same token) answers the run the first made instead of making another")),
    request_body(content((Submit = "application/json"), (Vec<u8> = "application/gzip")), description = "the project"),
    responses(
        (status = 201, description = "stored and queued; or, for a submission sent again with its Idempotency-Key, the run the first made", body = Created,
            headers(("Location" = String, description = "the run"), ("Idempotent-Replayed" = Option<String>, description = "`true` when the answer is the run of an earlier submission with the key"))),
        (status = 400, description = "a malformed body, option or Idempotency-Key, a path that escapes, a link", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or an unknown token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "too small a scope, or a host mount", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "over --max-upload-mb", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "another content type", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "the project does not validate, or its Idempotency-Key was used for another request", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the queue is full (--max-queued) or the database is away; sent again after Retry-After", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "seconds to wait before sending it again")))),
    security(("bearer" = [])))]
pub(crate) async fn submit<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<TarQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = bytes(body)?;
    auth::need(granted, Scope::Run)?;
    // A submission sent again (a client retrying after a lost answer) answers the
    // run the first made, before anything else is checked: even when the queue is
    // full now.
    let key = idempotency_key(&headers)?.map(|k| keyed(&headers, &uri, &body, k));
    if let Some(k) = &key
        && let Some((id, request)) = app.store.run_by_key(&k.key).await?
    {
        return replay(&app, k, id, &request).await;
    }
    let queued = app.store.queued().await?;
    let max_queued = app.options.max_queued;
    if u64::try_from(queued).unwrap_or(0) >= max_queued {
        return Err(Problem::unavailable(
            format!(
                "{queued} runs wait in the queue (--max-queued {max_queued}); send it again later"
            ),
            QUEUE_FULL_RETRY_SECS,
        ));
    }
    let max = app.options.max_upload;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let refused = |e: Refused| match e {
        Refused::Bad(m) => Problem::bad_request(m),
        Refused::TooLarge(m) => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, m),
    };
    let (bundle, options) = match kind.as_str() {
        "application/gzip" | "application/x-gzip" => {
            if body.len() > max {
                return Err(refused(Refused::TooLarge(format!(
                    "the archive is larger than {} MiB (--max-upload-mb)",
                    max >> 20
                ))));
            }
            let q = parsed(query)?;
            let in_header = headers
                .get("x-clnrm-options")
                .map(|v| {
                    v.to_str()
                        .map_err(|_| Problem::bad_request("X-Clnrm-Options: not text"))
                        .and_then(|t| {
                            serde_json::from_str::<RunOptions>(t)
                                .map_err(|e| Problem::bad_request(format!("X-Clnrm-Options: {e}")))
                        })
                })
                .transpose()?;
            let options = in_header.unwrap_or(RunOptions {
                workers: q.workers,
                filter: q.filter,
                tags: q.tag.into_iter().collect(),
                force: q.force.unwrap_or(false),
                retries: q.retries,
                update_baseline: q.update_baseline.unwrap_or(false),
                ..RunOptions::default()
            });
            (Bundle::from_tar_gz(&body, max).map_err(refused)?, options)
        }
        "application/json" => {
            let s: Submit = serde_json::from_slice(&body)
                .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
            (
                Bundle::from_json(&s.files, max).map_err(refused)?,
                s.options,
            )
        }
        other => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type \"{other}\": send application/gzip (a .tar.gz of the project) or application/json"
                ),
            ));
        }
    };
    options.check()?;
    let allow = (app.options.allow_host_volumes, app.options.allow_builds);
    let checked = {
        let bundle = bundle.clone();
        let vars = options.assignments();
        tokio::task::spawn_blocking(move || check_project(&bundle, &vars, allow))
            .await
            .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    checked?;
    let id = crate::random_hex(8);
    let options = serde_json::to_value(&options).unwrap_or_default();
    let stored = app
        .store
        .insert_run(&id, &options, &bundle.pack(), key.as_ref())
        .await?;
    if let (Inserted::Existing { id, request }, Some(k)) = (stored, &key) {
        // The same submission, sent twice at once: the other was stored first.
        return replay(&app, k, id, &request).await;
    }
    app.queued.notify_waiters();
    let location = format!("/api/v1/runs/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Created {
            id,
            status: "queued".into(),
        }),
    )
        .into_response())
}

/// The request's `Idempotency-Key` (bare, or quoted as a structured-field string), if
/// it has one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let raw = v.to_str().unwrap_or_default();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(format!(
            "Idempotency-Key: expected 1 to {MAX_KEY} visible ASCII characters (no spaces)"
        )));
    }
    Ok(Some(key))
}

/// The key as stored (hashed with the request's token, so that two clients' keys
/// never meet) and the hash of what the request asks (its content type, query,
/// options header and body), which a repeated submission must match.
fn keyed(headers: &HeaderMap, uri: &Uri, body: &[u8], key: &str) -> Idempotency {
    let token = auth::bearer(headers).unwrap_or_default();
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes()).unwrap_or_default();
    let mut request = Sha256::new();
    for part in [
        header("content-type"),
        uri.query().unwrap_or_default().as_bytes(),
        header("x-clnrm-options"),
    ] {
        request.update((part.len() as u64).to_le_bytes());
        request.update(part);
    }
    request.update(body);
    Idempotency {
        key: auth::hash(&format!("{token}\n{key}")),
        request: request
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// The answer to a submission whose key made run `id` before: that run, or 422 when
/// the key was used for another request.
async fn replay<S: Store>(
    app: &crate::App<S>,
    key: &Idempotency,
    id: String,
    request: &str,
) -> Result<Response, Problem> {
    if request != key.request {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Idempotency-Key: this key made run {id} from another request; a new request needs a new key"
            ),
        ));
    }
    let Some(run) = app.store.run(&id).await? else {
        // Stored a moment ago and gone: nothing to answer with yet.
        return Err(Problem::unavailable(
            format!("Idempotency-Key: run {id} of this key is not found; send it again"),
            1,
        ));
    };
    let status = run.status;
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/api/v1/runs/{id}")),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                "true".to_owned(),
            ),
        ],
        axum::Json(Created { id, status }),
    )
        .into_response())
}

/// A directory to check an upload in: in memory (`/dev/shm`) where the machine has
/// it, where making and removing one costs a fifth of what it does on disk.
fn scratch() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("clnrm-upload-")
            .tempdir_in(shm)
    {
        return Ok(dir);
    }
    tempfile::tempdir()
}

/// Validates the project as `clnrm validate` would, and refuses host bind mounts and
/// builds from source unless they are allowed.
fn check_project(
    bundle: &Bundle,
    vars: &[String],
    (allow_host_volumes, allow_builds): (bool, bool),
) -> Result<(), Problem> {
    let dir =
        scratch().map_err(|e| Problem::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()))?;
    bundle
        .write_to(dir.path())
        .map_err(|e| Problem::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()))?;
    // On this blocking thread, whose stack is large enough (see `runtime`).
    let prepared =
        clnrm_core::pipeline::prepare_with(dir.path(), &crate::job::paths(dir.path()), vars, true);
    // Confinement first: what validation says of a path outside the project (a
    // build context's Dockerfile, say) is not the client's to hear.
    crate::job::confined(&prepared)
        .map_err(|e| Problem::new(StatusCode::FORBIDDEN, e.to_string()))?;
    let style = clnrm_core::diag::Style::Plain;
    if prepared.has_errors() {
        let text: Vec<String> = prepared
            .diagnostics()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| clnrm_core::diag::render_human(d, style))
            .collect();
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the project does not validate:\n{}", text.join("\n")),
        ));
    }
    if !allow_builds {
        for f in &prepared.files {
            let Some(file) = &f.file else { continue };
            for (id, svc) in file.services.iter() {
                if let Some(build) = &svc.build {
                    let at = f
                        .rendered
                        .as_ref()
                        .map(|s| s.line_col(build.span.start))
                        .map(|p| format!(":{}:{}", p.line, p.col))
                        .unwrap_or_default();
                    return Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{}{at}: service \"{}\" is built from source; this server refuses builds in uploaded files (their Dockerfiles would run on its engines; start it with --allow-builds to allow them)",
                            f.display, id.value
                        ),
                    ));
                }
            }
        }
    }
    if !allow_host_volumes {
        for f in &prepared.files {
            let Some(file) = &f.file else { continue };
            for (id, svc) in file.services.iter() {
                if let Some(v) = svc.volumes.first() {
                    let at = f
                        .rendered
                        .as_ref()
                        .map(|s| s.line_col(v.host_path.span.start))
                        .map(|p| format!(":{}:{}", p.line, p.col))
                        .unwrap_or_default();
                    return Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{}{at}: service \"{}\" bind-mounts the host path \"{}\"; this server refuses host mounts in uploaded files (start it with --allow-host-volumes to allow them)",
                            f.display, id.value, v.host_path.value
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
