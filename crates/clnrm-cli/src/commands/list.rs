//! `clnrm list`: the scenario ids a run would execute.

use super::{exit_code_for, prepare};
use crate::cli::{DiagFormat, ListArgs};
use crate::exit;
use crate::output::print_diagnostics;
use clnrm_core::plan::tags_select;

/// Runs the command.
pub fn run(args: ListArgs) -> i32 {
    let prepared = prepare(&args.paths, &args.vars);
    let diags: Vec<_> = prepared
        .general
        .iter()
        .chain(prepared.files.iter().flat_map(|f| &f.diagnostics))
        .collect();
    let code = exit_code_for(
        &diags
            .iter()
            .copied()
            .filter(|d| d.is_error())
            .collect::<Vec<_>>(),
        false,
    );
    if code != exit::SUCCESS {
        let owned: Vec<_> = diags.into_iter().cloned().collect();
        print_diagnostics(
            &owned,
            DiagFormat::Human,
            prepared.files.len(),
            "error: cannot list scenarios of invalid files",
        );
        return code;
    }
    for f in &prepared.files {
        for sc in f.file.iter().flat_map(|t| &t.scenarios) {
            let tags: Vec<String> = sc.tags.iter().map(|t| t.value.clone()).collect();
            if tags_select(&tags, &args.tags.tags, &args.tags.skip_tags) {
                println!("{}::{}", f.display, sc.name.value);
            }
        }
    }
    exit::SUCCESS
}
