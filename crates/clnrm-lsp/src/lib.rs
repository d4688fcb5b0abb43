//! `clnrm lsp`: a language server (over stdio) for `*.clnrm.toml` and
//! `*.clnrm.toml.tera`. It is a thin protocol layer over the library: diagnostics come
//! from `validate` (templates rendered with the project's variables, errors mapped to
//! template lines), completion, hover and definitions from `clnrm_core::editor`, quick
//! fixes from each diagnostic's "did you mean".
//!
//! One thread reads messages and answers them in order. Changes are coalesced: after
//! a message, every message already waiting is handled before anything is checked, so
//! a burst of keystrokes costs one check of the newest text. A change re-checks that
//! document and the open documents whose templates include it, nothing else.

mod diagnostics;
mod features;
mod position;

use clnrm_core::diag::Source;
use clnrm_core::project::Project;
use clnrm_core::template::{TemplateEngine, VarLayers};
use clnrm_core::validate::{HostPaths, check_source};
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CompletionOptions,
    HoverProviderCapability, OneOf, PublishDiagnosticsParams, SaveOptions, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextDocumentSyncSaveOptions, Uri,
};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub use position::LineIndex;

/// Why the server stopped before the client said `exit`.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    /// Reading stdin or writing stdout failed.
    #[error("stdio: {0}")]
    Stdio(#[source] std::io::Error),
    /// The thread that serves could not be started.
    #[error("cannot start the server thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The thread that serves panicked (a bug).
    #[error("the server thread panicked")]
    Panicked,
    /// The server's capabilities could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The client broke the protocol, or went away.
    #[error(transparent)]
    Protocol(#[from] lsp_server::ProtocolError),
    /// An answer could not be sent: the connection is closed.
    #[error("sending on a disconnected channel")]
    Disconnected,
}

/// Runs the server on stdin and stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), LspError> {
    let (conn, io) = Connection::stdio();
    serve(conn)?;
    io.join().map_err(LspError::Stdio)
}

/// Runs the server on `conn` (stdio, or an in-memory pair in tests and benches) until
/// the client says `exit`. Checking renders templates, which recurse: the work runs on
/// a thread with the validator's stack.
pub fn serve(conn: Connection) -> Result<(), LspError> {
    std::thread::Builder::new()
        .name("clnrm-lsp".into())
        .stack_size(clnrm_core::validate::RENDER_STACK)
        .spawn(move || serve_here(&conn))
        .map_err(LspError::Thread)?
        .join()
        .map_err(|_| LspError::Panicked)?
}

fn serve_here(conn: &Connection) -> Result<(), LspError> {
    let caps = serde_json::to_value(capabilities())?;
    conn.initialize(caps)?;
    let mut server = Server::default();
    loop {
        let Ok(msg) = conn.receiver.recv() else {
            return Ok(());
        };
        if server.handle(conn, msg)? {
            return Ok(());
        }
        while let Ok(msg) = conn.receiver.try_recv() {
            if server.handle(conn, msg)? {
                return Ok(());
            }
        }
        server.publish(conn);
    }
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::FULL),
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                    include_text: Some(false),
                })),
                ..Default::default()
            },
        )),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["[".into(), ".".into(), "\"".into(), " ".into()]),
            ..Default::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An open document.
struct Doc {
    path: PathBuf,
    text: String,
    version: i32,
    /// Templates it includes (canonical paths), from its last check.
    deps: Vec<PathBuf>,
    /// The service ids its last check found (a template's includes define some).
    services: Vec<String>,
    /// The root of its project, found when it was opened (not at every keystroke).
    root: PathBuf,
}

/// What one project needs to check its files.
struct ProjectState {
    root: PathBuf,
    engine: TemplateEngine,
    vars: VarLayers,
    host: HostPaths,
}

#[derive(Default)]
struct Server {
    docs: HashMap<String, Doc>,
    projects: HashMap<PathBuf, ProjectState>,
    /// Documents to check before the next wait.
    dirty: BTreeSet<String>,
    /// Closed documents whose diagnostics are to be cleared.
    cleared: Vec<String>,
}

/// `file://` URI → path, percent-decoded.
pub fn uri_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = path
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

