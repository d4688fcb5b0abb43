//! `report.html` (SPEC §10): one self-contained file, no network, that shows the
//! run, a filterable scenario list, and per scenario its steps, outputs, service
//! logs, span waterfall and baseline diff. The same script and style sheet are the
//! runs service's web UI ([`APP_JS`], [`APP_CSS`]).
//!
//! The page is a shell: the data sits in a `<script type="application/gzip+base64">`
//! block (JSON, gzipped, in base64: no text of the report can close the block, and a
//! run of 1,000 scenarios × 50 spans stays far within 5 MB), and the script, once
//! the browser has inflated it (`DecompressionStream`), builds the views with DOM
//! calls that set text, never markup, so a span name or an output holding
//! `<script>` shows as text. A Content-Security-Policy `<meta>` allows only the
//! page's own script and style (by hash) and no connection.
//!
//! Spans are written compactly: every string once in a table, a span an array:
//! `[span_id, parent row or -1, name, kind, start µs, duration µs, status,
//! message or -1, service or -1, trace, [key, value, …], [[name, at µs, [key,
//! value, …]], …]]`, times counted from the scenario's first span.

use super::{RunReport, Summary, to_json};
use crate::exec::{ScenarioResult, Status};
use crate::model::{SpanKind, StatusCode};
use crate::otel::{AttrValue, SpanRecord};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The script of the report and of the web UI.
pub const APP_JS: &str = include_str!("html/app.js");
/// Their style sheet.
pub const APP_CSS: &str = include_str!("html/app.css");

/// The most spans of one scenario a report shows (the rest are counted).
pub const MAX_SPANS: usize = 50_000;

/// The largest saved span file of a scenario a report reads (as the runs service
/// keeps per scenario): past it, the report counts the spans without their data, so
/// that writing it stays within a few tens of megabytes (a span flood's file is
/// larger).
pub const MAX_ARTIFACT_BYTES: u64 = 8 << 20;

/// The spans of a scenario, where a report finds them: the run that collected them
/// (a cached scenario's come from an earlier run) and the spans.
pub type SpanSource<'a> = dyn Fn(&ScenarioResult) -> Option<(String, Vec<SpanRecord>)> + 'a;

/// Spans from a project's artifacts directory (`.clnrm/artifacts/`), masked as
/// saved: those a scenario of run `run_id` collected, and a cached scenario's from
/// the run that last ran it (the report says which); none from a file over
/// [`MAX_ARTIFACT_BYTES`].
pub fn artifact_spans<'a>(
    dir: &'a Path,
    run_ids: &'a [String],
) -> impl Fn(&ScenarioResult) -> Option<(String, Vec<SpanRecord>)> + 'a {
    move |r| {
        if r.status == Status::Skipped {
            return None;
        }
        let path = crate::otel::artifacts::artifact_path(dir, &r.id.0);
        if std::fs::metadata(&path).ok()?.len() > MAX_ARTIFACT_BYTES {
            return None;
        }
        let saved = crate::otel::artifacts::load(dir, &r.id.0).ok()??;
        (r.status == Status::Cached || run_ids.contains(&saved.run_id))
            .then_some((saved.run_id, saved.spans))
    }
}

/// `report.html` of `report`, with each scenario's spans from `spans`.
pub fn to_html(report: &RunReport, spans: &SpanSource<'_>) -> String {
    let data = data_json(report, spans);
    let title = format!("clnrm run {}", report.run_id);
    let s = Summary::of(&report.results);
    let noscript = format!(
        "{title}: {} passed, {} flaky, {} failed, {} errors, {} cached, {} skipped. \
         The report's views need JavaScript; report.json holds the same run.",
        s.passed, s.flaky, s.failed, s.errors, s.cached, s.skipped
    );
    let mut out = String::with_capacity(data.len() + APP_JS.len() + APP_CSS.len() + 2048);
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src '{}'; style-src '{}'; img-src data:; base-uri 'none'; form-action 'none'\">\n",
        csp_hash(APP_JS),
        csp_hash(APP_CSS)
    ));
    out.push_str(&format!("<title>{}</title>\n", escape(&title)));
    out.push_str(&format!("<style>{APP_CSS}</style>\n</head>\n<body>\n"));
    out.push_str(&format!(
        "<noscript><p>{}</p></noscript>\n<div id=\"app\"></div>\n",
        escape(&noscript)
    ));
    out.push_str("<script id=\"clnrm-data\" type=\"application/gzip+base64\">");
    out.push_str(&data);
    out.push_str("</script>\n");
    out.push_str(&format!("<script>{APP_JS}</script>\n</body>\n</html>\n"));
    out
}

/// The web UI's page (the runs service's `/`): the same script and style sheet,
/// loaded from `/ui/`, reading the API under `api`.
pub fn ui_page(api: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>clnrm runs</title>\n<link rel=\"stylesheet\" href=\"/ui/app.css\">\n</head>\n\
         <body data-api=\"{}\">\n<noscript><p>The clnrm web UI needs JavaScript; the API is at {}.</p></noscript>\n\
         <div id=\"app\"></div>\n<script src=\"/ui/app.js\"></script>\n</body>\n</html>\n",
        escape(api),
        escape(api)
    )
}

