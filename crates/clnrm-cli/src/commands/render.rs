//! `clnrm render FILE`: print the TOML a test definition renders to.

use crate::cli::{DiagFormat, RenderArgs};
use crate::exit;
use crate::output::print_diagnostics;
use clnrm_core::diag::{Code, Diagnostic};
use clnrm_core::pipeline::var_layers;
use clnrm_core::project::Project;
use clnrm_core::template::{TemplateEngine, is_template};
use clnrm_core::validate::load;
use std::path::PathBuf;

/// Runs the command.
pub fn run(args: RenderArgs) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (project, config_diags) = Project::discover(&cwd);
    let fail = |diags: Vec<Diagnostic>| {
        print_diagnostics(&diags, DiagFormat::Human, 1, "error: cannot render");
        exit::INVALID_INPUT
    };
    if config_diags.iter().any(Diagnostic::is_error) {
        return fail(config_diags);
    }
    let layers = match var_layers(&args.vars.vars, &project) {
        Ok(l) => l,
        Err(d) => return fail(vec![*d]),
    };
    let display = project.display(&args.file);
    let source = match load(&args.file, &display) {
        Ok(s) => s,
        Err(d) => return fail(vec![*d]),
    };
    let text = if is_template(&args.file) {
        let mut engine = TemplateEngine::new(&project.root);
        match engine.render(&source, &args.file, &layers) {
            Ok(r) => r.source.text().to_owned(),
            Err(diags) => return fail(diags),
        }
    } else {
        source.text().to_owned()
    };
    match &args.output {
        Some(out) => match std::fs::write(out, text) {
            Ok(()) => exit::SUCCESS,
            Err(e) => fail(vec![Diagnostic::error(
                Code::Io,
                format!("cannot write {}: {e}", out.display()),
            )]),
        },
        None => {
            print!("{text}");
            exit::SUCCESS
        }
    }
}
