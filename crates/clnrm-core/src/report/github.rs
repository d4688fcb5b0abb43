//! `--format github` (SPEC §11): GitHub Actions workflow commands, an `::error` at
//! each failed step's and each unmet expectation's position (a `::warning` for a
//! flaky scenario), so that a pull request shows them on the lines of the test
//! files; and the Markdown report as the job summary.
//!
//! The syntax (GitHub's "workflow commands"): `::error file=F,line=L,col=C,title=T::M`,
//! where in property values `%`, CR, LF, `:` and `,` are written `%25`, `%0D`, `%0A`,
//! `%3A` and `%2C`, and in the message `%`, CR and LF.

use super::RunReport;
use crate::diag::{escape_data as data, escape_property as property};
use crate::exec::{ScenarioResult, Status};
use crate::expect::Position;
use std::fmt::Write as _;

/// The annotations of `report`, a line each.
pub fn to_github(report: &RunReport) -> String {
    let mut out = String::new();
    for r in &report.results {
        match r.status {
            Status::Failed | Status::Error => failed(&mut out, r),
            Status::Flaky => {
                let earlier = r
                    .earlier
                    .last()
                    .and_then(|a| a.message.clone())
                    .unwrap_or_default();
                let message = format!(
                    "flaky: passed on attempt {} after failing ({earlier})",
                    r.attempts()
                );
                annotate(&mut out, "warning", &file_level(r), &r.name, &message);
            }
            _ => {}
        }
    }
    out
}

fn file_level(r: &ScenarioResult) -> Position {
    Position {
        file: r.file.clone(),
        line: None,
        col: None,
        rendered: false,
    }
}

fn failed(out: &mut String, r: &ScenarioResult) {
    let mut said = false;
    for st in r
        .steps
        .iter()
        .filter(|s| matches!(s.status, Status::Failed | Status::Error) && !s.tolerated)
    {
        let at = st.at.clone().unwrap_or_else(|| file_level(r));
        let mut message = st
            .message
            .clone()
            .unwrap_or_else(|| format!("step {:?} {}", st.name, st.status.as_str()));
        let output = if st.stderr.trim().is_empty() {
            &st.stdout
        } else {
            &st.stderr
        };
        let last: Vec<&str> = output.trim_end().lines().rev().take(5).collect();
        if !last.is_empty() {
            message.push_str("\n\n");
            for line in last.iter().rev() {
                let _ = writeln!(message, "{line}");
            }
        }
        let title = format!("{} › step {}", r.name, st.name);
        annotate(out, "error", &at, &title, message.trim_end());
        said = true;
    }
    for u in &r.unmet {
        let message = format!("{}: expected {}, found {}", u.what, u.expected, u.found);
        let title = format!("{} › expectation", r.name);
        annotate(out, "error", &u.at, &title, &message);
        said = true;
    }
    if let Some(d) = &r.diff {
        let c = &d.counts;
        let message = format!(
            "span tree differs from the baseline: {} changed, {} missing, {} extra",
            c.changed, c.missing, c.extra
        );
        annotate(
            out,
            "error",
            &file_level(r),
            &format!("{} › baseline", r.name),
            &message,
        );
        said = true;
    }
    if !said {
        // A service that exited, an image that is missing…
        let message = r
            .message
            .clone()
            .unwrap_or_else(|| r.status.as_str().into());
        annotate(out, "error", &file_level(r), &r.name, &message);
    }
}

fn annotate(out: &mut String, level: &str, at: &Position, title: &str, message: &str) {
    let _ = write!(out, "::{level} file={}", property(&at.file));
    let mut message = message.to_owned();
    match (at.line, at.col) {
        // A line a template tag wrote is no line of the file: said in the message.
        (Some(line), _) if at.rendered => {
            message = format!("{message}\n(at line {line} of the rendered template)");
        }
        (Some(line), Some(col)) => {
            let _ = write!(out, ",line={line},col={col}");
        }
        (Some(line), None) => {
            let _ = write!(out, ",line={line}");
        }
        _ => {}
    }
    let _ = writeln!(out, ",title={}::{}", property(title), data(&message));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{ExpectKind, Unmet};

    #[test]
    fn failed_steps_and_unmet_expectations_are_errors_at_their_positions() {
        let mut report = super::super::tests::sample();
        report.results[1].steps[0].stderr = "line 1\nboom: 50%\n".into();
        report.results[1].unmet.push(Unmet {
            kind: ExpectKind::Span,
            what: "[[expect.span]] \"db.query\"".into(),
            at: Position {
                file: "tests/a.clnrm.toml".into(),
                line: Some(12),
                col: Some(1),
                rendered: false,
            },
            expected: "a span named db.query".into(),
            found: "none".into(),
            matched: None,
            near: Vec::new(),
        });
        report.results[1].steps[0].at = Some(Position {
            file: "tests/a.clnrm.toml".into(),
            line: Some(7),
            col: Some(9),
            rendered: false,
        });
        let text = to_github(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "::error file=tests/a.clnrm.toml,line=7,col=9,title=bad <&> › step b::exit code 3, expected 0%0A%0Aline 1%0Aboom: 50%25",
                "::error file=tests/a.clnrm.toml,line=12,col=1,title=bad <&> › expectation::[[expect.span]] \"db.query\": expected a span named db.query, found none",
            ]
        );
    }

    #[test]
    fn properties_escape_colons_and_commas_and_rendered_lines_are_said() {
        let at = Position {
            file: "tests/a,b:c.clnrm.toml.tera".into(),
            line: Some(40),
            col: Some(3),
            rendered: true,
        };
        let mut out = String::new();
        annotate(&mut out, "error", &at, "x, y: z", "m");
        assert_eq!(
            out,
            "::error file=tests/a%2Cb%3Ac.clnrm.toml.tera,title=x%2C y%3A z::m%0A(at line 40 of the rendered template)\n"
        );
    }
}
