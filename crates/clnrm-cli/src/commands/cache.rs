//! `clnrm cache stats` and `clnrm cache clear`: the scenario hashes in `.clnrm/cache`
//! and the fixture snapshots the engine keeps (SPEC §7.3).

use crate::cli::{CacheAction, CacheArgs};
use crate::exit;
use clnrm_core::backend::{Deadlines, Docker, EngineError};
use clnrm_core::cache::{clear, summary};
use clnrm_core::exec::pool::{SNAPSHOT_REPO, remove_snapshots, snapshots};
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
    let root = project.root.display().to_string();
    let executor = &project.config.executor;
    let engine = || async {
        Docker::connect()
            .await
            .map(|d| Deadlines::new(d, executor.engine_timeout(), executor.pull_timeout()))
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
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
            let listed = rt.block_on(async { snapshots(&engine().await?, &root).await });
            match listed {
                Ok(list) => {
                    println!("snapshots:  {}", list.len());
                    for snap in list {
                        let added = snap
                            .added
                            .map_or_else(String::new, |a| format!(", {} added", size(a)));
                        println!(
                            "  {SNAPSHOT_REPO}:{}  service \"{}\" from {}  {}{added}",
                            snap.key,
                            snap.service,
                            snap.image,
                            size(snap.size)
                        );
                    }
                }
                Err(e) => println!("snapshots:  unknown ({})", why(&e)),
            }
            exit::SUCCESS
        }
        CacheAction::Clear => {
            let mut code = exit::SUCCESS;
            match clear(&dir) {
                Ok(()) => println!("cleared {}", dir.join("hashes.json").display()),
                Err(e) => {
                    eprintln!("error: cannot clear {}: {e}", dir.display());
                    code = exit::ENVIRONMENT;
                }
            }
            match rt.block_on(async { remove_snapshots(&engine().await?, &root).await }) {
                Ok((removed, kept)) => {
                    println!(
                        "removed {removed} snapshot{}",
                        if removed == 1 { "" } else { "s" }
                    );
                    for why in &kept {
                        eprintln!("error: snapshot not removed: {why}");
                    }
                    if !kept.is_empty() {
                        code = exit::ENVIRONMENT;
                    }
                }
                Err(e) => {
                    eprintln!("error: snapshots not removed: {}", why(&e));
                    code = exit::ENVIRONMENT;
                }
            }
            code
        }
    }
}

fn why(e: &EngineError) -> String {
    e.to_string()
}

/// Bytes as people read them: `512 B`, `3.4 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
