//! Where a position is in the TOML tree: the table it is in (headers, inline tables,
//! arrays), and whether it is in a header, a key, a value or a string. It reads the
//! text as written, with no parser, so that half-typed files get answers too; it knows
//! nothing of the schema.

use crate::diag::Span;

/// Where a position is in the TOML tree.
#[derive(Debug, Default)]
pub(super) struct Context {
    /// The path of the table the position is in (header and enclosing inline tables
    /// and arrays), ids included (`["service", "db", "health_check"]`).
    pub(super) path: Vec<String>,
    /// Whether the innermost enclosing bracket is an array.
    in_array: bool,
    /// The position is on a header line, after `[`: what has been typed of it.
    pub(super) header: Option<Span>,
    /// The key being written (its dotted segments so far), when in key position.
    pub(super) key: Option<(Vec<String>, Span)>,
    /// The key whose value is being written, when in value position.
    pub(super) value_of: Option<Vec<String>>,
    /// The string the position is in, with its quotes.
    pub(super) string: Option<Span>,
}

pub(super) fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The segments of a dotted key or header (`a."b.c".d`).
pub(super) fn segments(text: &str) -> Vec<String> {
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
pub(super) fn header_of(line: &str) -> Option<(Vec<String>, bool)> {
    let t = line.trim();
    let t = t.split(" #").next().unwrap_or(t).trim_end();
    if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return Some((segments(inner), true));
    }
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some((segments(inner), false))
}

/// The byte offset of the start of the line holding `offset`.
pub(super) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

pub(super) fn context_at(text: &str, offset: usize) -> Context {
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

pub(super) fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The key-character run around `offset`.
pub(super) fn word_at(text: &str, offset: usize) -> Option<Span> {
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
