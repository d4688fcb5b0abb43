//! One module per command; each returns the process exit code.

mod baseline;
mod cache;
mod diff;
mod init;
mod list;
mod render;
mod run;
mod validate;
mod watch;

use crate::cli::{Cli, Command, VarArgs};
use crate::exit;
use clnrm_core::diag::{Code, Diagnostic};
use clnrm_core::project::Project;
use clnrm_core::template::VarLayers;
use clnrm_core::validate::{CheckedFile, ValidateOptions, check_files};
use std::path::PathBuf;

/// Runs the chosen command.
pub fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(args),
        Command::List(args) => list::run(args),
        Command::Init(args) => init::run(args),
        Command::Run(args) => run::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Cache(args) => cache::run(args),
        Command::Watch(args) => watch::run(args),
    }
}

/// The validated files and any diagnostic that is
/// not about one file (config, paths, `--var`).
pub struct Prepared {
    pub files: Vec<CheckedFile>,
    pub general: Vec<Diagnostic>,
    pub project: Project,
    /// The outside template variables, canonical (for cache keys).
    pub context: String,
}

impl Prepared {
    /// Every diagnostic: the general ones, then each file's.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.general
            .iter()
            .chain(self.files.iter().flat_map(|f| &f.diagnostics))
            .cloned()
            .collect()
    }

    /// How many files have an error.
    pub fn invalid_files(&self) -> usize {
        self.files.iter().filter(|f| f.is_invalid(false)).count()
    }
}

/// Finds the project, reads its config and validates every test file under `paths`.
pub fn prepare(paths: &[PathBuf], vars: &VarArgs) -> Prepared {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (project, mut general) = Project::discover(&cwd);
    let layers = match var_layers(&vars.vars, &project) {
        Ok(l) => l,
        Err(d) => {
            general.push(*d);
            return Prepared {
                files: Vec::new(),
                general,
                project,
                context: String::new(),
            };
        }
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from("tests")]
    } else {
        paths.to_vec()
    };
    let (found, diags) = clnrm_core::discover::discover(&paths);
    general.extend(diags);
    if found.is_empty() && general.iter().all(|d| !d.is_error()) {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        general.push(
            Diagnostic::error(Code::NotATestFile, format!("no test definitions found in {}", shown.join(", ")))
                .help("test definitions are named *.clnrm.toml or *.clnrm.toml.tera; `clnrm init` creates an example"),
        );
    }
    let context = format!("{layers:?}");
    let opts = ValidateOptions {
        vars: layers,
        threads: 0,
    };
    let files = check_files(&found, &project.root, &opts);
    Prepared {
        files,
        general,
        project,
        context,
    }
}

/// Builds the variable layers from `--var`, the environment and the config.
pub fn var_layers(assignments: &[String], project: &Project) -> Result<VarLayers, Box<Diagnostic>> {
    let cli = VarLayers::parse_cli(assignments).map_err(|bad| {
        Box::new(
            Diagnostic::error(Code::BadVar, format!("invalid --var \"{bad}\""))
                .help("write --var NAME=VALUE, where NAME is letters, digits and `_`"),
        )
    })?;
    Ok(VarLayers {
        cli,
        env: VarLayers::from_env(),
        config: project.config.vars.clone(),
    })
}

/// Exit code for a set of diagnostics.
pub fn exit_code_for(diags: &[&Diagnostic], deny_warnings: bool) -> i32 {
    if diags.iter().any(|d| d.is_error() || deny_warnings) {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    }
}
