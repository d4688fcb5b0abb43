//! One Tera instance per worker: functions registered once, the macro library and
//! includes parsed once, each file added, rendered and removed again.
//!
//! Compiling a template is the expensive part of rendering; creating a `Tera` and
//! registering functions per file would double it, so an engine is reused for every
//! file a worker handles. Once a second file has the same folded shape (see
//! [`super::fold`]), the engine compiles the shape and keeps it, so templates that
//! differ only in their literal text stop costing a compile each.

use super::context::{VarLayers, plain_table, tera_context};
use super::fold::{self, LITERALS};
use super::functions::{self, RenderState, SharedState};
use super::guard;
use super::origin::locate_in_tags;
use crate::diag::{Code, Diagnostic, Source, Span};
use crate::model::reader::toml_to_value;
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use tera::Tera;

/// The shipped macro library's name.
pub const MACROS_NAME: &str = "_macros.toml.tera";
/// The shipped macro library.
pub const MACROS: &str = include_str!("../../templates/_macros.toml.tera");

static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{%-?\s*(import|include|extends)\s+["']([^"']+)["']"#)
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// The result of rendering one template.
#[derive(Debug)]
pub struct Rendered {
    /// The rendered TOML, linked to its template.
    pub source: Arc<Source>,
    /// Files the template imports, includes or extends, transitively.
    pub dependencies: Vec<PathBuf>,
}

/// Where a referenced template was found.
#[derive(Clone, Debug, PartialEq)]
enum Origin {
    File(PathBuf),
    Builtin,
}

/// Compiled shapes an engine keeps before it starts over (a watch session sees many).
const MAX_SHAPES: usize = 128;

/// What an engine knows of a folded shape.
enum Shape {
    /// Seen once. A shape's lookups cost more to parse than the text they stand for,
    /// so it is compiled only when a second file has it.
    Seen,
    /// Compiled under this name.
    Compiled(String),
    /// Did not compile: files of this shape are compiled as written.
    Failed,
}

/// A reusable renderer.
pub struct TemplateEngine {
    tera: Tera,
    state: SharedState,
    root: PathBuf,
    project_templates: PathBuf,
    loaded: HashMap<String, (Origin, String)>,
    shapes: HashMap<String, Shape>,
    shapes_compiled: usize,
    folding: bool,
    /// Texts read instead of the files at these (canonical) paths.
    overlay: HashMap<PathBuf, String>,
}

impl TemplateEngine {
    /// An engine for the project at `root` (templates also resolve in `root/.clnrm/templates`).
    pub fn new(root: &Path) -> Self {
        let mut tera = Tera::default();
        let state = Arc::new(Mutex::new(RenderState::default()));
        functions::register(&mut tera, &state);
        Self {
            tera,
            state,
            root: root.to_path_buf(),
            project_templates: root.join(crate::project::Layout::TEMPLATES),
            loaded: HashMap::new(),
            shapes: HashMap::new(),
            shapes_compiled: 0,
            folding: true,
            overlay: HashMap::new(),
        }
    }

    /// Reads `text` wherever the file at `path` is included, imported or extended (an
    /// editor's unsaved buffer), until [`TemplateEngine::forget`].
    pub fn overlay(&mut self, path: &Path, text: String) {
        self.overlay.insert(canonical(path), text);
    }

    /// The text read instead of the file at `path`, if any.
    pub fn overlaid(&self, path: &Path) -> Option<&str> {
        self.overlay.get(&canonical(path)).map(String::as_str)
    }

    /// Reads the file at `path` from disk again.
    pub fn forget(&mut self, path: &Path) {
        self.overlay.remove(&canonical(path));
    }

    /// Compiles every template as written (the reference that folding is tested against).
    #[cfg(test)]
    pub(crate) fn without_folding(mut self) -> Self {
        self.folding = false;
        self
    }

    /// How many shapes this engine has compiled.
    #[cfg(test)]
    pub(crate) fn shapes_compiled(&self) -> usize {
        self.shapes_compiled
    }

    /// Renders `template` (read from `path`) with `layers` plus the file's own `[vars]`.
    pub fn render(
        &mut self,
        template: &Arc<Source>,
        path: &Path,
        layers: &VarLayers,
    ) -> Result<Rendered, Vec<Diagnostic>> {
        let text = template.text();
        let file_vars: BTreeMap<String, tera::Value> = plain_table(text, "vars")
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_value(v)))
            .collect();
        let determinism = plain_table(text, "determinism");
        let seed = determinism
            .get("seed")
            .and_then(toml::Value::as_integer)
            .map_or_else(
                || u64::from_le_bytes(first8(functions::sha256_hex(text.as_bytes()).as_bytes())),
                |s| s as u64,
            );
        let frozen = determinism.get("freeze_clock").map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let reset = |state: &SharedState| {
            state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .reset(seed, frozen.clone());
        };
        reset(&self.state);

        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut dependencies = Vec::new();
        let mut diags = Vec::new();
        if let Some(d) = too_nested(template) {
            return Err(vec![d]);
        }
        let mut chain = vec![canonical(path)];
        self.load_references(template, &dir, &mut dependencies, &mut diags, &mut chain);
        if !diags.is_empty() {
            return Err(diags);
        }
        let mut ctx = tera_context(&layers.merged(&file_vars));
        if let Some(out) = self.render_folded(text, &mut ctx) {
            return Ok(Rendered {
                source: Source::rendered(template, out),
                dependencies,
            });
        }
        // As written: also how every error is reported, against the user's own text.
        reset(&self.state);
        let name = template.name().to_owned();
        let result = self
            .compile(&name, text)
            .map_err(|e| (Code::TemplateSyntax, e))
            .and_then(|()| {
                self.tera
                    .render(&name, &ctx)
                    .map_err(|e| (Code::TemplateRender, e))
            });
        self.tera.templates.remove(&name);
        match result {
            Ok(out) => Ok(Rendered {
                source: Source::rendered(template, out),
                dependencies,
            }),
            Err((code, e)) => Err(vec![self.tera_diagnostic(code, &e, template)]),
        }
    }

    /// Renders `text` through its folded shape if another file had that shape before;
    /// `None` when it has not, cannot be folded, or its shape fails to compile or render.
    fn render_folded(&mut self, text: &str, ctx: &mut tera::Context) -> Option<String> {
        if !self.folding {
            return None;
        }
        let folded = fold::fold(text)?;
        let name = match self.shapes.get(&folded.shape) {
            Some(Shape::Compiled(name)) => name.clone(),
            Some(Shape::Failed) => return None,
            Some(Shape::Seen) => {
                self.shapes_compiled += 1;
                let name = format!("<shape {}>.toml.tera", self.shapes_compiled);
                if self.compile(&name, &folded.shape).is_err() {
                    self.tera.templates.remove(&name);
                    self.shapes.insert(folded.shape, Shape::Failed);
                    return None;
                }
                self.shapes
                    .insert(folded.shape, Shape::Compiled(name.clone()));
                name
            }
            None => {
                if self.shapes.len() >= MAX_SHAPES {
                    // Shapes seen once go first; compiled ones only if they fill it.
                    self.shapes.retain(|_, shape| !matches!(shape, Shape::Seen));
                }
                if self.shapes.len() >= MAX_SHAPES {
                    for (_, shape) in self.shapes.drain() {
                        if let Shape::Compiled(name) = shape {
                            self.tera.templates.remove(&name);
                        }
                    }
                }
                self.shapes.insert(folded.shape, Shape::Seen);
                return None;
            }
        };
        ctx.insert(LITERALS, &folded.literals);
        let out = self.tera.render(&name, ctx).ok();
        ctx.remove(LITERALS);
        out
    }

    /// Compiles `text` as template `name`, with the recursion bound of [`guard`].
    fn compile(&mut self, name: &str, text: &str) -> Result<(), tera::Error> {
        self.tera.add_raw_template(name, text)?;
        if let Some(t) = self.tera.templates.get_mut(name) {
            guard::instrument(t);
        }
        Ok(())
    }

    /// Finds, reads and registers every template `src` refers to, depth first. `chain`
    /// holds the files being loaded, the rendered one first: an import of one of them
    /// is a cycle, which Tera would follow without end.
    fn load_references(
        &mut self,
        src: &Arc<Source>,
        dir: &Path,
        deps: &mut Vec<PathBuf>,
        diags: &mut Vec<Diagnostic>,
        chain: &mut Vec<PathBuf>,
    ) {
        if chain.len() > guard::MAX_DEPTH {
            return;
        }
        let refs: Vec<(String, String, Span)> = REFERENCE
            .captures_iter(src.text())
            .filter_map(|c| {
                let (kind, m) = (c.get(1)?, c.get(2)?);
                Some((
                    kind.as_str().to_owned(),
                    m.as_str().to_owned(),
                    Span::new(m.start(), m.end()),
                ))
            })
            .collect();
        for (kind, name, span) in refs {
            let Some(origin) = self.resolve(&name, dir) else {
                diags.push(
                    Diagnostic::error(
                        Code::TemplateNotFound,
                        format!("template \"{name}\" not found"),
                    )
                    .at(src, span, "no such template")
                    .help(format!(
                        "looked next to the template ({}) and in {}",
                        self.display(dir),
                        self.display(&self.project_templates)
                    )),
                );
                continue;
            };
            let content = match &origin {
                Origin::Builtin => MACROS.to_owned(),
                Origin::File(p) => match (!self.overlay.is_empty())
                    .then(|| self.overlay.get(&canonical(p)))
                    .flatten()
                    .map_or_else(|| std::fs::read_to_string(p), |t| Ok(t.clone()))
                {
                    Ok(c) => c,
                    Err(e) => {
                        diags.push(
                            Diagnostic::error(
                                Code::Io,
                                format!("cannot read template {}: {e}", self.display(p)),
                            )
                            .at(src, span, "referenced here"),
                        );
                        continue;
                    }
                },
            };
            if let Origin::File(p) = &origin {
                if kind == "import" && chain.contains(&canonical(p)) {
                    diags.push(self.import_cycle(src, span, &name, chain, p));
                    continue;
                }
                if deps.contains(p) {
                    continue;
                }
                deps.push(p.clone());
            }
            if origin == Origin::Builtin
                && self
                    .loaded
                    .get(&name)
                    .is_some_and(|(o, _)| *o == Origin::Builtin)
            {
                // The shipped library never changes and includes nothing.
                continue;
            }
            let include_src = Source::file(self.origin_name(&origin, &name), content.clone());
            if let Some(d) = too_nested(&include_src) {
                diags.push(d);
                continue;
            }
            let child_dir = match &origin {
                Origin::File(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
                Origin::Builtin => PathBuf::new(),
            };
            let before = diags.len();
            if let Origin::File(p) = &origin {
                // (The shipped library refers to nothing: only its doc comment names itself.)
                chain.push(canonical(p));
                self.load_references(&include_src, &child_dir, deps, diags, chain);
                chain.pop();
            }
            if diags.len() > before {
                // Compiling it would only repeat what is wrong with its references.
                continue;
            }
            if self
                .loaded
                .get(&name)
                .is_some_and(|(o, c)| *o == origin && *c == content)
            {
                continue;
            }
            if let Err(e) = self.compile(&name, &content) {
                self.tera.templates.remove(&name);
                self.loaded.remove(&name);
                diags.push(self.tera_diagnostic(Code::TemplateSyntax, &e, &include_src));
                continue;
            }
            self.loaded.insert(name, (origin, content));
        }
    }

    /// The diagnostic of an import that closes a cycle.
    fn import_cycle(
        &self,
        src: &Arc<Source>,
        span: Span,
        name: &str,
        chain: &[PathBuf],
        target: &Path,
    ) -> Diagnostic {
        let target = canonical(target);
        let from = chain.iter().position(|p| *p == target).unwrap_or(0);
        let mut path: Vec<String> = chain[from..].iter().map(|p| self.display(p)).collect();
        path.push(self.display(&target));
        Diagnostic::error(
            Code::TemplateRender,
            format!("template \"{name}\" is imported in a cycle, which never ends"),
        )
        .at(src, span, "imports a template that imports this one")
        .help(format!(
            "the cycle: {}; move the shared macros to a file that imports neither",
            path.join(" → ")
        ))
    }

    fn resolve(&self, name: &str, dir: &Path) -> Option<Origin> {
        let leaves = Path::new(name).components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir
                    | std::path::Component::RootDir
                    | std::path::Component::Prefix(_)
            )
        });
        if leaves && super::untrusted() {
            // An uploaded template may not reach outside its project.
            return None;
        }
        [dir.join(name), self.project_templates.join(name)]
            .into_iter()
            .find(|p| p.is_file())
            .map(Origin::File)
            .or_else(|| (name == MACROS_NAME).then_some(Origin::Builtin))
    }

    fn origin_name(&self, origin: &Origin, name: &str) -> String {
        match origin {
            Origin::File(p) => self.display(p),
            Origin::Builtin => format!("<builtin>/{name}"),
        }
    }

    fn display(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// Turns a Tera error into a positioned diagnostic in `src`.
    fn tera_diagnostic(&self, code: Code, e: &tera::Error, src: &Arc<Source>) -> Diagnostic {
        let chain = error_chain(e);
        let innermost = chain.last().cloned().unwrap_or_default();
        if let Some((line, col, expected)) = pest_position(&innermost) {
            // pest counts columns in characters.
            let line_start = src.line_start(line);
            let start = src.text()[line_start..]
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(src.text().len(), |(i, _)| line_start + i);
            let end = src.text()[start..]
                .chars()
                .next()
                .map_or(start, |c| start + c.len_utf8());
            return Diagnostic::error(Code::TemplateSyntax, "template syntax error").at(
                src,
                Span::new(start, end),
                expected,
            );
        }
        let message = innermost
            .lines()
            .next()
            .unwrap_or("template error")
            .to_owned();
        let code = if message.contains("not found") && message.starts_with("Template") {
            Code::TemplateNotFound
        } else {
            code
        };
        let mut d = Diagnostic::error(code, format!("template error: {message}"));
        let too_deep = message.contains(" nests ") && message.contains("itself without end");
        let located = too_deep
            .then(|| after(&innermost, "\"", '"'))
            .flatten()
            .into_iter()
            .chain(backticked(&innermost))
            .chain(after(&innermost, "Filter '", '\''))
            .chain(after(&innermost, "Test '", '\''))
            .chain(quoted_function(&chain))
            .find_map(|needle| locate_in_tags(src.text(), &needle));
        d = match located {
            Some(span) => d.at(src, span, "while rendering this"),
            None => d.at(src, Span::new(0, 0), "while rendering this template"),
        };
        if too_deep {
            d = d.help(format!(
                "recursion through macros and includes stops at {} levels; give it a condition that ends it",
                guard::MAX_DEPTH
            ));
        }
        if message.starts_with("Variable") {
            d = d.help("define it with `--var name=value`, `CLNRM_VAR_name`, [vars] in the file or in .clnrm/config.toml");
        }
        d
    }
}

