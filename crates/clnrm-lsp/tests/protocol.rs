//! The server on an in-memory connection: bad requests get errors, not a crash.
mod common;

use common::Client;
use serde_json::json;

#[test]
fn bad_requests_are_answered_with_errors_and_the_server_keeps_serving() {
    let mut c = Client::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let uri = format!("file://{}/a%20b.clnrm.toml", dir.path().display());
    let r = c.request("textDocument/completion", json!({ "nonsense": true }));
    assert!(r.response_result.is_err(), "{r:?}");
    let r = c.request("workspace/symbol", json!({ "query": "" }));
    assert!(r.response_result.is_err(), "{r:?}");
    // A document that is not open: no answer, not an error.
    let pos = json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 0 } });
    let r = c.request("textDocument/hover", pos.clone());
    assert_eq!(r.response_result.ok(), Some(serde_json::Value::Null));
    // Garbage text and positions past the end.
    c.open(&uri, "[meta\n\u{0}\"\"\"");
    let diags = c.diagnostics(&uri, 1);
    assert!(!diags.is_empty());
    let far =
        json!({ "textDocument": { "uri": uri }, "position": { "line": 99, "character": 99 } });
    for method in [
        "textDocument/hover",
        "textDocument/completion",
        "textDocument/definition",
    ] {
        let r = c.request(method, far.clone());
        assert!(r.response_result.is_ok(), "{method}: {r:?}");
    }
    // The percent-encoded path is the file's: a valid text is clean.
    c.change(&uri, 2, "[meta]\nname = \"t\"\nversion = \"1\"\n[service.a]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n");
    assert_eq!(c.diagnostics(&uri, 2), Vec::<serde_json::Value>::new());
    assert_eq!(c.stop(), Ok(()));
}