/// Text made safe inside HTML elements and quoted attributes (XML's escaping, which
/// HTML reads the same).
pub fn escape(text: &str) -> String {
    super::junit::esc(text)
}

/// A CSP source for an inline element's exact text: `sha256-<base64>`.
fn csp_hash(text: &str) -> String {
    format!("sha256-{}", base64(&Sha256::digest(text.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The data block: `{"report": <report.json>, "strings": […], "spans": [per
/// scenario: null or {"run", "rows", "dropped"}]}`, gzipped, in base64. Written as
/// text scenario by scenario: one scenario's spans are in memory at a time, and
/// their rows take a few dozen bytes each.
fn data_json(report: &RunReport, source: &SpanSource<'_>) -> String {
    let mut strings = Strings::default();
    let mut spans = String::from("[");
    for (i, r) in report.results.iter().enumerate() {
        if i > 0 {
            spans.push(',');
        }
        match source(r) {
            Some((run, list)) if !list.is_empty() => compact(&mut spans, &run, list, &mut strings),
            _ => spans.push_str("null"),
        }
    }
    spans.push(']');
    // Level 1: a fifth of the time of the default level for a few percent more bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to memory cannot fail.
    let _ = (|| -> std::io::Result<()> {
        gz.write_all(b"{\"report\":")?;
        serde_json::to_writer(&mut gz, &to_json(report))?;
        gz.write_all(b",\"strings\":")?;
        serde_json::to_writer(&mut gz, &strings.list)?;
        gz.write_all(b",\"spans\":")?;
        gz.write_all(spans.as_bytes())?;
        gz.write_all(b"}")
    })();
    base64(&gz.finish().unwrap_or_default())
}

#[derive(Default)]
struct Strings {
    index: HashMap<String, usize>,
    list: Vec<String>,
}

impl Strings {
    fn of(&mut self, s: &str) -> usize {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.list.len();
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }

    /// `[key, value, …]` as string indices.
    fn attrs(&mut self, out: &mut String, attrs: &BTreeMap<String, AttrValue>) {
        out.push('[');
        for (n, (k, v)) in attrs.iter().enumerate() {
            let (k, v) = (self.of(k), self.of(&v.to_string()));
            let _ = write!(out, "{}{k},{v}", if n > 0 { "," } else { "" });
        }
        out.push(']');
    }
}

fn kind_code(k: SpanKind) -> u8 {
    match k {
        SpanKind::Internal => 0,
        SpanKind::Server => 1,
        SpanKind::Client => 2,
        SpanKind::Producer => 3,
        SpanKind::Consumer => 4,
    }
}

fn status_code(s: StatusCode) -> u8 {
    match s {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

/// One scenario's spans as rows (see the module's documentation), written to `out`
/// as `{"run", "rows", "dropped"}`.
fn compact(out: &mut String, run: &str, mut spans: Vec<SpanRecord>, strings: &mut Strings) {
    let dropped = spans.len().saturating_sub(MAX_SPANS);
    if dropped > 0 {
        // Past the bound, the earliest-starting spans: a parent starts before its
        // children (spans arrive as they end, children first, so the first ones
        // would keep children and lose their parents).
        spans.sort_by_key(|s| s.start_time_unix_nano);
        spans.truncate(MAX_SPANS);
    }
    let t0 = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let us = |ns: u64| (ns.saturating_sub(t0)) / 1000;
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        row_of.entry(s.span_id.as_str()).or_insert(i);
    }
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let _ = write!(
        out,
        "{{\"run\":{},\"dropped\":{dropped},\"rows\":[",
        quoted(run)
    );
    for (i, s) in spans.iter().enumerate() {
        let parent = s
            .parent_span_id
            .as_deref()
            .and_then(|p| row_of.get(p).copied())
            .filter(|p| *p != i)
            .map_or(-1, |p| p as i64);
        let service = s
            .resource
            .get("service.name")
            .map_or(-1, |v| strings.of(&plain(v)) as i64);
        let message = if s.status_message.is_empty() {
            -1
        } else {
            strings.of(&s.status_message) as i64
        };
        let _ = write!(
            out,
            "{}[{},{parent},{},{},{},{},{},{message},{service},{},",
            if i > 0 { "," } else { "" },
            quoted(&s.span_id),
            strings.of(&s.name),
            kind_code(s.kind),
            us(s.start_time_unix_nano),
            s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) / 1000,
            status_code(s.status),
            strings.of(&s.trace_id),
        );
        strings.attrs(out, &s.attributes);
        out.push_str(",[");
        for (n, e) in s.events.iter().enumerate() {
            let name = strings.of(&e.name);
            let _ = write!(
                out,
                "{}[{name},{},",
                if n > 0 { "," } else { "" },
                us(e.time_unix_nano)
            );
            strings.attrs(out, &e.attributes);
            out.push(']');
        }
        out.push_str("]]");
    }
    out.push_str("]}");
}

/// A string attribute without its quotes; others as shown.
fn plain(v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::parse_line;
    use serde_json::Value;

    fn span(line: &str) -> SpanRecord {
        parse_line(line).expect("span").remove(0)
    }

    fn unbase64(text: &str) -> Vec<u8> {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let digits: Vec<u32> = text
            .bytes()
            .filter(|b| *b != b'=')
            .map(|b| ABC.iter().position(|a| *a == b).expect("base64") as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in digits.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    fn data_of(html: &str) -> Value {
        let open = "type=\"application/gzip+base64\">";
        let start = html.find(open).expect("data") + open.len();
        let end = start + html[start..].find("</script>").expect("end");
        let gz = unbase64(&html[start..end]);
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json)
            .expect("gzip");
        serde_json::from_str(&json).expect("data is JSON")
    }

    #[test]
    fn base64_agrees_with_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain}");
        }
    }

    #[test]
    fn no_text_of_the_report_ends_the_data_block() {
        let mut report = super::super::tests::sample();
        report.results[0].steps[0].stdout = "</script><script>alert(1)</script><!--".into();
        report.run_id = "</title><b>".into();
        let html = to_html(&report, &|_| None);
        // One data block, one script: the output is inside the data, in base64.
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(!html.contains("<!--") && !html.contains("alert"));
        assert!(html.contains("<title>clnrm run &lt;/title&gt;&lt;b&gt;</title>"));
        let data = data_of(&html);
        assert_eq!(
            data["report"]["scenarios"][0]["steps"][0]["stdout"],
            "</script><script>alert(1)</script><!--"
        );
    }

    #[test]
    fn the_inline_script_and_style_cannot_end_or_change_their_element() {
        for text in [APP_JS, APP_CSS] {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("</script") && !lower.contains("</style"));
            assert!(!lower.contains("<!--"));
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let html = to_html(&super::super::tests::sample(), &|_| None);
        let js = format!("<script>{APP_JS}</script>");
        assert!(html.contains(&js));
        assert!(html.contains(&csp_hash(APP_JS)));
        assert!(html.contains(&csp_hash(APP_CSS)));
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn spans_are_rows_of_interned_strings_with_parents_by_row() {
        let spans = vec![
            span(
                r#"{"name":"root","trace_id":"t1","span_id":"a","start_time_unix_nano":1000000,"end_time_unix_nano":5000000,"attributes":{"http.method":"GET","n":3}}"#,
            ),
            span(
                r#"{"name":"child","trace_id":"t1","span_id":"b","parent_span_id":"a","start_time_unix_nano":2000000,"end_time_unix_nano":3000000,"status":"ERROR","status_message":"boom","kind":"client","attributes":{"http.method":"GET"}}"#,
            ),
            span(
                r#"{"name":"orphan","trace_id":"t1","span_id":"c","parent_span_id":"zz","start_time_unix_nano":4000000,"end_time_unix_nano":4000000}"#,
            ),
        ];
        let mut spans = spans;
        spans[0]
            .resource
            .insert("service.name".into(), AttrValue::Str("api".into()));
        spans[1].status_message = "boom".into();
        let mut report = super::super::tests::sample();
        report.results.truncate(1);
        let html = to_html(&report, &|_| Some(("r1".into(), spans.clone())));
        let data = data_of(&html);
        let strings: Vec<&str> = data["strings"]
            .as_array()
            .expect("strings")
            .iter()
            .map(|s| s.as_str().expect("str"))
            .collect();
        let s = |v: &Value| strings[v.as_u64().expect("index") as usize];
        let rows = data["spans"][0]["rows"].as_array().expect("rows");
        assert_eq!(data["spans"][0]["run"], "r1");
        assert_eq!(rows.len(), 3);
        let (root, child, orphan) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!(s(&root[2]), "root");
        assert_eq!(root[1], -1);
        assert_eq!((root[4].as_u64(), root[5].as_u64()), (Some(0), Some(4000)));
        assert_eq!(s(&root[8]), "api");
        assert_eq!(s(&root[10][0]), "http.method");
        assert_eq!(s(&root[10][1]), "\"GET\"");
        assert_eq!(s(&root[10][3]), "3");
        assert_eq!(child[1], 0, "its parent is row 0");
        assert_eq!((child[3].as_u64(), child[6].as_u64()), (Some(2), Some(2)));
        assert_eq!(s(&child[7]), "boom");
        // "http.method" and "\"GET\"" are one string each.
        assert_eq!(child[10][0], root[10][0]);
        assert_eq!(child[10][1], root[10][1]);
        assert_eq!(orphan[1], -1, "a parent not collected makes it a root");
        assert_eq!(orphan[5], 0);
    }
}
