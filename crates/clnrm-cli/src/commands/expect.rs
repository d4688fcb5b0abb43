//! `clnrm expect ID`: a starter block of span expectations from the saved spans of
//! each scenario the id matches (SPEC §15), printed as TOML to paste under it.

use crate::cli::ExpectArgs;
use crate::exit;
use clnrm_core::config::RunFlags;
use clnrm_core::diff::store;
use clnrm_core::expect::starter::{SavedRun, starter};
use clnrm_core::otel::artifacts;
use clnrm_core::pipeline;

/// Runs the command.
pub fn run(args: &ExpectArgs) -> i32 {
    let paths = if args.paths.is_empty() {
        // The file an id names, when it names one plainly.
        match args.id.split_once("::") {
            Some((file, _)) if !file.contains(['*', '?', '[', '{']) => vec![file.into()],
            _ => Vec::new(),
        }
    } else {
        args.paths.clone()
    };
    let prepared = super::prepare(&paths, &args.vars);
    if let Err(code) = super::print_prepared(&prepared, "nothing to make expectations of") {
        return code;
    }
    let flags = RunFlags {
        filter: vec![args.id.clone()],
        ..RunFlags::default()
    };
    let config = match super::run::resolve(&flags, &prepared) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ids = pipeline::selected_ids(&prepared, &config);
    if ids.is_empty() {
        eprintln!("error: no scenario matches {:?}", args.id);
        return exit::INVALID_INPUT;
    }
    let project = &prepared.project;
    let dir = project.layout().artifacts();
    let normalize = store::normalize(&project.config.diff);
    let mut code = exit::SUCCESS;
    for id in &ids {
        let latest = match artifacts::load(&dir, id) {
            Ok(Some(a)) if !a.spans.is_empty() => a,
            Ok(_) => {
                eprintln!(
                    "error: {id} has no saved spans: run it first (clnrm run --filter '{id}'), with spans collected ([otel] exporter)"
                );
                code = exit::INVALID_INPUT;
                continue;
            }
            Err(e) => {
                eprintln!("error: the saved spans of {id} cannot be read: {e}");
                return exit::ENVIRONMENT;
            }
        };
        // The run before, when it was kept: only what both agree on is written. One
        // that cannot be read is left out, and said.
        let previous = match artifacts::load_previous(&dir, id) {
            Ok(p) => p.filter(|p| !p.spans.is_empty()),
            Err(e) => {
                eprintln!(
                    "warning: the spans of the run before the last of {id} cannot be read ({e}); using the last run only"
                );
                None
            }
        };
        let mut runs = vec![SavedRun {
            spans: &latest.spans,
            identities: &latest.identities,
        }];
        if let Some(p) = &previous {
            runs.push(SavedRun {
                spans: &p.spans,
                identities: &p.identities,
            });
        }
        println!(
            "# {id}: starter expectations from its last {} (run {}, {} spans); keep what the test is about.",
            if previous.is_some() {
                "two runs"
            } else {
                "run"
            },
            latest.run_id,
            latest.spans.len()
        );
        print!("{}", starter(&runs, &normalize));
        println!();
    }
    code
}
