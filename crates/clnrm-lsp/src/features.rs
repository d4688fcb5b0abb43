//! Requests: completion, hover, definition and quick fixes.

use crate::Server;
use crate::position::LineIndex;
use clnrm_core::editor::{self, CompletionKind};
use lsp_server::Request;
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CompletionItem,
    CompletionItemKind, CompletionParams, CompletionTextEdit, Documentation, GotoDefinitionParams,
    Hover, HoverContents, HoverParams, Location, MarkupContent, MarkupKind, TextEdit,
    WorkspaceEdit,
};
use serde_json::Value;
use std::collections::HashMap;

/// Why a request has no result.
pub enum Refusal {
    /// A method this server does not offer.
    Unknown(String),
    /// Parameters that do not fit the method.
    Params(String),
}

/// The result of `req`, or why it has none.
pub fn answer(server: &Server, req: Request) -> Result<Value, Refusal> {
    use lsp_types::request::{
        CodeActionRequest, Completion, GotoDefinition, HoverRequest, Request as _,
    };
    fn params<P: serde::de::DeserializeOwned>(req: &Request) -> Result<P, Refusal> {
        serde_json::from_value(req.params.clone())
            .map_err(|e| Refusal::Params(format!("{}: {e}", req.method)))
    }
    fn json<T: serde::Serialize>(v: T) -> Result<Value, Refusal> {
        serde_json::to_value(v).map_err(|e| Refusal::Params(e.to_string()))
    }
    match req.method.as_str() {
        Completion::METHOD => json(completion(server, params(&req)?)),
        HoverRequest::METHOD => json(hover(server, params(&req)?)),
        GotoDefinition::METHOD => json(definition(server, params(&req)?)),
        CodeActionRequest::METHOD => json(code_actions(params(&req)?)),
        other => Err(Refusal::Unknown(other.to_owned())),
    }
}

fn completion(server: &Server, p: CompletionParams) -> Option<Vec<CompletionItem>> {
    let pos = p.text_document_position;
    let doc = server.doc(&pos.text_document.uri)?;
    let text = doc.text.as_str();
    let index = LineIndex::new(text);
    let offset = index.offset(pos.position);
    let items = editor::completions_with(text, offset, &doc.services)
        .into_iter()
        .map(|c| CompletionItem {
            label: c.label,
            kind: Some(match c.kind {
                CompletionKind::Key => CompletionItemKind::PROPERTY,
                CompletionKind::Table => CompletionItemKind::MODULE,
                CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
                CompletionKind::Service => CompletionItemKind::REFERENCE,
            }),
            detail: Some(c.detail),
            documentation: (!c.doc.is_empty()).then_some(Documentation::MarkupContent(
                MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: c.doc,
                },
            )),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: index.range(c.replace.start, c.replace.end),
                new_text: c.insert,
            })),
            ..Default::default()
        })
        .collect();
    Some(items)
}

fn hover(server: &Server, p: HoverParams) -> Option<Hover> {
    let pos = p.text_document_position_params;
    let text = server.doc(&pos.text_document.uri)?.text.as_str();
    let index = LineIndex::new(text);
    let h = editor::hover(text, index.offset(pos.position))?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: h.markdown,
        }),
        range: Some(index.range(h.span.start, h.span.end)),
    })
}

/// The `[service.<id>]` a reference names: in the document, else in a template it
/// includes.
fn definition(server: &Server, p: GotoDefinitionParams) -> Option<Location> {
    let pos = p.text_document_position_params;
    let doc = server.doc(&pos.text_document.uri)?;
    let index = LineIndex::new(&doc.text);
    let id = editor::service_reference(&doc.text, index.offset(pos.position))?;
    if let Some(span) = editor::find_service_header(&doc.text, &id) {
        return Some(Location {
            uri: pos.text_document.uri,
            range: index.range(span.start, span.end),
        });
    }
    doc.deps.iter().find_map(|dep| {
        let text = server.text_of(dep)?;
        let span = editor::find_service_header(&text, &id)?;
        let index = LineIndex::new(&text);
        Some(Location {
            uri: crate::path_uri(dep)?,
            range: index.range(span.start, span.end),
        })
    })
}

/// A quick fix for each diagnostic of the request that carries one (its "did you
/// mean"): the replacement is in the diagnostic's `data`.
fn code_actions(p: CodeActionParams) -> Vec<CodeActionOrCommand> {
    p.context
        .diagnostics
        .into_iter()
        .filter_map(|d| {
            let fix = d.data.as_ref()?.get("fix")?.as_str()?.to_owned();
            let edit = TextEdit {
                range: d.range,
                new_text: fix.clone(),
            };
            Some(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!("Replace with {fix}"),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![d]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(p.text_document.uri.clone(), vec![edit])])),
                    ..Default::default()
                }),
                is_preferred: Some(true),
                ..Default::default()
            }))
        })
        .collect()
}
