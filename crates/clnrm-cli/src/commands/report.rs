//! `clnrm report merge`: the JSON reports of a run's shards as one run's reports,
//! and their durations recorded for the next `--partition duration:K/N`.

use crate::cli::{MergeArgs, ReportAction, ReportArgs};
use crate::exit;
use clnrm_core::project::Project;
use clnrm_core::report::{self, RunReport, Summary};

/// The most a report file may hold, in bytes (it is read whole).
const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Runs the command.
pub fn run(args: ReportArgs) -> i32 {
    match args.action {
        ReportAction::Merge(m) => merge(&m),
    }
}

fn merge(args: &MergeArgs) -> i32 {
    let mut reports = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        match read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return exit::INVALID_INPUT;
            }
        }
    }
    let (merged, warnings) = report::merge(&reports);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    // report.html shows the spans the shards' runs left in this project's artifacts
    // (a CI job that gathers the shards' `.clnrm/artifacts/` has them all).
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let (project, _) = Project::discover(&cwd);
    let artifacts = project.layout().artifacts();
    let runs: Vec<String> = reports.iter().map(|r| r.run_id.clone()).collect();
    let spans = report::html::artifact_spans(&artifacts, &runs);
    if let Err(e) = report::write_reports(&merged, Some(&args.out), &[], &spans) {
        eprintln!("error: {e}");
        return exit::ENVIRONMENT;
    }
    if !args.no_timings
        && !merged.interrupted
        && let Err(e) = clnrm_core::timings::record(&project.layout().timings(), merged.durations())
    {
        eprintln!("warning: could not save the timings: {e}");
    }
    let s = Summary::of(merged.results.iter().filter(|r| !r.is_unselected()));
    eprintln!(
        "merged {} report{} into {}: {} scenarios, {} passed, {} flaky, {} failed, {} errors, {} cached, {} skipped",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        args.out.display(),
        s.total(),
        s.passed,
        s.flaky,
        s.failed,
        s.errors,
        s.cached,
        s.skipped
    );
    exit::of_report(&merged, args.flaky_fails)
}

/// Why a shard's report cannot be merged.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// It cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is bigger than a report may be.
    #[error("{0} bytes, more than the {max} MiB a report may hold", max = MAX_REPORT_BYTES >> 20)]
    TooBig(u64),
    /// It is not a JSON report.
    #[error(transparent)]
    Report(#[from] report::ReadError),
}

fn read(path: &std::path::Path) -> Result<RunReport, ReadError> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX_REPORT_BYTES {
        return Err(ReadError::TooBig(meta.len()));
    }
    let text = std::fs::read_to_string(path)?;
    Ok(report::from_json(&text)?)
}
