//! The human reporter: a sink of run events. On a terminal it keeps a live progress
//! line; it prints one line per finished scenario, then the detail of each failure
//! (step, command, exit code, the tail of its output) and a summary.

use super::{RunReport, Summary};
use crate::exec::{Event, ScenarioResult, Status};
use std::io::Write;

/// Lines of each stream shown for a failed step.
const TAIL_LINES: usize = 12;

/// Prints a run for people.
pub struct HumanReporter<W: Write> {
    out: W,
    color: bool,
    live: bool,
    total: usize,
    done: usize,
    running: std::collections::HashSet<crate::plan::ScenarioId>,
    failed: Vec<ScenarioResult>,
}

impl<W: Write> HumanReporter<W> {
    /// `color`: ANSI colours; `live`: a progress line redrawn in place (a terminal).
    pub fn new(out: W, color: bool, live: bool) -> Self {
        Self {
            out,
            color,
            live,
            total: 0,
            done: 0,
            running: Default::default(),
            failed: Vec::new(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn clear_line(&mut self) {
        if self.live {
            let _ = write!(self.out, "\r\x1b[2K");
        }
    }

    fn progress(&mut self) {
        if self.live {
            let _ = write!(
                self.out,
                "\r\x1b[2K[{:>3}/{}] {} running",
                self.done,
                self.total,
                self.running.len()
            );
            let _ = self.out.flush();
        }
    }

    /// Takes one event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                total,
                workers,
            } => {
                self.total = *total;
                let _ = writeln!(
                    self.out,
                    "{} {total} scenario{} on {workers} worker{} (run {run_id})",
                    self.paint("1;32", "Running"),
                    if *total == 1 { "" } else { "s" },
                    if *workers == 1 { "" } else { "s" },
                );
            }
            Event::Reaped {
                containers,
                networks,
            } => {
                self.clear_line();
                let _ = writeln!(
                    self.out,
                    "{} {containers} container(s) and {networks} network(s) left by dead runs",
                    self.paint("1;33", "Removed")
                );
            }
            Event::ImageBuilt {
                service,
                tag,
                duration,
                synced,
                ahead,
            } => {
                self.clear_line();
                let what = match synced {
                    Some(n) => format!(
                        "{} {n} file{} into {tag} for service {service} in {:.1}s{}",
                        self.paint("1;32", "Synced"),
                        if *n == 1 { "" } else { "s" },
                        duration.as_secs_f64(),
                        match ahead {
                            Some(building) => format!(
                                ", its scenarios started on it while {building} is built (the Dockerfile copies them last)"
                            ),
                            None => String::new(),
                        }
                    ),
                    None => format!(
                        "{} {tag} for service {service} in {:.1}s",
                        self.paint("1;32", "Built"),
                        duration.as_secs_f64()
                    ),
                };
                let _ = writeln!(self.out, "{what}");
            }
            Event::ScenarioStarted { id } => {
                self.running.insert(id.clone());
            }
            Event::Retrying(r) => {
                self.running.remove(&r.id);
                self.clear_line();
                let line = format!(
                    "{:>7} [{:>7.3}s] {} (attempt {} failed: {})",
                    self.paint("33", "RETRY"),
                    r.duration.as_secs_f64(),
                    r.id,
                    r.earlier.len() + 1,
                    r.message.as_deref().unwrap_or("")
                );
                let _ = writeln!(self.out, "{line}");
            }
            Event::StepFinished { .. } => {}
            Event::ScenarioFinished(r) => self.finished(r),
            Event::RunFinished { .. } => self.clear_line(),
        }
        self.progress();
    }

    fn finished(&mut self, r: &ScenarioResult) {
        if r.is_unselected() {
            return;
        }
        self.running.remove(&r.id);
        self.done += 1;
        let (word, code) = match r.status {
            Status::Passed => ("PASS", "32"),
            Status::Flaky => ("FLAKY", "1;33"),
            Status::Failed => ("FAIL", "1;31"),
            Status::Error => ("ERROR", "1;31"),
            Status::Cached => ("CACHED", "36"),
            Status::Skipped => ("SKIP", "33"),
        };
        self.clear_line();
        let mut line = format!(
            "{:>7} [{:>7.3}s] {}",
            self.paint(code, word),
            r.duration.as_secs_f64(),
            r.id
        );
        if !r.tags.is_empty() {
            line.push_str(&format!(" [{}]", r.tags.join(", ")));
        }
        if r.status == Status::Flaky {
            line.push_str(&format!(" (passed on attempt {})", r.attempts()));
        } else if let (Status::Skipped | Status::Error | Status::Failed, Some(m)) =
            (r.status, &r.message)
        {
            line.push_str(&format!(" ({m})"));
            if r.attempts() > 1 {
                line.push_str(&format!(" — all {} attempts failed", r.attempts()));
            }
        }
        let _ = writeln!(self.out, "{line}");
        if matches!(r.status, Status::Failed | Status::Error | Status::Flaky) {
            self.failed.push(r.clone());
        }
    }

