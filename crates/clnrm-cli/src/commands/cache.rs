//! `clnrm cache stats` and `clnrm cache clear`: the scenario hashes in `.clnrm/cache`,
//! the fixture snapshots the engine keeps (SPEC §7.3) and the images built from source
//! (SPEC §14; `clear` keeps the newest of each service); `cache stats --explain ID`
//! says what a scenario's key is made of and which part changed since its last run.

use crate::cli::{CacheAction, CacheArgs, CacheStatsArgs};
use crate::exit;
use clnrm_core::backend::{Deadlines, Docker, EngineError};
use clnrm_core::build::{built_images, prune_built};
use clnrm_core::cache::explain::{Explanation, Verdict};
use clnrm_core::cache::{clear, summary};
use clnrm_core::config::RunFlags;
use clnrm_core::exec::pool::{SNAPSHOT_REPO, remove_snapshots, snapshots};
use clnrm_core::pipeline::explain_keys;
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
        CacheAction::Stats(stats) if stats.explain.is_some() => explain(&stats),
        CacheAction::Stats(_) => {
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
            let built = rt.block_on(async { built_images(&engine().await?, &root).await });
            match built {
                Ok(list) => {
                    println!("built:      {}", list.len());
                    for b in list {
                        println!("  {}  service \"{}\"  {}", b.tag, b.service, size(b.size));
                    }
                }
                Err(e) => println!("built:      unknown ({})", why(&e)),
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
            // After the snapshots, which may have been made from them.
            match rt.block_on(async { prune_built(&engine().await?, &root).await }) {
                Ok(pruned) => {
                    println!(
                        "removed {} built image{} (kept the newest of each service: {})",
                        pruned.removed,
                        if pruned.removed == 1 { "" } else { "s" },
                        pruned.kept
                    );
                    for why in &pruned.failed {
                        eprintln!("error: built image not removed: {why}");
                    }
                    if !pruned.failed.is_empty() {
                        code = exit::ENVIRONMENT;
                    }
                }
                Err(e) => {
                    eprintln!("error: built images not removed: {}", why(&e));
                    code = exit::ENVIRONMENT;
                }
            }
            code
        }
    }
}

/// `cache stats --explain ID`: each matching scenario's key, part by part, beside its
/// last run's.
fn explain(args: &CacheStatsArgs) -> i32 {
    let pattern = args.explain.clone().unwrap_or_default();
    let paths = if args.paths.is_empty() {
        // The file an id names, when it names one plainly.
        match pattern.split_once("::") {
            Some((file, _)) if !file.contains(['*', '?', '[', '{']) => vec![file.into()],
            _ => Vec::new(),
        }
    } else {
        args.paths.clone()
    };
    let prepared = super::prepare(&paths, &args.vars);
    if let Err(code) = super::print_prepared(&prepared, "nothing to explain") {
        return code;
    }
    let flags = RunFlags {
        filter: vec![pattern.clone()],
        ..RunFlags::default()
    };
    let config = match super::run::resolve(&flags, &prepared) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Without an engine the image parts are unknown; the rest is still explained.
    let explained = runtime.block_on(async {
        // With the project's deadlines: a stalled engine is no hang.
        let engine = Docker::new().ok().map(|d| {
            let executor = &prepared.project.config.executor;
            Deadlines::new(d, executor.engine_timeout(), executor.pull_timeout())
        });
        explain_keys(&prepared, &config, engine.as_ref()).await
    });
    let (explained, warnings) = match explained {
        Ok(x) => x,
        Err(e) => return super::run::pipeline_error(&e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if explained.is_empty() {
        eprintln!("error: no scenario id matches \"{pattern}\"");
        return exit::INVALID_INPUT;
    }
    for (i, e) in explained.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", explanation_text(e));
    }
    exit::SUCCESS
}

/// One scenario's explanation as text.
fn explanation_text(e: &Explanation) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verdict = match &e.verdict {
        Verdict::Cached => "cached: unchanged since its last passing run".to_owned(),
        Verdict::NeverRun => "runs: it has not run before".to_owned(),
        Verdict::LastFailed => "runs: its last run did not pass".to_owned(),
        Verdict::Changed(parts) => {
            format!("runs: changed since its last run: {}", parts.join(", "))
        }
        Verdict::Uncacheable(why) => format!("runs every time: {why}"),
    };
    let _ = writeln!(out, "{}\n  {verdict}", e.id);
    let width = e.parts.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &e.parts {
        let state = match &p.then {
            _ if e.last.is_none() => String::new(),
            Some(then) if *then == p.now => "same".to_owned(),
            Some(then) => format!("changed (was {then})"),
            None => "new".to_owned(),
        };
        let _ = writeln!(out, "  {:<width$}  {:<16}  {state}", p.name, p.now);
        if let Some(f) = &p.files {
            for (what, list) in [
                ("changed", &f.changed),
                ("added", &f.added),
                ("removed", &f.removed),
            ] {
                for file in list {
                    let _ = writeln!(out, "    {what}: {file}");
                }
            }
        }
    }
    for (name, was) in &e.gone {
        let _ = writeln!(out, "  {:<width$}  {:<16}  gone", name, was);
    }
    out
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