/// Path → `file://` URI, percent-encoding what a URI path cannot hold.
pub fn path_uri(path: &Path) -> Option<Uri> {
    let mut out = String::from("file://");
    for b in path.to_str()?.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.parse().ok()
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Server {
    /// Handles one message; `true` when the client said `exit` after `shutdown`.
    fn handle(&mut self, conn: &Connection, msg: Message) -> Result<bool, LspError> {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    return Ok(true);
                }
                let id = req.id.clone();
                let resp =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.request(req)))
                        .unwrap_or_else(|_| {
                            Response::new_err(
                                id,
                                lsp_server::ErrorCode::InternalError as i32,
                                "clnrm failed on this request (a bug; please report it)".into(),
                            )
                        });
                // Its only error is a closed channel (the message comes back unsent).
                conn.sender
                    .send(Message::Response(resp))
                    .map_err(|_| LspError::Disconnected)?;
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    return Ok(true);
                }
                self.notification(n);
            }
            Message::Response(_) => {}
        }
        Ok(false)
    }

    fn notification(&mut self, n: Notification) {
        use lsp_types::notification::{
            DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
            Notification as _,
        };
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                {
                    let d = p.text_document;
                    self.update(d.uri.as_str(), d.text, d.version);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                    && let Some(change) = p.content_changes.into_iter().next_back()
                {
                    self.update(
                        p.text_document.uri.as_str(),
                        change.text,
                        p.text_document.version,
                    );
                }
            }
            DidSaveTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidSaveTextDocumentParams>(n.params)
                {
                    self.dirty.insert(p.text_document.uri.as_str().to_owned());
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                {
                    let uri = p.text_document.uri.as_str().to_owned();
                    if let Some(doc) = self.docs.remove(&uri) {
                        for project in self.projects.values_mut() {
                            project.engine.forget(&doc.path);
                        }
                        self.dependents_dirty(&doc.path);
                    }
                    self.dirty.remove(&uri);
                    self.cleared.push(uri);
                }
            }
            _ => {}
        }
    }

    /// A document's new text: it is checked, and so is every open document whose
    /// templates include it (which now read this text instead of the file).
    fn update(&mut self, uri: &str, text: String, version: i32) {
        let Some(path) = uri_path(uri) else { return };
        let (deps, services, root) = match self.docs.remove(uri) {
            Some(d) => (d.deps, d.services, d.root),
            None => (Vec::new(), Vec::new(), self.project_of(&path)),
        };
        if let Some(project) = self.projects.get_mut(&root) {
            project.engine.overlay(&path, text.clone());
        }
        self.docs.insert(
            uri.to_owned(),
            Doc {
                path: path.clone(),
                text,
                version,
                deps,
                services,
                root,
            },
        );
        self.dirty.insert(uri.to_owned());
        self.dependents_dirty(&path);
    }

    fn dependents_dirty(&mut self, path: &Path) {
        let changed = canonical(path);
        for (uri, doc) in &self.docs {
            if doc.deps.contains(&changed) {
                self.dirty.insert(uri.clone());
            }
        }
    }

    /// The root of the project holding `path`, its state made on first use.
    fn project_of(&mut self, path: &Path) -> PathBuf {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let (project, _) = Project::discover(dir);
        let root = project.root.clone();
        self.projects.entry(root.clone()).or_insert_with(|| {
            let vars = clnrm_core::pipeline::var_layers(&[], &project).unwrap_or_default();
            ProjectState {
                root: root.clone(),
                engine: TemplateEngine::new(&root),
                vars,
                host: HostPaths::new(&root),
            }
        });
        root
    }

    /// Checks the dirty documents and publishes their diagnostics.
    fn publish(&mut self, conn: &Connection) {
        for uri in std::mem::take(&mut self.cleared) {
            send_diagnostics(conn, &uri, Vec::new(), None);
        }
        for uri in std::mem::take(&mut self.dirty) {
            let Some((path, root)) = self
                .docs
                .get(&uri)
                .map(|d| (d.path.clone(), d.root.clone()))
            else {
                continue;
            };
            if !clnrm_core::discover::is_test_file_name(
                &path.file_name().unwrap_or_default().to_string_lossy(),
            ) {
                // A partial: its own text is not a test definition.
                continue;
            }
            let (Some(doc), Some(project)) =
                (self.docs.get_mut(&uri), self.projects.get_mut(&root))
            else {
                continue;
            };
            let version = doc.version;
            let diags = match check(project, doc) {
                Some(d) => d,
                None => {
                    // The new engine reads the open documents' unsaved texts again.
                    if let Some(p) = self.projects.get_mut(&root) {
                        for d in self.docs.values().filter(|d| d.root == root) {
                            p.engine.overlay(&d.path, d.text.clone());
                        }
                    }
                    vec![diagnostics::internal()]
                }
            };
            send_diagnostics(conn, &uri, diags, Some(version));
        }
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        match features::answer(self, req) {
            Ok(value) => Response::new_ok(id, value),
            Err(features::Refusal::Unknown(method)) => Response::new_err(
                id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("{method} is not supported"),
            ),
            Err(features::Refusal::Params(message)) => {
                Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, message)
            }
        }
    }

    /// An open document.
    fn doc(&self, uri: &Uri) -> Option<&Doc> {
        self.docs.get(uri.as_str())
    }

    /// The text of the file at `path` as the editor has it (open) or as saved.
    fn text_of(&self, path: &Path) -> Option<String> {
        let open = self
            .docs
            .values()
            .find(|d| canonical(&d.path) == path)
            .map(|d| d.text.clone());
        open.or_else(|| {
            let len = std::fs::metadata(path).ok()?.len();
            (len <= clnrm_core::validate::MAX_FILE_BYTES)
                .then(|| std::fs::read_to_string(path).ok())
                .flatten()
        })
    }
}

