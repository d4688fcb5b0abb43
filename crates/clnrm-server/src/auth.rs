//! Tokens: made random, shown once, stored as SHA-256 hashes, each with a scope
//! (`read` < `run` < `admin`). Every request but `/healthz` carries one as
//! `Authorization: Bearer <token>`; none or an unknown one is 401, too small a scope 403.

use crate::problem::Problem;
use crate::store::{Scope, Store};
use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

/// A new token (shown once; only its hash is kept).
pub fn new_token() -> String {
    format!("clnrm_{}", crate::random_hex(32))
}

/// The hash a token is stored as.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes a token with `scope` named `name`; the token.
pub async fn create<S: Store>(store: &S, name: &str, scope: Scope) -> crate::store::Result<String> {
    let token = new_token();
    store.create_token(name, scope, &hash(&token)).await?;
    Ok(token)
}

/// The scope of the request's token, found once per request (by the API's first
/// layer) and then read by the handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted(pub Scope);

/// Checks that the request's token (found by [`authorize`]) has at least `need`.
pub fn need(granted: Granted, need: Scope) -> Result<(), Problem> {
    if granted.0 < need {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "this token's scope is {}; this needs {}",
                granted.0.as_str(),
                need.as_str()
            ),
        ));
    }
    Ok(())
}

/// The token `headers` carry (`Authorization: Bearer <token>`), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// Checks that `headers` carry a token of at least `need`; its scope.
pub async fn authorize<S: Store>(
    store: &S,
    headers: &HeaderMap,
    need: Scope,
) -> Result<Granted, Problem> {
    let Some(token) = bearer(headers) else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token> (make one with `clnrm serve token create`)",
        ));
    };
    match store.token_scope(&hash(token)).await? {
        None => Err(Problem::new(StatusCode::UNAUTHORIZED, "unknown token")),
        Some(scope) => self::need(Granted(scope), need).map(|()| Granted(scope)),
    }
}
