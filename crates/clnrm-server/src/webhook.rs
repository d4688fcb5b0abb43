//! Webhooks (`[server] webhooks` in the server's `.clnrm/config.toml`): when a run
//! ends, a POST of `{"event": "run.finished", "run": <the run>}` to each hook that
//! asked for it, signed with HMAC-SHA256 of its secret in `X-Clnrm-Signature:
//! sha256=<hex>`, retried with backoff (0.5 s, doubling, 6 tries in all) until the
//! receiver answers 2xx. Deliveries are not kept across a restart of the server.

use crate::App;
use crate::store::Store;
use bytes::Bytes;
use clnrm_core::project::Webhook;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// Tries per delivery.
const TRIES: u32 = 6;
/// Bound on one try.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Sends `run.finished` for run `id` to every hook that asked for it, in the
/// background.
pub fn run_finished<S: Store>(app: &Arc<App<S>>, id: &str) {
    let hooks: Vec<Webhook> = app
        .options
        .webhooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == "run.finished"))
        .cloned()
        .collect();
    if hooks.is_empty() {
        return;
    }
    let app = app.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let run = match app.store.run(&id).await {
            Ok(Some(run)) => run,
            _ => return,
        };
        let body = serde_json::json!({"event": "run.finished", "run": run}).to_string();
        let delivery = crate::random_hex(8);
        for hook in hooks {
            tokio::spawn(deliver(hook, body.clone(), delivery.clone()));
        }
    });
}

async fn deliver(hook: Webhook, body: String, delivery: String) {
    let signature = sign(&hook.secret, body.as_bytes());
    let mut pause = Duration::from_millis(500);
    for attempt in 1..=TRIES {
        let sent =
            tokio::time::timeout(TRY_TIMEOUT, post(&hook.url, &body, &signature, &delivery)).await;
        match sent {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) => eprintln!(
                "webhook {}: answered {status} (try {attempt} of {TRIES})",
                hook.url
            ),
            Ok(Err(e)) => eprintln!("webhook {}: {e} (try {attempt} of {TRIES})", hook.url),
            Err(_) => eprintln!(
                "webhook {}: no answer in {TRY_TIMEOUT:?} (try {attempt} of {TRIES})",
                hook.url
            ),
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    eprintln!("webhook {}: gave up after {TRIES} tries", hook.url);
}

/// Why a delivery got no answer.
#[derive(Debug, thiserror::Error)]
enum PostError {
    /// The hook's URL is not `http://`.
    #[error("not an http:// URL")]
    NotHttp,
    /// Its host did not accept the connection.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP handshake failed.
    #[error(transparent)]
    Handshake(hyper::Error),
    /// The request could not be made (a header value it cannot hold).
    #[error(transparent)]
    Request(#[from] hyper::http::Error),
    /// Sending the request, or reading the answer, failed.
    #[error(transparent)]
    Send(hyper::Error),
}

/// One POST; the answer's status.
async fn post(url: &str, body: &str, signature: &str, delivery: &str) -> Result<u16, PostError> {
    let rest = url.strip_prefix("http://").ok_or(PostError::NotHttp)?;
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(PostError::Connect)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(PostError::Handshake)?;
    tokio::spawn(conn);
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("clnrm/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-clnrm-event", "run.finished")
        .header("x-clnrm-delivery", delivery)
        .header("x-clnrm-signature", signature)
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(PostError::Send)?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_match_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
