//! `clnrm snapshots review`: the pending output snapshots (`.snap.new`, written when a
//! step's output is new or differs), each with its diff; `--accept` makes them the
//! snapshots, `--reject` drops them.

use crate::cli::{ReviewArgs, SnapshotsAction, SnapshotsArgs};
use crate::exit;
use clnrm_core::project::Project;
use clnrm_core::snapshots::{Pending, pending};

/// Runs the command.
pub fn run(args: SnapshotsArgs) -> i32 {
    match args.action {
        SnapshotsAction::Review(r) => review(&r),
    }
}

fn review(args: &ReviewArgs) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let (project, _) = Project::discover(&cwd);
    let filter = match args.filter.as_deref().map(globset::Glob::new).transpose() {
        Ok(g) => g.map(|g| g.compile_matcher()),
        Err(e) => {
            eprintln!("error: invalid --filter: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let dir = project.layout().snapshots();
    let chosen: Vec<(Pending, String)> = pending(&dir)
        .into_iter()
        .map(|p| {
            // The header of the new file names its scenario and step.
            let id = scenario_of(&p).unwrap_or_default();
            (p, id)
        })
        .filter(|(_, id)| filter.as_ref().is_none_or(|f| f.is_match(id)))
        .collect();
    if chosen.is_empty() {
        eprintln!("no pending snapshots in {}", project.display(&dir));
        return exit::SUCCESS;
    }
    let mut failed = false;
    for (p, id) in &chosen {
        let shown = project.display(&p.snap);
        let (verb, result) = if args.accept {
            ("accepted", p.accept())
        } else if args.reject {
            ("rejected", p.reject())
        } else {
            let what = if p.snap.exists() { "changed" } else { "new" };
            println!("{what}: {shown} ({id})");
            match p.diff(&shown) {
                Ok(d) => print!("{d}"),
                Err(e) => println!("  cannot read it: {e}"),
            }
            println!();
            continue;
        };
        match result {
            Ok(()) => println!("{verb}: {shown}"),
            Err(e) => {
                eprintln!("error: {}: {e}", project.display(&p.new));
                failed = true;
            }
        }
    }
    if !args.accept && !args.reject {
        eprintln!(
            "{} pending; `clnrm snapshots review --accept` or `--reject` (with --filter GLOB for some)",
            chosen.len()
        );
    }
    if failed {
        exit::ENVIRONMENT
    } else {
        exit::SUCCESS
    }
}

/// The scenario id a pending file's header names.
fn scenario_of(p: &Pending) -> Option<String> {
    let text = std::fs::read_to_string(&p.new).ok()?;
    text.lines()
        .take(4)
        .find_map(|l| l.strip_prefix("# scenario: "))
        .map(str::to_owned)
}
