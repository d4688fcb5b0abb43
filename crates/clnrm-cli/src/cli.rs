//! Command-line arguments.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Hermetic integration tests in containers, checked against the spans they emit.
#[derive(Debug, Parser)]
#[command(name = "clnrm", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render templates and validate test definitions without running anything.
    Validate(ValidateArgs),
    /// Print the TOML a test definition renders to.
    Render(RenderArgs),
    /// Print the scenario ids a run would execute.
    List(ListArgs),
    /// Scaffold tests/, an example and .clnrm/config.toml.
    Init(InitArgs),
}

/// Template variables given on the command line.
#[derive(Debug, clap::Args)]
pub struct VarArgs {
    /// Set a template variable (highest precedence); repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

/// `clnrm validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories to validate [default: tests/].
    pub paths: Vec<PathBuf>,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// Diagnostic output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    /// rustc-style text on stderr.
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions annotations on stdout.
    Github,
}

/// `clnrm render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The test definition to render.
    pub file: PathBuf,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Files or directories [default: tests/].
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

/// `clnrm init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to scaffold [default: the current directory].
    pub dir: Option<PathBuf>,
}
