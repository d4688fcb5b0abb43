//! The web UI (SPEC §10) at `/`: one page and the report's own script and style
//! sheet ([`clnrm_core::report::html`]), embedded in the binary. The page holds no
//! data; its script reads the API with the token the user gives it (kept in the
//! browser's local storage) and follows runs over their event streams. Served with
//! a Content-Security-Policy that allows only these files and the API.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use clnrm_core::report::html::{APP_CSS, APP_JS, ui_page};

/// What the UI's files may load: themselves and the API, nothing inline.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn asset(kind: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = ([(header::CONTENT_TYPE, kind)], body.into()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `/`: the page.
pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", ui_page("/api/v1"))
}

/// `/ui/app.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `/ui/app.css`.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
