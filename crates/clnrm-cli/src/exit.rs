//! Process exit codes (SPEC §4), in one place.

/// Everything passed (or was cached).
pub const SUCCESS: i32 = 0;
/// A scenario failed or a diff was found.
pub const TEST_FAILURE: i32 = 1;
/// Invalid input: usage, validation or configuration.
pub const INVALID_INPUT: i32 = 2;
/// The environment is not usable: no container engine, image missing.
pub const ENVIRONMENT: i32 = 3;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// The exit code of a run that made `report` (`flaky_fails`: a flaky scenario fails it).
pub fn of_report(report: &clnrm_core::report::RunReport, flaky_fails: bool) -> i32 {
    use clnrm_core::report::Verdict;
    match report.verdict(flaky_fails) {
        Verdict::Passed => SUCCESS,
        Verdict::Failed => TEST_FAILURE,
        Verdict::Environment => ENVIRONMENT,
        Verdict::Interrupted => INTERRUPTED,
    }
}