    /// Prints failure details and the summary.
    pub fn finish(&mut self, report: &RunReport) {
        self.clear_line();
        let failed = std::mem::take(&mut self.failed);
        for r in &failed {
            if r.status == Status::Flaky {
                // What the failed attempts did: the reason it is flaky.
                for (n, attempt) in r.earlier.iter().enumerate() {
                    let title = format!("{} (flaky: attempt {} of {})", r.id, n + 1, r.attempts());
                    self.detail(attempt, &title);
                }
            } else {
                self.detail(r, &r.id.0);
            }
        }
        let s = Summary::of(report.results.iter().filter(|r| !r.is_unselected()));
        let filtered = report.results.iter().filter(|r| r.is_unselected()).count();
        let head = if s.failed + s.errors > 0 || report.interrupted {
            self.paint("1;31", "Summary")
        } else {
            self.paint("1;32", "Summary")
        };
        let flaky = if s.flaky > 0 {
            format!("{} flaky, ", s.flaky)
        } else {
            String::new()
        };
        let mut line = format!(
            "{head} [{:.3}s] {} scenario{}: {} passed, {flaky}{} failed, {} errors, {} cached, {} skipped",
            report.duration.as_secs_f64(),
            s.total(),
            if s.total() == 1 { "" } else { "s" },
            s.passed,
            s.failed,
            s.errors,
            s.cached,
            s.skipped
        );
        if filtered > 0 {
            line.push_str(&format!(" ({filtered} filtered out)"));
        }
        if report.interrupted {
            line.push_str(" — interrupted");
        }
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn detail(&mut self, r: &ScenarioResult, title: &str) {
        let title = self.paint("1", &format!("--- {title} ---"));
        let _ = writeln!(self.out, "\n{title}");
        // Unmet expectations and a baseline difference are listed each once, both
        // when both failed; any other failure is said by its message.
        let spans_failed = !r.unmet.is_empty() || r.diff.is_some();
        if let Some(m) = r.message.as_ref().filter(|_| !spans_failed) {
            let _ = writeln!(self.out, "  {m}");
        }
        match r.unmet.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(self.out, "  expectation unmet: {one}");
            }
            all => {
                let _ = writeln!(self.out, "  {} expectations unmet:", all.len());
                for u in all {
                    let _ = writeln!(self.out, "  - {u}");
                }
            }
        }
        if let Some(d) = &r.diff {
            let c = &d.counts;
            let _ = writeln!(
                self.out,
                "  span tree differs from the baseline: {} changed, {} missing, {} extra",
                c.changed, c.missing, c.extra
            );
            let _ = write!(self.out, "{}", d.render());
        }
        for step in r
            .steps
            .iter()
            .filter(|s| matches!(s.status, Status::Failed | Status::Error))
        {
            let _ = writeln!(
                self.out,
                "  step:    {} (service {})",
                step.name, step.service
            );
            if let Some(at) = &step.at {
                let _ = writeln!(self.out, "  at:      {at}");
            }
            let _ = writeln!(self.out, "  command: {}", step.command);
            if let Some(code) = step.exit_code {
                let _ = writeln!(self.out, "  exit:    {code}");
            }
            if let Some(status) = step.http_status {
                let _ = writeln!(self.out, "  status:  {status}");
            }
            if step.attempts > 1 {
                let _ = writeln!(self.out, "  runs:    {} (retry)", step.attempts);
            }
            if let Some(crate::snapshots::Outcome::Changed { diff, .. }) = &step.snapshot {
                let _ = writeln!(self.out, "  snapshot diff:");
                for l in diff.lines() {
                    let _ = writeln!(self.out, "    {l}");
                }
            }
            let out_label = if step.http_status.is_some() {
                "body"
            } else {
                "stdout"
            };
            for (label, text) in [(out_label, &step.stdout), ("stderr", &step.stderr)] {
                if text.trim().is_empty() {
                    continue;
                }
                let lines: Vec<&str> = text.lines().collect();
                let skip = lines.len().saturating_sub(TAIL_LINES);
                let more = if skip > 0 {
                    format!(" (last {TAIL_LINES} lines)")
                } else {
                    String::new()
                };
                let _ = writeln!(self.out, "  {label}{more}:");
                for l in &lines[skip..] {
                    let _ = writeln!(self.out, "    | {l}");
                }
            }
        }
        for svc in &r.services {
            if svc.log_tail.trim().is_empty() {
                continue;
            }
            if svc.build {
                let _ = writeln!(
                    self.out,
                    "  service {} (image {} not built), last lines of the builder's output:",
                    svc.id, svc.image
                );
                for l in svc.log_tail.lines() {
                    let _ = writeln!(self.out, "    | {l}");
                }
                continue;
            }
            let state = match (svc.oom_killed, svc.exit_code) {
                (true, _) => ", killed for lack of memory".to_owned(),
                (false, Some(code)) => format!(", exited {code}"),
                (false, None) => String::new(),
            };
            let _ = writeln!(
                self.out,
                "  service {} ({}, container {}{state}), last lines of its log:",
                svc.id, svc.image, svc.container
            );
            for l in svc.log_tail.lines() {
                let _ = writeln!(self.out, "    | {l}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn failures_show_step_command_exit_code_and_output() {
        let report = sample();
        let mut buf = Vec::new();
        let mut h = HumanReporter::new(&mut buf, false, false);
        h.event(&Event::RunStarted {
            run_id: "abc123".into(),
            total: 4,
            workers: 2,
        });
        for r in &report.results {
            h.event(&Event::ScenarioFinished(r.clone()));
        }
        h.finish(&report);
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("Running 4 scenarios on 2 workers (run abc123)"),
            "{text}"
        );
        assert!(text.contains("   PASS ["), "{text}");
        assert!(
            text.contains("--- tests/a.clnrm.toml::bad <&> ---"),
            "{text}"
        );
        assert!(text.contains("  command: echo 'a b'"), "{text}");
        assert!(text.contains("  exit:    3"), "{text}");
        assert!(text.contains("    | oops \"x\""), "{text}");
        assert!(
            text.contains("4 scenarios: 1 passed, 1 failed, 0 errors, 1 cached, 1 skipped"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "no colour when off");
    }
}
