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
