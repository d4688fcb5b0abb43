//! The `clnrm` binary: parse arguments, run a command, map the outcome to an exit code.

mod cli;
mod commands;
mod exit;
mod output;
mod sink;
mod telemetry;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = commands::dispatch(args);
    std::process::exit(code);
}
