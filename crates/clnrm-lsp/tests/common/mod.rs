//! An in-memory client of the server, for the protocol tests and the bench.
#![allow(dead_code, reason = "each target uses a part")]

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use serde_json::{Value, json};
use std::time::Duration;

pub struct Client {
    pub conn: Connection,
    server: Option<std::thread::JoinHandle<Result<(), clnrm_lsp::LspError>>>,
    next: i32,
}

impl Client {
    /// A server on an in-memory connection, initialized.
    pub fn start() -> Self {
        let (server, client) = Connection::memory();
        let handle = std::thread::spawn(move || clnrm_lsp::serve(server));
        let mut c = Self {
            conn: client,
            server: Some(handle),
            next: 0,
        };
        let caps = c.request("initialize", json!({ "capabilities": {} }));
        assert!(caps.response_result.is_ok(), "{caps:?}");
        c.notify("initialized", json!({}));
        c
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                method.into(),
                params,
            )))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends a request and returns its response (notifications in between are dropped).
    pub fn request(&mut self, method: &str, params: Value) -> Response {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.into(),
                params,
            )))
            .unwrap_or_else(|e| panic!("{e}"));
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => return r,
                _ => {}
            }
        }
    }

    pub fn recv(&self) -> Message {
        self.conn
            .receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no message from the server: {e}"))
    }

    /// The next diagnostics published for `uri` at `version`.
    pub fn diagnostics(&self, uri: &str, version: i32) -> Vec<Value> {
        loop {
            if let Message::Notification(n) = self.recv()
                && n.method == "textDocument/publishDiagnostics"
                && n.params["uri"] == uri
                && n.params["version"] == version
            {
                return n.params["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }

    pub fn open(&self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "toml", "version": 1, "text": text } }),
        );
    }

    pub fn change(&self, uri: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    /// Shuts the server down; its result.
    pub fn stop(mut self) -> Result<(), String> {
        let r = self.request("shutdown", Value::Null);
        assert!(r.response_result.is_ok(), "{r:?}");
        self.notify("exit", Value::Null);
        self.server.take().map_or(Ok(()), |h| match h.join() {
            Ok(served) => served.map_err(|e| e.to_string()),
            Err(_) => Err("panicked".into()),
        })
    }
}
