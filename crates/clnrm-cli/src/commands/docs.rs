//! `clnrm completions SHELL` and `clnrm man DIR`: generated from the same argument
//! definitions the binary parses (`cli.rs`), so they never disagree with it.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit;
use clap::CommandFactory;

/// Prints the completion script of `args.shell`.
pub fn completions(args: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "clnrm", &mut std::io::stdout());
    exit::SUCCESS
}

/// Writes `clnrm.1` and a page per command (`clnrm-run.1`, `clnrm-serve-token.1`, …).
pub fn man(args: &ManArgs) -> i32 {
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("error: cannot make {}: {e}", args.dir.display());
        return exit::ENVIRONMENT;
    }
    let mut cmd = Cli::command();
    cmd.build();
    match write_pages(&cmd, "clnrm", &args.dir) {
        Ok(n) => {
            eprintln!("wrote {n} man pages into {}", args.dir.display());
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::ENVIRONMENT
        }
    }
}

/// Why a man page was not written.
#[derive(Debug, thiserror::Error)]
enum ManError {
    /// The page could not be rendered.
    #[error("{name}: {source}")]
    Render {
        /// The page's name (`clnrm-run`).
        name: String,
        /// What rendering said.
        #[source]
        source: std::io::Error,
    },
    /// The page's file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What writing said.
        #[source]
        source: std::io::Error,
    },
}

/// The page of `cmd` (named `name`) and of each of its commands, recursively; how
/// many.
fn write_pages(cmd: &clap::Command, name: &str, dir: &std::path::Path) -> Result<usize, ManError> {
    let page = cmd.clone().name(name.to_owned());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut bytes)
        .map_err(|source| ManError::Render {
            name: name.to_owned(),
            source,
        })?;
    let path = dir.join(format!("{name}.1"));
    if let Err(source) = std::fs::write(&path, bytes) {
        return Err(ManError::Write { path, source });
    }
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        n += write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(n)
}
