//! JUnit XML: one `<testsuite>` per file, one `<testcase>` per scenario; `<failure>`
//! for a failed scenario, `<error>` for one that could not run, `<skipped>` for a
//! cache hit or a scenario not run. Attempts before the last (`retries`) in the Maven
//! Surefire form CI servers read: a `<flakyFailure>` each inside a passing case, a
//! `<rerunFailure>` each beside the `<failure>` of one that never passed. Written by
//! hand: the format is small and the escaping is the only subtle part.

use super::{RunReport, Summary, TAIL_BYTES, tail};
use crate::exec::{ScenarioResult, Status};
use std::fmt::Write;

/// Escapes text for XML content and attribute values (also drops characters XML 1.0 forbids).
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The JUnit XML document of a run.
pub fn to_junit(report: &RunReport) -> String {
    let s = Summary::of(&report.results);
    let mut files: Vec<&str> = Vec::new();
    for r in &report.results {
        if !files.contains(&r.file.as_str()) {
            files.push(&r.file);
        }
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"clnrm\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        s.total(),
        s.failed,
        s.errors,
        s.skipped + s.cached,
        secs(report.duration)
    );
    for file in files {
        let cases: Vec<&ScenarioResult> =
            report.results.iter().filter(|r| r.file == file).collect();
        let fs = Summary::of(cases.iter().copied());
        let time = cases.iter().fold(std::time::Duration::ZERO, |t, c| {
            t.saturating_add(c.duration)
        });
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            esc(file),
            fs.total(),
            fs.failed,
            fs.errors,
            fs.skipped + fs.cached,
            secs(time)
        );
        for case in cases {
            testcase(&mut xml, case);
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn testcase(xml: &mut String, r: &ScenarioResult) {
    let _ = write!(
        xml,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        esc(&r.name),
        esc(&r.file),
        secs(r.duration)
    );
    let message = esc(r.message.as_deref().unwrap_or(""));
    let kind = r.reason.map_or("", |x| x.as_str());
    // Surefire's order: failure, rerunFailure*, flakyFailure*, skipped, error.
    let (mut body, last) = match r.status {
        Status::Passed | Status::Flaky => (None, None),
        Status::Cached => (
            None,
            Some("      <skipped message=\"cached\"/>\n".to_owned()),
        ),
        Status::Skipped => (
            None,
            Some(format!("      <skipped message=\"{message}\"/>\n")),
        ),
        Status::Failed => (
            Some(format!(
                "      <failure message=\"{message}\" type=\"{kind}\">{}</failure>\n",
                esc(&details(r))
            )),
            None,
        ),
        Status::Error => (
            None,
            Some(format!(
                "      <error message=\"{message}\" type=\"{kind}\">{}</error>\n",
                esc(&details(r))
            )),
        ),
    };
    let (output, errors) = outputs(r);
    let again = if r.status == Status::Flaky {
        "flakyFailure"
    } else {
        "rerunFailure"
    };
    for a in &r.earlier {
        let b = body.get_or_insert_with(String::new);
        let _ = writeln!(
            b,
            "      <{again} message=\"{}\" type=\"{}\">",
            esc(a.message.as_deref().unwrap_or("")),
            a.reason.map_or("", |x| x.as_str())
        );
        let _ = writeln!(b, "        <stackTrace>{}</stackTrace>", esc(&details(a)));
        let (out, err) = outputs(a);
        if !out.is_empty() {
            let _ = writeln!(b, "        <system-out>{}</system-out>", esc(&out));
        }
        if !err.is_empty() {
            let _ = writeln!(b, "        <system-err>{}</system-err>", esc(&err));
        }
        let _ = writeln!(b, "      </{again}>");
    }
    if let Some(l) = last {
        body.get_or_insert_with(String::new).push_str(&l);
    }
    if body.is_none() && output.is_empty() && r.tags.is_empty() {
        xml.push_str("/>\n");
        return;
    }
    xml.push_str(">\n");
    // Tags as properties of the case, as pytest writes its markers.
    if !r.tags.is_empty() {
        xml.push_str("      <properties>\n");
        for t in &r.tags {
            let _ = writeln!(xml, "        <property name=\"tag\" value=\"{}\"/>", esc(t));
        }
        xml.push_str("      </properties>\n");
    }
    if let Some(b) = body {
        xml.push_str(&b);
    }
    if !output.is_empty() {
        let _ = writeln!(xml, "      <system-out>{}</system-out>", esc(&output));
    }
    if !errors.is_empty() {
        let _ = writeln!(xml, "      <system-err>{}</system-err>", esc(&errors));
    }
    xml.push_str("    </testcase>\n");
}

/// The steps' commands with their standard output, and their standard error.
fn outputs(r: &ScenarioResult) -> (String, String) {
    let output: String = r
        .steps
        .iter()
        .map(|s| {
            let mut runs = match s.attempts {
                0 | 1 => String::new(),
                n => format!("  # {n} runs (retry)"),
            };
            if let Some(status) = s.http_status {
                runs = format!("  # status {status}{runs}");
            }
            format!(
                "$ {}{runs}\n{}",
                s.command,
                ended(tail(&s.stdout, TAIL_BYTES))
            )
        })
        .collect();
    let errors: String = r
        .steps
        .iter()
        .map(|s| ended(tail(&s.stderr, TAIL_BYTES)))
        .collect();
    (output, errors)
}

fn details(r: &ScenarioResult) -> String {
    let mut text = r.message.clone().unwrap_or_default();
    for u in r.unmet.iter().skip(usize::from(r.unmet.len() == 1)) {
        let _ = write!(text, "\n- {u}");
    }
    if let Some(d) = &r.diff {
        let _ = write!(text, "\n{}", d.render());
    }
    if let Some(step) = r
        .steps
        .iter()
        .find(|s| matches!(s.status, Status::Failed | Status::Error))
    {
        if let Some(at) = &step.at {
            let _ = write!(text, "\nat: {at}");
        }
        let _ = write!(text, "\ncommand: {}", step.command);
        if let Some(code) = step.exit_code {
            let _ = write!(text, "\nexit code: {code}");
        }
        if let Some(status) = step.http_status {
            let _ = write!(text, "\nstatus: {status}");
        }
        if let Some(crate::snapshots::Outcome::Changed { diff, .. }) = &step.snapshot {
            let _ = write!(text, "\n{diff}");
        }
    }
    text
}

/// `text` ending in a line break (unless empty), so the next step's output starts on
/// a line of its own.
fn ended(text: impl Into<String>) -> String {
    let mut text = text.into();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn junit_parses_and_counts_right() {
        let xml = to_junit(&sample());
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("failures"), Some("1"));
        assert_eq!(root.attribute("skipped"), Some("2"));
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0].attribute("name"), Some("tests/a.clnrm.toml"));
        let bad = suites[0]
            .children()
            .find(|n| n.attribute("name") == Some("bad <&>"))
            .expect("escaped name round-trips");
        let failure = bad
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failure");
        assert_eq!(failure.attribute("type"), Some("exit_code"));
        assert!(failure.text().unwrap_or("").contains("exit code: 3"));
        let cached = suites[1]
            .children()
            .find(|n| n.attribute("name") == Some("same"))
            .expect("cached");
        let skipped = cached
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .expect("skipped");
        assert_eq!(skipped.attribute("message"), Some("cached"));
    }

    #[test]
    fn earlier_attempts_are_flaky_or_rerun_failures() {
        let mut report = sample();
        let failed = report.results[1].clone();
        report.results[0].status = Status::Flaky;
        report.results[0].earlier = vec![failed.clone()];
        report.results[1].earlier = vec![failed.clone(), failed];
        let xml = to_junit(&report);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let case = |name| {
            doc.descendants()
                .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
                .expect("case")
        };
        let kids = |name, tag| {
            case(name)
                .children()
                .filter(|n| n.has_tag_name(tag))
                .collect::<Vec<_>>()
        };
        let flaky = kids("ok", "flakyFailure");
        assert_eq!(flaky.len(), 1);
        assert!(kids("ok", "failure").is_empty(), "a flaky case passed");
        assert_eq!(flaky[0].attribute("type"), Some("exit_code"));
        let trace = flaky[0]
            .children()
            .find(|n| n.has_tag_name("stackTrace"))
            .and_then(|n| n.text())
            .unwrap_or("");
        assert!(trace.contains("exit code: 3"), "{trace}");
        let out = flaky[0].children().find(|n| n.has_tag_name("system-out"));
        assert!(out.and_then(|n| n.text()).unwrap_or("").contains("oops"));
        assert_eq!(kids("bad <&>", "failure").len(), 1);
        assert_eq!(kids("bad <&>", "rerunFailure").len(), 2);
        // A flaky case is not a failure of the suite.
        assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    }

    #[test]
    fn reruns_come_before_a_last_error_or_skip_as_surefire_orders_them() {
        let mut report = sample();
        let failed = report.results[1].clone();
        for i in [0, 2] {
            report.results[i].earlier = vec![failed.clone()];
        }
        report.results[0].status = Status::Error;
        let xml = to_junit(&report);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        for name in ["ok", "later"] {
            let tags: Vec<&str> = doc
                .descendants()
                .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
                .expect("case")
                .children()
                .filter(|n| n.is_element())
                .map(|n| n.tag_name().name())
                .collect();
            let last = if name == "ok" { "error" } else { "skipped" };
            assert_eq!(tags[0], "rerunFailure", "{name}: {tags:?}");
            assert_eq!(tags[1], last, "{name}: {tags:?}");
        }
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(esc("a\u{1b}[31mb\n"), "a[31mb\n");
    }
}
