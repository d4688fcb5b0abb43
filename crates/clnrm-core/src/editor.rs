//! What an editor asks of a test definition at a position: completions of keys,
//! table headers and values (from the JSON Schema, by where the position is in the
//! TOML tree), hover text (the schema's descriptions), and the definition of a service
//! reference (`[service.<id>]`). Everything works on the text as written, so a
//! template's literal TOML gets the same help as a plain file. Positions are byte
//! offsets; the language server converts them.

use crate::diag::Span;
use crate::schema::{resolve, table_headers, test_file_schema, type_of};
use serde_json::Value;
use std::sync::LazyLock;

static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(&test_file_schema()).unwrap_or_default());

/// Every table header of the format, found once.
static HEADERS: LazyLock<Vec<String>> = LazyLock::new(|| table_headers(&SCHEMA));

/// What a completion adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    /// A key of the table at the position.
    Key,
    /// A table header.
    Table,
    /// A value from a fixed set (a word, a boolean).
    Value,
    /// A service id of this file.
    Service,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What the list shows.
    pub label: String,
    /// The text that replaces `replace`.
    pub insert: String,
    /// The bytes the completion replaces (what has been typed of it).
    pub replace: Span,
    /// The type, in the key reference's words.
    pub detail: String,
    /// The description from the schema.
    pub doc: String,
    /// What it is.
    pub kind: CompletionKind,
}

/// Hover text for the key under a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    /// The key's bytes.
    pub span: Span,
    /// Markdown: the key, its type and its description.
    pub markdown: String,
}

/// Where a position is in the TOML tree.
#[derive(Debug, Default)]
struct Context {
    /// The path of the table the position is in (header and enclosing inline tables
    /// and arrays), ids included (`["service", "db", "health_check"]`).
    path: Vec<String>,
    /// Whether the innermost enclosing bracket is an array.
    in_array: bool,
    /// The position is on a header line, after `[`: what has been typed of it.
    header: Option<Span>,
    /// The key being written (its dotted segments so far), when in key position.
    key: Option<(Vec<String>, Span)>,
    /// The key whose value is being written, when in value position.
    value_of: Option<Vec<String>>,
    /// The string the position is in, with its quotes.
    string: Option<Span>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The segments of a dotted key or header (`a."b.c".d`).
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => out.push(std::mem::take(&mut cur).trim().to_owned()),
            (None, c) if c.is_whitespace() => {}
            (_, c) => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// The header a line is, if it is one: its segments and whether it is `[[…]]`.
fn header_of(line: &str) -> Option<(Vec<String>, bool)> {
    let t = line.trim();
    let t = t.split(" #").next().unwrap_or(t).trim_end();
    if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return Some((segments(inner), true));
    }
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some((segments(inner), false))
}

/// The byte offset of the start of the line holding `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

fn context_at(text: &str, offset: usize) -> Context {
    let offset = floor_boundary(text, offset.min(text.len()));
    let mut ctx = Context::default();
    let this_line = line_start(text, offset);
    let before = &text[this_line..offset];
    if before.trim_start().starts_with('[') && !before.contains('=') {
        let open = this_line + before.len() - before.trim_start().len();
        ctx.header = Some(Span::new(open, offset));
        return ctx;
    }
    // The last header before this line.
    let mut scan_from = 0;
    let mut pos = 0;
    for line in text[..this_line].split_inclusive('\n') {
        if let Some((segs, _)) = header_of(line) {
            ctx.path = segs;
            scan_from = pos + line.len();
        }
        pos += line.len();
    }
    scan(text, scan_from, offset, &mut ctx);
    ctx
}

