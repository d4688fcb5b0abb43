//! Where a run's events go on the command line: the human report on stdout, or (for
//! machine formats, whose document goes to stdout at the end) progress on stderr when
//! it is a terminal; and clnrm's own telemetry when `OTEL_EXPORTER_OTLP_ENDPOINT` asks.
//! The machine formats' documents themselves ([`print_report`]), for local, remote
//! and merged runs alike.

use crate::cli::RunFormat;
use crate::telemetry::{self, Telemetry};
use clnrm_core::exec::Event;
use clnrm_core::pipeline::Sink;
use clnrm_core::report::{HumanReporter, RunReport, to_html, to_json, to_junit, to_markdown};
use std::io::IsTerminal;

/// Where a run's events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The human report on stdout.
    Human,
    /// Progress on stderr when it is a terminal (a machine format follows on stdout).
    Progress,
}

enum Shown {
    Human(HumanReporter<std::io::Stdout>),
    Progress(Option<HumanReporter<std::io::Stderr>>),
}

impl Output {
    /// Where a run printed in `format` shows its events.
    pub fn of(format: crate::cli::RunFormat) -> Self {
        if format == crate::cli::RunFormat::Human {
            Output::Human
        } else {
            Output::Progress
        }
    }
}

/// The command line's sink of events.
pub struct CliSink {
    shown: Shown,
    telemetry: Option<Telemetry>,
}

impl CliSink {
    /// Shows events as `output` says, with colour on a terminal unless `NO_COLOR`.
    pub fn new(output: Output) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let shown = match output {
            Output::Human => {
                let tty = std::io::stdout().is_terminal();
                Shown::Human(HumanReporter::new(std::io::stdout(), tty && !no_color, tty))
            }
            Output::Progress => {
                let tty = std::io::stderr().is_terminal();
                Shown::Progress(tty.then(|| HumanReporter::new(std::io::stderr(), false, true)))
            }
        };
        Self {
            shown,
            telemetry: telemetry::wanted().then(Telemetry::new),
        }
    }
}

impl CliSink {
    /// Shows nothing; exports clnrm's own spans when the environment asks for them
    /// (the runs service's runs).
    pub fn telemetry_only() -> Self {
        Self {
            shown: Shown::Progress(None),
            telemetry: telemetry::wanted().then(Telemetry::new),
        }
    }
}

impl Sink for CliSink {
    fn event(&mut self, event: &Event) {
        match &mut self.shown {
            Shown::Human(h) => h.event(event),
            Shown::Progress(Some(p)) => p.event(event),
            Shown::Progress(None) => {}
        }
        if let Some(t) = &mut self.telemetry {
            t.event(event);
        }
    }

    fn finish(&mut self, report: &RunReport) {
        if let Shown::Human(h) = &mut self.shown {
            h.finish(report);
        }
        if let Some(t) = self.telemetry.take()
            && let Err(e) = t.export_blocking()
        {
            eprintln!("warning: could not export clnrm's own spans: {e}");
        }
    }

    /// Writes to the terminal only, unless it exports clnrm's own spans.
    fn blocks(&self) -> bool {
        self.telemetry.is_some()
    }
}

/// Prints a machine format of `report` on stdout (the human one is live). The files
/// of `prepared` give HTML its spans (the project's artifacts); without them, none.
pub fn print_report(
    format: RunFormat,
    report: &RunReport,
    prepared: Option<&clnrm_core::pipeline::Prepared>,
) {
    match format {
        RunFormat::Html => {
            let artifacts = prepared.map(|p| p.project.layout().artifacts());
            let runs = [report.run_id.clone()];
            match &artifacts {
                Some(dir) => print!(
                    "{}",
                    to_html(
                        report,
                        &clnrm_core::report::html::artifact_spans(dir, &runs)
                    )
                ),
                None => print!("{}", to_html(report, &|_| None)),
            }
        }
        RunFormat::Human => {}
        RunFormat::Json => println!("{:#}", to_json(report)),
        RunFormat::Junit => print!("{}", to_junit(report)),
        RunFormat::Markdown => print!("{}", to_markdown(report)),
        RunFormat::Github => {
            print!("{}", clnrm_core::report::github::to_github(report));
            // The job summary: the Markdown report, appended (several steps may write).
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                use std::io::Write as _;
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(to_markdown(report).as_bytes()));
                if let Err(e) = written {
                    eprintln!(
                        "warning: cannot write the job summary to {}: {e}",
                        std::path::Path::new(&path).display()
                    );
                }
            }
        }
    }
}