/// Validates `doc` as `validate` would (unsaved text, unsaved partials), and its
/// diagnostics for the client.
/// `None` when the check panicked (a bug): the project's engine is then new, without
/// the open documents' texts.
fn check(project: &mut ProjectState, doc: &mut Doc) -> Option<Vec<lsp_types::Diagnostic>> {
    let display = doc
        .path
        .strip_prefix(&project.root)
        .unwrap_or(&doc.path)
        .display()
        .to_string();
    let source = Source::file(display, doc.text.clone());
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_source(
            &mut project.engine,
            &doc.path,
            source.clone(),
            &project.vars,
            &project.host,
        )
    }));
    match checked {
        Ok(checked) => {
            doc.deps = checked.dependencies.iter().map(|p| canonical(p)).collect();
            doc.services = checked
                .file
                .as_ref()
                .map(|f| f.services.iter().map(|(id, _)| id.value.clone()).collect())
                .unwrap_or_default();
            Some(diagnostics::convert(&checked.diagnostics, &source, &|| {
                includes_of(project, &checked.dependencies)
            }))
        }
        Err(_) => {
            project.engine = TemplateEngine::new(&project.root);
            None
        }
    }
}

/// The templates a document includes, with the texts it was rendered with.
fn includes_of(project: &ProjectState, deps: &[PathBuf]) -> Vec<diagnostics::Include> {
    deps.iter()
        .filter_map(|path| {
            let text = match project.engine.overlaid(path) {
                Some(t) => t.to_owned(),
                None => {
                    let len = std::fs::metadata(path).ok()?.len();
                    if len > clnrm_core::validate::MAX_FILE_BYTES {
                        return None;
                    }
                    std::fs::read_to_string(path).ok()?
                }
            };
            let name = path
                .strip_prefix(&project.root)
                .unwrap_or(path)
                .display()
                .to_string();
            Some(diagnostics::Include { name, text })
        })
        .collect()
}

fn send_diagnostics(
    conn: &Connection,
    uri: &str,
    diagnostics: Vec<lsp_types::Diagnostic>,
    version: Option<i32>,
) {
    use lsp_types::notification::{Notification as _, PublishDiagnostics};
    let Ok(uri) = uri.parse::<Uri>() else { return };
    let params = PublishDiagnosticsParams {
        uri,
        diagnostics,
        version,
    };
    let _ = conn.sender.send(Message::Notification(Notification::new(
        PublishDiagnostics::METHOD.to_owned(),
        params,
    )));
}
