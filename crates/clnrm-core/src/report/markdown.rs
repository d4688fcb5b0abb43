//! Markdown: a summary line, a table of scenarios, then the details of each failure
//! (fit for a pull-request comment or `$GITHUB_STEP_SUMMARY`).

use super::{RunReport, Summary, tail};
use crate::exec::Status;
use std::fmt::Write;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report of a run.
pub fn to_markdown(report: &RunReport) -> String {
    let s = Summary::of(&report.results);
    let mut md = format!(
        "## clnrm run `{}`\n\n{} passed, {}{} failed, {} errors, {} cached, {} skipped in {:.2}s{}\n\n",
        report.run_id,
        s.passed,
        if s.flaky > 0 {
            format!("{} flaky, ", s.flaky)
        } else {
            String::new()
        },
        s.failed,
        s.errors,
        s.cached,
        s.skipped,
        report.duration.as_secs_f64(),
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    md.push_str("| scenario | tags | status | duration | message |\n|---|---|---|---:|---|\n");
    for r in &report.results {
        let icon = match r.status {
            Status::Passed => "✅",
            Status::Flaky => "🔁",
            Status::Failed => "❌",
            Status::Error => "⚠️",
            Status::Cached => "💾",
            Status::Skipped => "⏭️",
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {icon} {} | {} ms | {} |",
            cell(&r.id.0),
            cell(&r.tags.join(", ")),
            r.status.as_str(),
            r.duration.as_millis(),
            cell(r.message.as_deref().unwrap_or(""))
        );
    }
    for r in report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Error))
    {
        let _ = write!(
            md,
            "\n### `{}`\n\n{}\n",
            r.id.0,
            r.message.as_deref().unwrap_or("")
        );
        for step in r
            .steps
            .iter()
            .filter(|s| matches!(s.status, Status::Failed | Status::Error))
        {
            let runs = match step.attempts {
                0 | 1 => String::new(),
                n => format!(" after {n} runs"),
            };
            let ended = match (step.http_status, step.exit_code) {
                (Some(status), _) => format!("status {status}"),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => "no exit code".to_owned(),
            };
            let _ = write!(md, "\n`$ {}` → {ended}{runs}\n", step.command);
            if let Some(crate::snapshots::Outcome::Changed { diff, .. }) = &step.snapshot {
                let _ = write!(md, "\n```diff\n{}\n```\n", diff.trim_end());
            }
            for (label, text) in [("stdout", &step.stdout), ("stderr", &step.stderr)] {
                if !text.is_empty() {
                    let _ = write!(
                        md,
                        "\n<details><summary>{label}</summary>\n\n```\n{}\n```\n</details>\n",
                        tail(text, 4096).trim_end()
                    );
                }
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn markdown_lists_every_scenario_and_details_failures() {
        let md = to_markdown(&sample());
        assert!(md.contains("1 passed, 1 failed, 0 errors, 1 cached, 1 skipped"));
        assert_eq!(md.matches("| `tests/").count(), 4);
        assert!(md.contains("### `tests/a.clnrm.toml::bad <&>`"));
        assert!(md.contains("oops \"x\""));
    }
}
