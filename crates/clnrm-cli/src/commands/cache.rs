//! `clnrm cache stats` and `clnrm cache clear`.

use crate::cli::{CacheAction, CacheArgs};
use crate::exit;
use clnrm_core::cache::{clear, summary};
use clnrm_core::project::Project;

/// Runs the command.
pub fn run(args: CacheArgs) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let (project, diags) = Project::discover(&cwd);
    if diags.iter().any(|d| d.is_error()) {
        for d in &diags {
            eprintln!(
                "{}",
                clnrm_core::diag::render_human(d, crate::output::stderr_style())
            );
        }
        return exit::INVALID_INPUT;
    }
    let dir = project.layout().cache();
    match args.action {
        CacheAction::Stats => {
            let s = summary(&dir);
            println!("cache:      {}", dir.join("hashes.json").display());
            println!("entries:    {}", s.entries);
            println!("size:       {} bytes", s.bytes);
            println!(
                "last run:   {} hits, {} misses",
                s.last_run.hits, s.last_run.misses
            );
            if let Some(p) = s.problem {
                println!("problem:    {p} (the next run replaces it)");
            }
            exit::SUCCESS
        }
        CacheAction::Clear => match clear(&dir) {
            Ok(()) => {
                println!("cleared {}", dir.join("hashes.json").display());
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot clear {}: {e}", dir.display());
                exit::ENVIRONMENT
            }
        },
    }
}
