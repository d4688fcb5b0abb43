//! Errors of the API as RFC 9457 problem documents (`application/problem+json`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error document as the API writes it (RFC 9457).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProblemDoc {
    /// `about:blank`.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for people.
    detail: String,
}

/// An error answer: its status and what went wrong.
#[derive(Debug)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub detail: String,
    /// Seconds after which the request may be sent again (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl Problem {
    /// A problem with `status` saying `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: the service cannot take it now (the database is away,
    /// the queue is full); the same request may be sent again after `seconds`.
    pub fn unavailable(detail: impl Into<String>, seconds: u32) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }
}

impl From<crate::store::StoreError> for Problem {
    /// The database is away or failed: 503, to be tried again in a second (a restart
    /// of the database is what this is for; the pool reconnects by itself).
    fn from(e: crate::store::StoreError) -> Self {
        Self::unavailable(e.to_string(), 1)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDoc {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("error").into(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"clnrm\""),
            );
        }
        response
    }
}
