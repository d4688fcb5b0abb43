//! API tokens (admin): making one (shown once), listing them, deleting one.

use super::request::{Api, bytes};
use crate::auth;
use crate::problem::{Problem, ProblemDoc};
use crate::store::{Scope, Store};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// A token to make.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it may do: `read`, `run` or `admin`.
    scope: String,
    /// A name to recognise it by.
    #[serde(default = "default_token_name")]
    name: String,
}

fn default_token_name() -> String {
    "token".into()
}

/// A token just made: shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MadeToken {
    /// The token (only its hash is kept).
    token: String,
    /// Its name.
    name: String,
    /// Its scope.
    scope: String,
}

/// Every token (not the tokens themselves).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// Oldest first.
    tokens: Vec<crate::store::TokenRow>,
}

/// Makes a token (admin).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = MadeToken), (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn create_token<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = bytes(body)?;
    auth::need(granted, Scope::Admin)?;
    let t: NewToken =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let scope = Scope::parse(&t.scope)
        .ok_or_else(|| Problem::bad_request("scope: expected read, run or admin"))?;
    if t.name.is_empty() || t.name.len() > 200 {
        return Err(Problem::bad_request("name: 1 to 200 characters"));
    }
    let token = auth::create(&app.store, &t.name, scope).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(MadeToken {
            token,
            name: t.name,
            scope: scope.as_str().into(),
        }),
    )
        .into_response())
}

/// Lists the tokens (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Tokens), (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn tokens<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Admin)?;
    Ok(axum::Json(Tokens {
        tokens: app.store.tokens().await?,
    })
    .into_response())
}

/// Deletes a token (admin): it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "deleted"), (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"), (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_token<S: Store>(
    State(app): Api<S>,
    Extension(granted): Extension<auth::Granted>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    auth::need(granted, Scope::Admin)?;
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::bad_request("id: not a token id"))?;
    if app.store.delete_token(id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no token {id}")))
    }
}