/// The diagnostic of a template nested deeper than Tera's parser can take safely.
fn too_nested(src: &Arc<Source>) -> Option<Diagnostic> {
    let (span, what) = guard::check_nesting(src.text())?;
    Some(
        Diagnostic::error(
            Code::TemplateSyntax,
            if what == "operators" {
                format!(
                    "a template tag has more than {} operators",
                    guard::MAX_OPERATORS
                )
            } else {
                format!(
                    "template {what} nest deeper than {} levels",
                    guard::MAX_NESTING
                )
            },
        )
        .at(src, span, "one level too deep")
        .help(if what == "operators" {
            "split the expression with {% set %}"
        } else {
            "split the template into macros or includes"
        }),
    )
}

/// `p` with symlinks and `..` resolved, so one file has one name (itself when it cannot be).
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn first8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// Messages of an error and its sources, outermost first.
fn error_chain(e: &tera::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(inner) = cur {
        out.push(inner.to_string());
        cur = inner.source();
    }
    out
}

/// `--> line:col` and the `= expected ...` line of a pest error.
fn pest_position(msg: &str) -> Option<(usize, usize, String)> {
    let pos = msg.lines().find_map(|l| l.trim().strip_prefix("--> "))?;
    let (line, col) = pos.split_once(':')?;
    let expected = msg
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or("unexpected input")
        .to_owned();
    Some((
        line.trim().parse().ok()?,
        col.trim().parse().ok()?,
        expected,
    ))
}

/// Text between the first pair of backticks (`Variable `x` not found`).
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_owned())
}

/// The text between `prefix` and the next `end` in `msg`.
fn after(msg: &str, prefix: &str, end: char) -> Option<String> {
    let start = msg.find(prefix)? + prefix.len();
    let len = msg[start..].find(end)?;
    Some(msg[start..start + len].to_owned())
}

/// The name in `Function call 'env' failed`.
fn quoted_function(chain: &[String]) -> Option<String> {
    chain.iter().find_map(|m| {
        let rest = m.strip_prefix("Function call '")?;
        Some(rest[..rest.find('\'')?].to_owned())
    })
}