/// Reads from `from` to `offset`: which brackets are open, and whether the position is
/// in a key or a value.
fn scan(text: &str, from: usize, offset: usize, ctx: &mut Context) {
    // Each open bracket: the key path that opened it, and whether it is an array.
    let mut stack: Vec<(Vec<String>, bool)> = Vec::new();
    let mut key_start = Some(from);
    let mut cur_key: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = from;
    while i < offset {
        let c = bytes[i];
        match c {
            b'"' | b'\'' => {
                let triple = text[i..].starts_with(if c == b'"' { "\"\"\"" } else { "'''" });
                let (open_len, close) = if triple {
                    (3, if c == b'"' { "\"\"\"" } else { "'''" })
                } else {
                    (1, if c == b'"' { "\"" } else { "'" })
                };
                let mut j = i + open_len;
                let end = loop {
                    if j >= text.len() {
                        break text.len();
                    }
                    if c == b'"' && bytes[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if !triple && bytes[j] == b'\n' {
                        break j;
                    }
                    if bytes[j..].starts_with(close.as_bytes()) {
                        break j + close.len();
                    }
                    j += 1;
                };
                // An unclosed string (cut by the line's end or the text's) holds the
                // position at its end too.
                let closed = end >= i + open_len + close.len()
                    && bytes[..end].ends_with(close.as_bytes())
                    && end > i + open_len;
                if offset < end || (!closed && offset <= end) {
                    ctx.string = Some(Span::new(i, end));
                    break;
                }
                i = end;
                continue;
            }
            b'#' => {
                i = text[i..].find('\n').map_or(text.len(), |n| i + n);
                continue;
            }
            b'=' if key_start.is_some() => {
                let start = key_start.take().unwrap_or(i);
                cur_key = segments(&text[start..i]);
            }
            b'{' if key_start.is_none() => {
                stack.push((std::mem::take(&mut cur_key), false));
                key_start = Some(i + 1);
            }
            b'[' if key_start.is_none() => {
                let in_array = stack.last().is_some_and(|(_, a)| *a);
                let key = if in_array {
                    Vec::new()
                } else {
                    std::mem::take(&mut cur_key)
                };
                stack.push((key, true));
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' if stack.last().is_some_and(|(_, array)| !*array) => {
                key_start = Some(i + 1);
                cur_key.clear();
            }
            b'\n' if stack.is_empty() => {
                key_start = Some(i + 1);
                cur_key.clear();
            }
            _ => {}
        }
        i += 1;
    }
    for (key, _) in &stack {
        ctx.path.extend(key.iter().cloned());
    }
    ctx.in_array = stack.last().is_some_and(|(_, a)| *a);
    match key_start {
        Some(start) => {
            let typed = &text[start..offset];
            let lead = typed.len() - typed.trim_start().len();
            let start = start + lead;
            let typed = &text[start..offset];
            let word_start = typed.rfind('.').map_or(start, |d| start + d + 1);
            let mut segs = segments(typed);
            segs.pop();
            ctx.key = Some((segs, Span::new(word_start, offset)));
        }
        None => {
            ctx.value_of = Some(if ctx.in_array { Vec::new() } else { cur_key });
        }
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The schema of the value at `path`, from the root; an array stands for its items
/// when a further segment (or the end) needs a table.
fn node<'a>(path: &[String]) -> Option<&'a Value> {
    let root = &*SCHEMA;
    let mut v = resolve(root, root);
    for seg in path {
        v = child(root, v, seg)?;
    }
    Some(v)
}

fn child<'a>(root: &'a Value, v: &'a Value, seg: &str) -> Option<&'a Value> {
    let v = table_of(root, v)?;
    if let Some(p) = v.get("properties").and_then(|p| p.get(seg)) {
        return Some(p);
    }
    v.get("additionalProperties").filter(|a| a.is_object())
}

/// `v` as a table: itself, its items, or the alternative that is one.
fn table_of<'a>(root: &'a Value, v: &'a Value) -> Option<&'a Value> {
    let v = resolve(root, v);
    if v.get("properties").is_some() || v.get("additionalProperties").is_some_and(Value::is_object)
    {
        return Some(v);
    }
    if let Some(items) = v.get("items") {
        return table_of(root, items);
    }
    v.get("anyOf")
        .or_else(|| v.get("oneOf"))
        .and_then(Value::as_array)?
        .iter()
        .find_map(|alt| table_of(root, alt))
}

fn description(root: &Value, p: &Value) -> String {
    p.get("description")
        .or_else(|| resolve(root, p).get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The words a value may be (enums, booleans), quoted as TOML.
fn value_words(root: &Value, v: &Value) -> Vec<String> {
    let v = resolve(root, v);
    if let Some(words) = v.get("enum").and_then(Value::as_array) {
        return words
            .iter()
            .filter_map(Value::as_str)
            .map(|w| format!("\"{w}\""))
            .collect();
    }
    if let Some(alts) = v
        .get("oneOf")
        .or_else(|| v.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut out: Vec<String> = Vec::new();
        for alt in alts {
            if let Some(w) = alt.get("const").and_then(Value::as_str) {
                out.push(format!("\"{w}\""));
            } else {
                for w in value_words(root, alt) {
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
            }
        }
        return out;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("boolean") => vec!["true".into(), "false".into()],
        Some("array") => v
            .get("items")
            .map(|i| value_words(root, i))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The ids of `[service.<id>]` tables in `text`.
pub fn service_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some((segs, _)) = header_of(line)
            && segs.len() >= 2
            && segs[0] == "service"
            && !out.contains(&segs[1])
        {
            out.push(segs[1].clone());
        }
    }
    out
}

/// Whether a value at `path` with key `key` names a service.
fn names_service(path: &[String], key: &[String]) -> bool {
    let last = key.last().or(path.last()).map(String::as_str);
    matches!(last, Some("service" | "services" | "depends_on"))
}

/// The keys already written in the table a position is in (its header's lines).
fn written_keys(text: &str, offset: usize) -> Vec<String> {
    let start = line_start(text, offset);
    let mut keys = Vec::new();
    let lines_before = text[..start].lines().rev();
    let lines_after = text[start..].lines().skip(1);
    for line in lines_before.take_while(|l| header_of(l).is_none()) {
        keys.extend(line_key(line));
    }
    for line in lines_after.take_while(|l| header_of(l).is_none()) {
        keys.extend(line_key(line));
    }
    keys
}

fn line_key(line: &str) -> Option<String> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && k.chars().all(|c| is_key_char(c) || c == '.'))
        .then(|| k.split('.').next().unwrap_or(k).to_owned())
}

/// The completions at `offset`.
pub fn completions(text: &str, offset: usize) -> Vec<Completion> {
    completions_with(text, offset, &[])
}

/// The completions at `offset`, offering `services` (ids a template's includes
/// define, say) besides the ids of the `[service.<id>]` tables in `text`.
pub fn completions_with(text: &str, offset: usize, services: &[String]) -> Vec<Completion> {
    let root = &*SCHEMA;
    let offset = floor_boundary(text, offset.min(text.len()));
    let ctx = context_at(text, offset);
    if let Some(typed) = ctx.header {
        let line_end = text[offset..].find('\n').map_or(text.len(), |n| offset + n);
        let replace = Span::new(typed.start, line_end);
        let mut headers = HEADERS.clone();
        // `[service.<id>…]` for each service already defined, too.
        for id in service_ids(text) {
            let extra: Vec<String> = headers
                .iter()
                .filter(|h| h.contains("service.<id>"))
                .map(|h| h.replace("<id>", &crate::import::toml_text::key(&id)))
                .collect();
            headers.extend(extra);
        }
        return headers
            .into_iter()
            .map(|h| Completion {
                label: h.clone(),
                insert: h.replace("<id>", "id"),
                replace,
                detail: "table".into(),
                doc: String::new(),
                kind: CompletionKind::Table,
            })
            .collect();
    }
    if ctx.string.is_some() && ctx.value_of.is_none() {
        return Vec::new();
    }
    if let Some((dotted, replace)) = &ctx.key {
        let mut path = ctx.path.clone();
        path.extend(dotted.iter().cloned());
        let Some(table) = node(&path).and_then(|v| table_of(root, v)) else {
            return Vec::new();
        };
        let Some(props) = table.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        let written = if dotted.is_empty() && !ctx.path.is_empty() {
            written_keys(text, offset)
        } else {
            Vec::new()
        };
        return props
            .iter()
            .filter(|(k, _)| !written.contains(k))
            .map(|(k, p)| Completion {
                label: k.clone(),
                insert: k.clone(),
                replace: *replace,
                detail: type_of(root, p),
                doc: description(root, p),
                kind: CompletionKind::Key,
            })
            .collect();
    }
    let Some(key) = &ctx.value_of else {
        return Vec::new();
    };
    let replace = match ctx.string {
        // The whole string, quotes included: the completion brings its own.
        Some(s) => Span::new(s.start, s.end.max(offset)),
        None => {
            let typed = text[..offset]
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            Span::new(offset - typed, offset)
        }
    };
    let mut out = Vec::new();
    if names_service(&ctx.path, key) {
        let mut ids = service_ids(text);
        for id in services {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        for id in ids {
            out.push(Completion {
                label: id.clone(),
                insert: format!("\"{id}\""),
                replace,
                detail: "service".into(),
                doc: String::new(),
                kind: CompletionKind::Service,
            });
        }
    }
    let mut path = ctx.path.clone();
    path.extend(key.iter().cloned());
    if let Some(v) = node(&path) {
        for w in value_words(root, v) {
            out.push(Completion {
                label: w.trim_matches('"').to_owned(),
                insert: w,
                replace,
                detail: type_of(root, v),
                doc: description(root, v),
                kind: CompletionKind::Value,
            });
        }
    }
    out
}

/// The key-character run around `offset`.
fn word_at(text: &str, offset: usize) -> Option<Span> {
    let offset = floor_boundary(text, offset.min(text.len()));
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_key_char(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_key_char(*c))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then(|| Span::new(start, end))
}

/// Hover text for the key or header segment at `offset`.
pub fn hover(text: &str, offset: usize) -> Option<Hover> {
    let root = &*SCHEMA;
    let word = word_at(text, offset)?;
    let ls = line_start(text, word.start);
    let line_end = text[ls..].find('\n').map_or(text.len(), |n| ls + n);
    let line = &text[ls..line_end];
    let path = if let Some((segs, _)) = header_of(line) {
        // The header's segments up to the hovered one.
        let upto = segments(text[ls..word.end].trim_start().trim_start_matches('['));
        segs.into_iter().take(upto.len()).collect::<Vec<_>>()
    } else {
        let after = text[word.end..line_end].trim_start();
        if !(after.starts_with('=') || after.starts_with('.')) {
            return None;
        }
        let ctx = context_at(text, word.end);
        let (dotted, _) = ctx.key?;
        let mut path = ctx.path;
        path.extend(dotted);
        path.push(text[word.start..word.end].to_owned());
        path
    };
    let (last, parent) = path.split_last()?;
    let parent_node = node(parent)?;
    let table = table_of(root, parent_node)?;
    let p = table.get("properties").and_then(|p| p.get(last.as_str()))?;
    Some(Hover {
        span: word,
        markdown: format!(
            "**`{last}`**: {}\n\n{}",
            type_of(root, p),
            description(root, p)
        ),
    })
}

/// The span of the `[service.<id>]` header's id that a service reference at `offset`
/// names (in a scenario's or step's `service`, `services`, `depends_on`, an
/// `[[expect.log]]`'s `service`), when that table is in `text`.
pub fn definition(text: &str, offset: usize) -> Option<Span> {
    find_service_header(text, &service_reference(text, offset)?)
}

/// The service id a reference at `offset` names.
pub fn service_reference(text: &str, offset: usize) -> Option<String> {
    let offset = floor_boundary(text, offset.min(text.len()));
    let ctx = context_at(text, offset);
    let id = match (ctx.string, &ctx.value_of, &ctx.key) {
        (Some(s), Some(key), _) if names_service(&ctx.path, key) => {
            text[s.start..s.end].trim_matches(['"', '\'']).to_owned()
        }
        // `depends_on = { db = "healthy" }`: the key names the service.
        (None, _, Some(_)) if ctx.path.last().is_some_and(|k| k == "depends_on") => {
            let w = word_at(text, offset)?;
            text[w.start..w.end].to_owned()
        }
        (None, Some(key), None) if key.last().is_some_and(|k| k == "depends_on") => {
            return None;
        }
        _ => return None,
    };
    Some(id)
}

/// The span of the id in `[service.<id>]` (or, failing that, in the first
/// `[service.<id>.…]`) in `text`.
pub fn find_service_header(text: &str, id: &str) -> Option<Span> {
    let mut pos = 0;
    let mut fallback = None;
    for line in text.split_inclusive('\n') {
        if let Some((segs, many)) = header_of(line)
            && !many
            && segs.len() >= 2
            && segs[0] == "service"
            && segs[1] == id
        {
            // The id after `service.` (not a match inside the word `service`).
            let after = line.find("service").map_or(0, |i| i + "service".len());
            let at = line[after..].find(id).map_or(pos, |i| pos + after + i);
            let span = Span::new(at, at + id.len());
            if segs.len() == 2 {
                return Some(span);
            }
            fallback.get_or_insert(span);
        }
        pos += line.len();
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with `|` marking the position, and the position.
    fn at(marked: &str) -> (String, usize) {
        let i = marked
            .find('|')
            .unwrap_or_else(|| panic!("no | in {marked}"));
        (marked.replacen('|', "", 1), i)
    }

    fn labels(marked: &str) -> Vec<String> {
        let (text, i) = at(marked);
        completions(&text, i).into_iter().map(|c| c.label).collect()
    }

    const HEAD: &str = "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.db]\nimage = \"i\"\n\n[service.app]\nimage = \"i\"\n\n";

    #[test]
    fn keys_complete_by_table_without_those_written() {
        let got = labels(&format!("{HEAD}[[scenario]]\nname = \"s\"\nse|"));
        for k in ["service", "services", "steps", "timeout_ms", "tags"] {
            assert!(got.contains(&k.to_owned()), "{k}: {got:?}");
        }
        assert!(!got.contains(&"name".to_owned()), "written: {got:?}");
        assert!(!got.contains(&"image".to_owned()));
        let got = labels(&format!("{HEAD}[service.web]\n|"));
        assert!(
            got.contains(&"depends_on".to_owned()) && got.contains(&"image".to_owned()),
            "{got:?}"
        );
        // In an inline table, and in a dotted key.
        let got = labels(&format!(
            "{HEAD}[service.web]\nhealth_check = {{ cmd = [\"true\"], |"
        ));
        assert!(got.contains(&"interval_ms".to_owned()), "{got:?}");
        assert!(!got.contains(&"image".to_owned()), "{got:?}");
        let got = labels(&format!(
            "{HEAD}[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nhttp.|"
        ));
        assert!(
            got.contains(&"method".to_owned()) && got.contains(&"url".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario.expect.span]]\nattrs = {{ a|"));
        assert!(
            got.contains(&"all".to_owned()) && got.contains(&"any".to_owned()),
            "{got:?}"
        );
    }

    #[test]
    fn values_complete_from_enums_and_service_ids() {
        let got = labels(&format!("{HEAD}[otel]\nexporter = |"));
        assert!(
            got.contains(&"otlp".to_owned()) && got.contains(&"stdout".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario.expect.span]]\nkind = \"se|\""));
        assert!(got.contains(&"server".to_owned()), "{got:?}");
        let (text, i) = at(&format!(
            "{HEAD}[[scenario]]\nname = \"s\"\nservice = \"a|\"\n"
        ));
        let got = completions(&text, i);
        let names: Vec<&str> = got.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(names, ["db", "app"]);
        assert_eq!(&text[got[0].replace.start..got[0].replace.end], "\"a\"");
        // An unclosed string at the line's end: the whole of it is replaced.
        let (text, i) = at(&format!(
            "{HEAD}[[scenario]]\nservice = \"d|\nname = \"s\"\n"
        ));
        let got = completions(&text, i);
        assert_eq!(&text[got[0].replace.start..got[0].replace.end], "\"d");
        let got = labels(&format!("{HEAD}[[scenario]]\nservices = [\"db\", |]"));
        assert_eq!(got, ["db", "app"]);
        let got = labels(&format!("{HEAD}[service.web]\ndepends_on = {{ db = |"));
        assert!(
            got.contains(&"healthy".to_owned()) && got.contains(&"completed".to_owned()),
            "{got:?}"
        );
        let got = labels(&format!("{HEAD}[[scenario]]\nconcurrent = |"));
        assert_eq!(got, ["true", "false"]);
    }

    #[test]
    fn headers_complete_with_the_services_ids() {
        let (text, i) = at(&format!("{HEAD}[[scen|"));
        let got = completions(&text, i);
        let steps = got
            .iter()
            .find(|c| c.label == "[[scenario.steps]]")
            .unwrap_or_else(|| panic!("{got:?}"));
        assert_eq!(&text[steps.replace.start..steps.replace.end], "[[scen");
        assert!(
            got.iter().any(|c| c.label == "[[service.db.setup]]"),
            "{got:?}"
        );
    }

    #[test]
    fn hover_describes_keys_and_header_segments() {
        let (text, i) = at(&format!(
            "{HEAD}[service.web]\nhealth_check = {{ inter|val_ms = 5 }}"
        ));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert_eq!(&text[h.span.start..h.span.end], "interval_ms");
        assert!(h.markdown.contains("Time between probes"), "{}", h.markdown);
        let (text, i) = at(&format!("{HEAD}[[scenario.st|eps]]\n"));
        let h = hover(&text, i).unwrap_or_else(|| panic!("no hover"));
        assert!(h.markdown.starts_with("**`steps`**"), "{}", h.markdown);
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nname = \"na|me\""));
        assert_eq!(hover(&text, i), None);
    }

    #[test]
    fn service_references_lead_to_their_table() {
        let db = HEAD.find("[service.db]").unwrap_or_default() + "[service.".len();
        let want = Some(Span::new(db, db + 2));
        for marked in [
            format!("{HEAD}[[scenario]]\nservice = \"d|b\""),
            format!("{HEAD}[[scenario]]\nservices = [\"app\", \"|db\"]"),
            format!("{HEAD}[[scenario.steps]]\nname = \"x\"\nservice = \"db|\""),
            format!("{HEAD}[service.web]\ndepends_on = {{ d|b = \"healthy\" }}"),
            format!("{HEAD}[service.web]\ndepends_on = [\n  \"d|b\",\n]"),
            format!("{HEAD}[[expect.log]]\nservice = \"|db\""),
        ] {
            let (text, i) = at(&marked);
            assert_eq!(definition(&text, i), want, "{marked}");
        }
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nname = \"d|b\""));
        assert_eq!(definition(&text, i), None);
        // An id that is part of the word `service`.
        let text = "[service.ice]\nimage = \"i\"\n[[scenario]]\nservice = \"ice\"\n";
        let at_ref = text.rfind("ice").unwrap_or_default() + 1;
        assert_eq!(definition(text, at_ref), Some(Span::new(9, 12)));
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nservice = \"nope|\""));
        assert_eq!(definition(&text, i), None);
    }

    /// The validator's keys of every table are the schema's: for each table header the
    /// schema has, a file with an unknown key there gets "known keys here: …", which
    /// must list exactly the table's properties.
    #[test]
    fn every_table_has_the_same_keys_in_the_validator_and_the_schema() {
        let root = &*SCHEMA;
        let mut checked = 0;
        for header in table_headers(root) {
            let many = header.starts_with("[[");
            let path_text = header.trim_matches(['[', ']']).replace("<id>", "x");
            let segs = segments(&path_text);
            let Some(table) = node(&segs).and_then(|v| table_of(root, v)) else {
                panic!("{header}: not in the schema");
            };
            let mut want: Vec<String> = table
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            want.sort();
            // The required keys, so that each table is read to its end.
            let required = |table: &Value| {
                let mut body = String::new();
                for key in table
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let p = &table["properties"][key];
                    let value = match resolve(root, p).get("type").and_then(Value::as_str) {
                        Some("integer" | "number") => "1",
                        Some("boolean") => "true",
                        Some("array") => "[\"true\"]",
                        Some("object") => "{}",
                        _ => "\"x\"",
                    };
                    body.push_str(&format!("{key} = {value}\n"));
                }
                body
            };
            // Arrays of tables on the way get an element first (`[[expect.span]]`
            // before `[expect.span.attrs]`).
            let mut parents = String::new();
            for i in 1..segs.len() {
                let prefix = &segs[..i];
                let is_array = node(prefix)
                    .map(|v| resolve(root, v))
                    .is_some_and(|v| v.get("items").is_some());
                if is_array && prefix != ["scenario"] {
                    let item = node(prefix).and_then(|v| table_of(root, v));
                    parents.push_str(&format!(
                        "[[{}]]\n{}",
                        prefix.join("."),
                        item.map(&required).unwrap_or_default()
                    ));
                }
            }
            let body = required(table);
            let open = if many { "[[" } else { "[" };
            let close = if many { "]]" } else { "]" };
            // The rest of a valid file, less the table under test.
            let base: String = [
                ("meta", "[meta]\nname = \"t\"\nversion = \"1\"\n"),
                ("service.x", "[service.x]\nimage = \"i\"\n"),
                ("scenario", "[[scenario]]\nname = \"x\"\nrun = \"true\"\n"),
            ]
            .iter()
            .filter(|(table, _)| *table != path_text)
            .map(|(_, text)| *text)
            .collect();
            let text =
                format!("{base}\n{parents}{open}{path_text}{close}\n{body}zzzzzzzzzzzz = 1\n");
            let src = crate::diag::Source::file("t.clnrm.toml", text.clone());
            let (_, diags) = crate::model::parse_test_file(&src);
            let Some(help) = diags
                .into_sorted()
                .into_iter()
                .find(|d| d.message.contains("zzzzzzzzzzzz"))
                .and_then(|d| d.help)
            else {
                // A table of free keys ([vars], env, attrs.all, …) takes any key.
                assert!(want.is_empty(), "{header}: no unknown-key warning\n{text}");
                continue;
            };
            let mut got: Vec<String> = help
                .strip_prefix("known keys here: ")
                .unwrap_or_else(|| panic!("{header}: {help}"))
                .split(", ")
                .map(str::to_owned)
                .collect();
            got.sort();
            assert_eq!(
                got, want,
                "{header}: the validator's keys, then the schema's"
            );
            checked += 1;
        }
        assert!(checked >= 25, "{checked} tables");
    }

    #[test]
    fn odd_positions_and_texts_do_not_panic() {
        let text = "[meta]\nname = \"é\"\n[[scenario]]\nx = { a = [1, {b = \"\"\"\nq\"\"\"}]}\n'";
        for i in 0..=text.len() + 2 {
            let _ = completions(text, i);
            let _ = hover(text, i);
            let _ = definition(text, i);
        }
    }
}
