//! The first stages of every command: find the project, read its configuration and
//! the outside template variables, discover the test files and validate them (render,
//! parse, rules) in parallel.

use crate::diag::{Code, Diagnostic};
use crate::project::Project;
use crate::template::VarLayers;
use crate::validate::{CheckedFile, ValidateOptions, check_files};
use std::path::{Path, PathBuf};

/// Where test files are looked for when no path is given.
pub const DEFAULT_PATH: &str = "tests";

/// The validated files of a command, and what is wrong beyond them.
#[derive(Debug)]
pub struct Prepared {
    /// The project they belong to.
    pub project: Project,
    /// Every test file found, validated, in the order found.
    pub files: Vec<CheckedFile>,
    /// Problems that belong to no one file: the config, the paths, `--var`.
    pub general: Vec<Diagnostic>,
    /// The variables given from outside the files, as stable text (for cache keys).
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

    /// Whether anything is an error (then nothing may run).
    pub fn has_errors(&self) -> bool {
        self.invalid_files() > 0 || self.general.iter().any(Diagnostic::is_error)
    }
}

/// The project containing `cwd`, with every test file under `paths` (default
/// `tests/`) validated, `--var` assignments applied.
pub fn prepare(cwd: &Path, paths: &[PathBuf], assignments: &[String]) -> Prepared {
    prepare_with(cwd, paths, assignments, false)
}

/// [`prepare`], validating one file at a time on the calling thread when
/// `on_caller`; the caller's stack must then be [`crate::validate::RENDER_STACK`]
/// large (templates render deep).
pub fn prepare_with(
    cwd: &Path,
    paths: &[PathBuf],
    assignments: &[String],
    on_caller: bool,
) -> Prepared {
    let (project, general) = Project::discover(cwd);
    prepare_in(project, general, paths, assignments, on_caller)
}

/// [`prepare_with`] in a project already discovered, with what its discovery found
/// wrong (`general`).
pub fn prepare_in(
    project: Project,
    mut general: Vec<Diagnostic>,
    paths: &[PathBuf],
    assignments: &[String],
    on_caller: bool,
) -> Prepared {
    let layers = match var_layers(assignments, &project) {
        Ok(l) => l,
        Err(d) => {
            general.push(*d);
            return Prepared {
                project,
                files: Vec::new(),
                general,
                context: String::new(),
            };
        }
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_PATH)]
    } else {
        paths.to_vec()
    };
    let (found, diags) = crate::discover::discover(&paths);
    general.extend(diags);
    if found.is_empty() && general.iter().all(|d| !d.is_error()) {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        general.push(
            Diagnostic::error(
                Code::NotATestFile,
                format!("no test definitions found in {}", shown.join(", ")),
            )
            .help("test definitions are named *.clnrm.toml or *.clnrm.toml.tera; `clnrm init` creates an example"),
        );
    }
    let context = layers.canonical();
    let opts = ValidateOptions {
        vars: layers,
        threads: if on_caller { 1 } else { 0 },
        on_caller,
    };
    let files = check_files(&found, &project.root, &opts);
    Prepared {
        project,
        files,
        general,
        context,
    }
}

/// The variable layers from `--var`, the environment and the project's config.
pub fn var_layers(assignments: &[String], project: &Project) -> Result<VarLayers, Box<Diagnostic>> {
    let cli = VarLayers::parse_cli(assignments).map_err(|bad| {
        Box::new(
            Diagnostic::error(Code::BadVar, bad.to_string())
                .help("write --var NAME=VALUE, where NAME is letters, digits and `_`"),
        )
    })?;
    Ok(VarLayers {
        cli,
        env: VarLayers::from_env(),
        config: project.config.vars.clone(),
    })
}
