//! A clnrm file from a Compose file (`compose.yaml`, `docker-compose.yml`).
//!
//! Each Compose service becomes a `[service.<id>]` with its image, entrypoint,
//! command, environment (`environment` in both forms, `env_file`), container ports,
//! bind mounts, health check and `depends_on` conditions, and gets a starter scenario
//! (a one-shot, which others wait to complete, is exercised by theirs). Variables are
//! interpolated as Compose does (`${VAR:-default}`, from the environment, then the
//! `.env` beside the file). What has no equivalent is listed in a comment at the top.

use super::toml_text as t;
use super::{ImportError, Imported};
use crate::model::shell::split_words;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// The largest Compose (or env) file read.
pub const MAX_BYTES: usize = 4 << 20;

/// The most container ports one range may expand to.
const MAX_RANGE: u32 = 64;

/// What to import.
pub struct ComposeInput<'a> {
    /// The file's text.
    pub text: &'a str,
    /// The file as named to the user (in messages and the header comment).
    pub file: &'a str,
    /// Its directory: relative bind mounts, `env_file` and `.env` are found there.
    pub dir: &'a Path,
    /// The project name when the file has no `name` (Compose uses the directory's).
    pub project: &'a str,
    /// The environment variables interpolation reads before `.env`.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The directory the test definition will be written in: a relative bind mount
    /// stays relative, to it (clnrm reads a relative `host_path` from its file's
    /// directory, as Compose does from its own).
    pub out_dir: &'a Path,
}

/// One imported service.
#[derive(Default)]
struct Service {
    id: String,
    image: String,
    entrypoint: Option<Vec<String>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ports: Vec<u16>,
    volumes: Vec<(String, String, bool)>,
    health: Option<Health>,
    depends_on: Vec<(String, &'static str)>,
    notes: Vec<String>,
}

struct Health {
    cmd: Vec<String>,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    retries: Option<u64>,
}

/// The state of one import.
struct Import<'a> {
    input: &'a ComposeInput<'a>,
    dotenv: Vec<(String, String)>,
    skipped: Vec<String>,
    unset: BTreeSet<String>,
}

/// Imports `input`.
pub fn from_compose(input: &ComposeInput<'_>) -> Result<Imported, ImportError> {
    let value_err = |path: &str, message: String| ImportError::Value {
        file: input.file.to_owned(),
        path: path.to_owned(),
        message,
    };
    if input.text.len() > MAX_BYTES {
        return Err(value_err(
            "(file)",
            format!(
                "{} bytes is over the {MAX_BYTES}-byte limit",
                input.text.len()
            ),
        ));
    }
    let mut root: Value = serde_yaml_ng::from_str(input.text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ImportError::Syntax {
            file: input.file.to_owned(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    root.apply_merge()
        .map_err(|e| value_err("(merge keys)", e.to_string()))?;
    let mut imp = Import {
        input,
        dotenv: read_dotenv(input.dir, input.var),
        skipped: Vec::new(),
        unset: BTreeSet::new(),
    };
    imp.interpolate_all(&mut root, "")?;
    let Value::Mapping(top) = root else {
        return Err(value_err(
            "(top)",
            "a Compose file is a mapping with `services`".into(),
        ));
    };
    // `name` (read first: it names the images of `build`-only services), as Compose
    // normalises a project name.
    let name = top
        .get("name")
        .and_then(scalar)
        .map_or_else(|| input.project.to_owned(), |n| project_name(&n));
    let mut services = Vec::new();
    for (k, v) in &top {
        let key = scalar(k).unwrap_or_default();
        match key.as_str() {
            "name" => {}
            "services" => {
                let Value::Mapping(m) = v else {
                    return Err(value_err(
                        "services",
                        "must be a mapping of services".into(),
                    ));
                };
                for (id, svc) in m {
                    let id = scalar(id).unwrap_or_default();
                    services.push(imp.service(&id, svc, &name)?);
                }
            }
            "version" => imp.skip("version", v, "obsolete in Compose; not needed"),
            k if k.starts_with("x-") => {}
            "volumes" => imp.skip(
                "volumes",
                v,
                "each scenario's containers start with fresh anonymous volumes",
            ),
            "networks" => imp.skip(
                "networks",
                v,
                "each scenario has a network of its own; services reach each other by id",
            ),
            _ => imp.skip(&key, v, "no equivalent in clnrm"),
        }
    }
    if services.is_empty() {
        return Err(value_err("services", "the file defines no service".into()));
    }
    let ids: BTreeSet<&str> = services.iter().map(|s| s.id.as_str()).collect();
    for s in &services {
        for (dep, _) in &s.depends_on {
            if !ids.contains(dep.as_str()) {
                return Err(value_err(
                    &format!("services.{}.depends_on", s.id),
                    format!("names \"{dep}\", which is not a service of this file"),
                ));
            }
        }
    }
    let toml = write(&imp, &name, &services);
    Ok(Imported {
        toml,
        skipped: imp.skipped,
    })
}

/// A project name as Compose makes one: lower case, of `a-z0-9_-` (`imported` when
/// nothing is left).
pub fn project_name(raw: &str) -> String {
    let name: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if name.is_empty() {
        "imported".to_owned()
    } else {
        name
    }
}

/// A scalar as text (strings, numbers and booleans; not null).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value as one short line for a comment.
fn brief(v: &Value) -> String {
    let text = match v {
        Value::String(s) => t::string(s),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
}

/// The variables of `dir/.env`, if there is one.
/// `.env`'s values may use the environment and the lines above them.
fn read_dotenv(dir: &Path, var: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let Ok(text) = read_bounded(&dir.join(".env")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v, interp) in parse_env_file(&text) {
        let v = if interp {
            let lookup = |n: &str| {
                var(n).or_else(|| {
                    out.iter()
                        .rev()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                })
            };
            interpolate(&v, &lookup, &mut BTreeSet::new()).unwrap_or(v)
        } else {
            v
        };
        out.push((k, v));
    }
    out
}

/// A file's text, refused over [`MAX_BYTES`].
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_BYTES as u64 {
        return Err(std::io::Error::other(format!(
            "{len} bytes is over the {MAX_BYTES}-byte limit"
        )));
    }
    std::fs::read_to_string(path)
}

/// The `KEY=VALUE` lines of an env file (`# comments`, `export KEY=…`, quoted values);
/// the bool says whether the value is to be interpolated (not single-quoted).
pub fn parse_env_file(text: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let (value, interpolate) = if let Some(inner) = quoted(v, '\'') {
            (inner.to_owned(), false)
        } else if let Some(inner) = quoted(v, '"') {
            (unescape(inner), true)
        } else {
            let v = v.split(" #").next().unwrap_or_default().trim_end();
            (v.to_owned(), true)
        };
        out.push((k.trim().to_owned(), value, interpolate));
    }
    out
}

fn quoted(v: &str, q: char) -> Option<&str> {
    let inner = v.strip_prefix(q)?;
    inner.rfind(q).map(|end| &inner[..end])
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Why a value's `${…}` cannot be interpolated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// Defaults (`${A:-${B:-…}}`) nest too deep.
    #[error("variables nest more than {} deep", MAX_NESTING)]
    TooDeep,
    /// A `${` without its `}`.
    #[error("unclosed `${{` in {0:?}")]
    Unclosed(String),
    /// A `${…}` that does not start with a name.
    #[error("`${{{0}}}` does not start with a variable name")]
    NoName(String),
    /// `${NAME:?message}` (or `?`) of a variable that is unset (or empty).
    #[error("variable {name} is required: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written after `?`.
        message: String,
    },
    /// A `${NAME…}` whose operator Compose does not have.
    #[error("`${{{body}}}`: unknown modifier {op:?}")]
    UnknownModifier {
        /// What is between the braces.
        body: String,
        /// What follows the name.
        op: String,
    },
}

/// `s` with Compose's interpolation applied: `$$` is `$`; `$NAME`, `${NAME}`,
/// `${NAME:-default}` / `${NAME-default}` (unset or empty / unset),
/// `${NAME:?message}` / `${NAME?message}` (an error), `${NAME:+other}` /
/// `${NAME+other}`. A variable that is unset and has no default is empty, and named in
/// `unset`.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
) -> Result<String, InterpolationError> {
    interpolate_at(s, lookup, unset, 0)
}

/// How deep defaults may nest (`${A:-${B:-…}}`); the input is untrusted.
const MAX_NESTING: usize = 8;

fn interpolate_at(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    if depth > MAX_NESTING {
        return Err(InterpolationError::TooDeep);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end =
                closing_brace(body).ok_or_else(|| InterpolationError::Unclosed(s.to_owned()))?;
            out.push_str(&expand(&body[..end], lookup, unset, depth)?);
            rest = &body[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
            } else {
                let name = &after[..len];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        unset.insert(name.to_owned());
                    }
                }
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// The byte offset of the `}` closing a `${` whose body starts `body`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `${…}` body.
fn expand(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
    depth: usize,
) -> Result<String, InterpolationError> {
    let len = name_len(body);
    if len == 0 {
        return Err(InterpolationError::NoName(body.to_owned()));
    }
    let (name, op) = body.split_at(len);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let out = match op {
        "" => match value {
            Some(v) => v,
            None => {
                unset.insert(name.to_owned());
                String::new()
            }
        },
        _ if op.starts_with(":-") => match value.filter(|_| set_nonempty) {
            Some(v) => v,
            None => interpolate_at(&op[2..], lookup, unset, depth + 1)?,
        },
        _ if op.starts_with('-') => match value {
            Some(v) => v,
            None => interpolate_at(&op[1..], lookup, unset, depth + 1)?,
        },
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let nonempty_needed = op.starts_with(':');
            let ok = if nonempty_needed {
                set_nonempty
            } else {
                value.is_some()
            };
            if !ok {
                let msg = op.trim_start_matches(':').trim_start_matches('?');
                return Err(InterpolationError::Required {
                    name: name.to_owned(),
                    message: msg.to_owned(),
                });
            }
            value.unwrap_or_default()
        }
        _ if op.starts_with(":+") => {
            if set_nonempty {
                interpolate_at(&op[2..], lookup, unset, depth + 1)?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                interpolate_at(&op[1..], lookup, unset, depth + 1)?
            } else {
                String::new()
            }
        }
        _ => {
            return Err(InterpolationError::UnknownModifier {
                body: body.to_owned(),
                op: op.to_owned(),
            });
        }
    };
    Ok(out)
}

/// A Go duration (`1m30s`, `500ms`, `2h`) in milliseconds, rounded up.
pub fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut total_ns = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += n * scale;
        rest = &rest[unit_len..];
    }
    // TOML integers are i64.
    let ms = (total_ns / 1e6).ceil();
    (ms.is_finite() && ms <= i64::MAX as f64).then_some(ms as u64)
}

/// `path` made absolute against `dir`, with `.` and `..` resolved by name.
fn absolute(dir: &Path, path: &str, home: Option<String>) -> PathBuf {
    let p = match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    };
    let joined = if p.is_absolute() { p } else { dir.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` (absolute, resolved) written relative to the directory `from` (absolute,
/// resolved): `./x` below it, `../x` beside it.
fn relative_to(path: &Path, from: &Path) -> String {
    let (p, f): (Vec<_>, Vec<_>) = (path.components().collect(), from.components().collect());
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    let text = out.to_string_lossy().into_owned();
    if text.is_empty() {
        ".".to_owned()
    } else if text.starts_with("..") {
        text
    } else {
        format!("./{text}")
    }
}

impl Import<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.input.var)(name).or_else(|| {
            self.dotenv
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn err(&self, path: &str, message: impl Into<String>) -> ImportError {
        ImportError::Value {
            file: self.input.file.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn skip(&mut self, path: &str, v: &Value, why: &str) {
        self.skipped.push(format!("{path}: {} ({why})", brief(v)));
    }

    fn interpolate_all(&mut self, v: &mut Value, path: &str) -> Result<(), ImportError> {
        match v {
            Value::String(s) => {
                let mut unset = std::mem::take(&mut self.unset);
                let out = interpolate(s, &|n| self.lookup(n), &mut unset);
                self.unset = unset;
                *s = out.map_err(|m| self.err(path, m.to_string()))?;
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate_all(item, &format!("{path}[{i}]"))?;
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m.iter_mut() {
                    let k = scalar(k).unwrap_or_default();
                    let p = if path.is_empty() {
                        k
                    } else {
                        format!("{path}.{k}")
                    };
                    self.interpolate_all(item, &p)?;
                }
            }
            Value::Tagged(tagged) => self.interpolate_all(&mut tagged.value, path)?,
            _ => {}
        }
        Ok(())
    }

    fn service(&mut self, id: &str, v: &Value, project: &str) -> Result<Service, ImportError> {
        let base = format!("services.{id}");
        let empty = Mapping::new();
        let m = match v {
            Value::Mapping(m) => m,
            Value::Null => &empty,
            _ => return Err(self.err(&base, "must be a mapping")),
        };
        let mut svc = Service {
            id: id.to_owned(),
            ..Service::default()
        };
        let mut env_file = Vec::new();
        let mut environment = Vec::new();
        let mut build = None;
        for (k, v) in m {
            let key = scalar(k).unwrap_or_default();
            let path = format!("{base}.{key}");
            match key.as_str() {
                "image" => {
                    svc.image = scalar(v).ok_or_else(|| self.err(&path, "must be a string"))?;
                }
                "build" => build = Some(v.clone()),
                "command" => svc.args = self.words(v, &path)?,
                "entrypoint" => svc.entrypoint = Some(self.words(v, &path)?),
                "environment" => environment = self.environment(v, &path)?,
                "env_file" => env_file = self.env_files(v, &path)?,
                "ports" => svc.ports = self.ports(v, &path, &mut svc.notes)?,
                "expose" => self.skip(
                    &path,
                    v,
                    "not needed: a scenario's services reach each other by id",
                ),
                "volumes" => svc.volumes = self.volumes(v, &path)?,
                "healthcheck" => svc.health = self.health(v, &path, &mut svc.notes)?,
                "depends_on" => svc.depends_on = self.depends_on(v, &path)?,
                "restart" => self.skip(&path, v, "each scenario starts its own containers"),
                "container_name" | "hostname" => self.skip(
                    &path,
                    v,
                    "containers are named by clnrm and reached by their service id",
                ),
                "networks" | "network_mode" | "links" => self.skip(
                    &path,
                    v,
                    "each scenario has a network of its own; services reach each other by id",
                ),
                "deploy" | "mem_limit" | "cpus" | "mem_reservation" => self.skip(
                    &path,
                    v,
                    "limits apply to every container: [limits], --memory, --cpu",
                ),
                _ => self.skip(&path, v, "no equivalent in clnrm"),
            }
        }
        // env_file first, `environment` over it (as Compose does).
        for (k, v) in env_file.into_iter().chain(environment) {
            match svc.env.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => svc.env.push((k, v)),
            }
        }
        match (svc.image.is_empty(), build) {
            (true, Some(b)) => {
                svc.image = format!("{project}-{}", project_name(id));
                svc.notes.push(format!(
                    "build {} is not run: build the image first (`docker compose build` tags \
                     it {})",
                    brief(&b),
                    svc.image
                ));
            }
            (true, None) => return Err(self.err(&base, "has neither `image` nor `build`")),
            (false, Some(b)) => self.skip(&format!("{base}.build"), &b, "the image is used"),
            (false, None) => {}
        }
        Ok(svc)
    }

    /// A command: a list, or a string split like a shell's words.
    fn words(&self, v: &Value, path: &str) -> Result<Vec<String>, ImportError> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::String(s) => split_words(s)
                .map_err(|e| self.err(path, format!("{:?}: {} at byte {}", s, e.reason, e.offset))),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a string"))
                })
                .collect(),
            _ => Err(self.err(path, "must be a string or a list of strings")),
        }
    }

    /// `environment`: a map (a null value reads the variable) or a list of
    /// `KEY=VALUE` / `KEY`.
    fn environment(&mut self, v: &Value, path: &str) -> Result<Vec<(String, String)>, ImportError> {
        let mut out = Vec::new();
        let from_host = |imp: &mut Self, k: &str| match imp.lookup(k) {
            Some(v) => Some(v),
            None => {
                imp.skipped.push(format!(
                    "{path}.{k}: taken from the environment, where it is not set"
                ));
                None
            }
        };
        match v {
            Value::Mapping(m) => {
                for (k, val) in m {
                    let k = scalar(k).unwrap_or_default();
                    match val {
                        Value::Null => {
                            if let Some(v) = from_host(self, &k) {
                                out.push((k, v));
                            }
                        }
                        other => {
                            let s = scalar(other).ok_or_else(|| {
                                self.err(&format!("{path}.{k}"), "must be a scalar")
                            })?;
                            out.push((k, s));
                        }
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let s = scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a string"))?;
                    match s.split_once('=') {
                        Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
                        None => {
                            if let Some(v) = from_host(self, &s) {
                                out.push((s, v));
                            }
                        }
                    }
                }
            }
            Value::Null => {}
            _ => return Err(self.err(path, "must be a mapping or a list")),
        }
        Ok(out)
    }

    /// `env_file`: one path, or a list of paths or `{path, required}`.
    fn env_files(&mut self, v: &Value, path: &str) -> Result<Vec<(String, String)>, ImportError> {
        let entries: Vec<(String, bool)> = match v {
            Value::String(s) => vec![(s.clone(), true)],
            Value::Sequence(items) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Mapping(m) => Some((
                        m.get("path").and_then(scalar)?,
                        m.get("required").and_then(Value::as_bool).unwrap_or(true),
                    )),
                    other => scalar(other).map(|s| (s, true)),
                })
                .collect(),
            _ => return Err(self.err(path, "must be a path or a list of paths")),
        };
        let mut out = Vec::new();
        for (file, required) in entries {
            let full = absolute(self.input.dir, &file, self.lookup("HOME"));
            match read_bounded(&full) {
                Ok(text) => {
                    for (k, v, interp) in parse_env_file(&text) {
                        let v = if interp {
                            let mut unset = std::mem::take(&mut self.unset);
                            let r = interpolate(&v, &|n| self.lookup(n), &mut unset);
                            self.unset = unset;
                            r.map_err(|m| self.err(path, format!("{}: {m}", full.display())))?
                        } else {
                            v
                        };
                        out.push((k, v));
                    }
                }
                Err(e) if required => {
                    return Err(self.err(path, format!("cannot read {}: {e}", full.display())));
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// `ports`: the container side of each (clnrm publishes them on random loopback
    /// ports); host ports and UDP are noted.
    fn ports(
        &mut self,
        v: &Value,
        path: &str,
        notes: &mut Vec<String>,
    ) -> Result<Vec<u16>, ImportError> {
        let Value::Sequence(items) = v else {
            return Err(self.err(path, "must be a list"));
        };
        let mut out: Vec<u16> = Vec::new();
        let mut host_side = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (container, host, proto) = match item {
                Value::Mapping(m) => (
                    m.get("target")
                        .and_then(scalar)
                        .ok_or_else(|| self.err(&at, "has no `target`"))?,
                    m.get("published").and_then(scalar),
                    m.get("protocol").and_then(scalar),
                ),
                other => {
                    let s = scalar(other).ok_or_else(|| self.err(&at, "must be a port"))?;
                    let (spec, proto) = match s.rsplit_once('/') {
                        Some((spec, p)) => (spec.to_owned(), Some(p.to_owned())),
                        None => (s.clone(), None),
                    };
                    match spec.rsplit_once(':') {
                        Some((host, c)) => (c.to_owned(), Some(host.to_owned()), proto),
                        None => (spec, None, proto),
                    }
                }
            };
            if proto.as_deref().is_some_and(|p| p != "tcp") {
                self.skip(&at, item, "clnrm publishes TCP ports only");
                continue;
            }
            if let Some(h) = host {
                host_side.push(h);
            }
            for port in self.port_range(&container, &at)? {
                if !out.contains(&port) {
                    out.push(port);
                }
            }
        }
        if !host_side.is_empty() {
            notes.push(format!(
                "host side of ports ({}) not kept: clnrm publishes container ports on \
                 random loopback ports; an HTTP step reaches them as http://{{id}}:{{port}}",
                host_side.join(", ")
            ));
        }
        Ok(out)
    }

    fn port_range(&self, spec: &str, at: &str) -> Result<Vec<u16>, ImportError> {
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| self.err(at, format!("{s:?} is not a port (1–65535)")))
        };
        match spec.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if b < a || u32::from(b - a) >= MAX_RANGE {
                    return Err(self.err(
                        at,
                        format!("range {spec} must be ascending and at most {MAX_RANGE} ports"),
                    ));
                }
                Ok((a..=b).collect())
            }
            None => Ok(vec![parse(spec)?]),
        }
    }

    /// `volumes`: bind mounts, made absolute; named and anonymous volumes are noted.
    fn volumes(
        &mut self,
        v: &Value,
        path: &str,
    ) -> Result<Vec<(String, String, bool)>, ImportError> {
        let Value::Sequence(items) = v else {
            return Err(self.err(path, "must be a list"));
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (kind, source, target, read_only) = match item {
                Value::Mapping(m) => {
                    let kind = m.get("type").and_then(scalar).unwrap_or("volume".into());
                    let ro = m.get("read_only").and_then(Value::as_bool).unwrap_or(false);
                    (
                        kind,
                        m.get("source").and_then(scalar),
                        m.get("target").and_then(scalar).unwrap_or_default(),
                        ro,
                    )
                }
                other => {
                    let s = scalar(other).ok_or_else(|| self.err(&at, "must be a string"))?;
                    let parts: Vec<&str> = s.split(':').collect();
                    let (source, target, mode) = match parts.as_slice() {
                        [t] => (None, (*t).to_owned(), ""),
                        [s, t] => (Some((*s).to_owned()), (*t).to_owned(), ""),
                        [s, t, m] => (Some((*s).to_owned()), (*t).to_owned(), *m),
                        _ => {
                            return Err(self.err(&at, format!("{s:?} is not SOURCE:TARGET[:MODE]")));
                        }
                    };
                    let is_path = source
                        .as_deref()
                        .is_some_and(|s| s.starts_with(['/', '.', '~']));
                    let kind = if is_path { "bind" } else { "volume" };
                    let ro = mode.split(',').any(|m| m == "ro");
                    (kind.to_owned(), source, target, ro)
                }
            };
            if !target.starts_with('/') {
                return Err(self.err(
                    &at,
                    format!("the container path {target:?} must be absolute"),
                ));
            }
            match (kind.as_str(), source) {
                ("bind", Some(src)) => {
                    let host = absolute(self.input.dir, &src, self.lookup("HOME"));
                    let host = if src.starts_with('.') {
                        relative_to(&host, self.input.out_dir)
                    } else {
                        host.to_string_lossy().into_owned()
                    };
                    out.push((host, target, read_only));
                }
                ("volume", Some(_)) => self.skip(
                    &at,
                    item,
                    "a named volume: each scenario starts with fresh data",
                ),
                _ => self.skip(&at, item, "each scenario's containers start afresh anyway"),
            }
        }
        Ok(out)
    }

    /// `healthcheck`: `test` in its three forms, `interval`, `timeout`, `retries`;
    /// `start_period` becomes more retries (clnrm counts every failed probe).
    fn health(
        &mut self,
        v: &Value,
        path: &str,
        notes: &mut Vec<String>,
    ) -> Result<Option<Health>, ImportError> {
        let Value::Mapping(m) = v else {
            return Err(self.err(path, "must be a mapping"));
        };
        if m.get("disable").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        let cmd =
            match m.get("test") {
                None => {
                    self.skip(
                        path,
                        v,
                        "no `test`: the image's own HEALTHCHECK is not read",
                    );
                    return Ok(None);
                }
                Some(Value::String(s)) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                Some(test) => {
                    let words = self.words(test, &format!("{path}.test"))?;
                    match words.split_first() {
                        Some((first, rest)) if first == "CMD" && !rest.is_empty() => rest.to_vec(),
                        Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
                            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
                        }
                        Some((first, _)) if first == "NONE" => return Ok(None),
                        _ => return Err(self.err(
                            &format!("{path}.test"),
                            "must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", then a command",
                        )),
                    }
                }
            };
        let ms = |imp: &Self, key: &str| -> Result<Option<u64>, ImportError> {
            match m.get(key).and_then(scalar) {
                None => Ok(None),
                Some(s) => duration_ms(&s).map(Some).ok_or_else(|| {
                    imp.err(
                        &format!("{path}.{key}"),
                        format!("{s:?} is not a duration such as \"10s\" or \"1m30s\""),
                    )
                }),
            }
        };
        let interval_ms = ms(self, "interval")?.filter(|ms| *ms > 0);
        let timeout_ms = ms(self, "timeout")?.filter(|ms| *ms > 0);
        let mut retries = match m.get("retries") {
            None => None,
            Some(r) => Some(
                r.as_u64()
                    .filter(|n| *n <= i64::MAX as u64)
                    .ok_or_else(|| {
                        self.err(
                            &format!("{path}.retries"),
                            format!("{} is not a count", brief(r)),
                        )
                    })?,
            ),
        };
        if let Some(start) = ms(self, "start_period")?.filter(|ms| *ms > 0) {
            let every = interval_ms.unwrap_or(crate::model::defaults::HEALTH_INTERVAL_MS);
            let more = start.div_ceil(every.max(1));
            let base = retries.unwrap_or(crate::model::defaults::HEALTH_RETRIES);
            retries = Some(base.saturating_add(more).min(i64::MAX as u64));
            notes.push(format!(
                "healthcheck start_period of {start} ms counted as {more} more retries"
            ));
        }
        for key in ["start_interval"] {
            if let Some(v) = m.get(key) {
                self.skip(&format!("{path}.{key}"), v, "no equivalent in clnrm");
            }
        }
        Ok(Some(Health {
            cmd,
            interval_ms,
            timeout_ms,
            retries,
        }))
    }

    /// `depends_on`: the list form (started) or the map form with conditions.
    fn depends_on(
        &mut self,
        v: &Value,
        path: &str,
    ) -> Result<Vec<(String, &'static str)>, ImportError> {
        let mut out = Vec::new();
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let id = scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a service"))?;
                    out.push((id, "started"));
                }
            }
            Value::Mapping(m) => {
                for (k, cond) in m {
                    let id = scalar(k).unwrap_or_default();
                    let at = format!("{path}.{id}");
                    let condition = cond
                        .get("condition")
                        .and_then(scalar)
                        .unwrap_or_else(|| "service_started".into());
                    let c = match condition.as_str() {
                        "service_started" => "started",
                        "service_healthy" => "healthy",
                        "service_completed_successfully" => "completed",
                        other => {
                            return Err(self.err(
                                &format!("{at}.condition"),
                                format!(
                                    "{other:?} is not service_started, service_healthy or \
                                     service_completed_successfully"
                                ),
                            ));
                        }
                    };
                    for key in ["restart", "required"] {
                        if let Some(v) = cond.get(key) {
                            self.skip(&format!("{at}.{key}"), v, "no equivalent in clnrm");
                        }
                    }
                    out.push((id, c));
                }
            }
            _ => return Err(self.err(path, "must be a list or a mapping")),
        }
        Ok(out)
    }
}

/// The TOML text.
fn write(imp: &Import<'_>, name: &str, services: &[Service]) -> String {
    let mut out = String::new();
    let mut head = format!(
        "Imported from {} by `clnrm import`. Each service that keeps running has a starter \
         scenario: edit its steps to test what the service does.",
        imp.input.file
    );
    if !imp.skipped.is_empty() {
        head.push_str("\n\nNot imported:");
        for s in &imp.skipped {
            let _ = write!(head, "\n- {s}");
        }
    }
    if !imp.unset.is_empty() {
        let names: Vec<&str> = imp.unset.iter().map(String::as_str).collect();
        let _ = write!(
            head,
            "\n\nVariables that were not set (replaced by \"\"): {}",
            names.join(", ")
        );
    }
    out.push_str(&t::comment(&head));
    let _ = write!(
        out,
        "\n[meta]\nname = {}\nversion = \"0.1.0\"\ndescription = {}\n",
        t::string(name),
        t::string(&format!("Imported from {}", imp.input.file))
    );
    for s in services {
        write_service(&mut out, s);
    }
    let one_shots: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| &s.depends_on)
        .filter(|(_, c)| *c == "completed")
        .map(|(id, _)| id.as_str())
        .collect();
    for s in services {
        if one_shots.contains(s.id.as_str()) {
            out.push('\n');
            out.push_str(&t::comment(&format!(
                "{} is a one-shot: the scenarios of the services that wait for it to complete \
                 run it.",
                s.id
            )));
            continue;
        }
        write_scenario(&mut out, s);
    }
    out
}

fn write_service(out: &mut String, s: &Service) {
    out.push('\n');
    for note in &s.notes {
        out.push_str(&t::comment(note));
    }
    let _ = writeln!(out, "[service.{}]", t::key(&s.id));
    let _ = writeln!(out, "image = {}", t::string(&s.image));
    if let Some(e) = &s.entrypoint {
        let _ = writeln!(out, "entrypoint = {}", t::strings(e));
    }
    if !s.args.is_empty() {
        let _ = writeln!(out, "args = {}", t::strings(&s.args));
    }
    if !s.ports.is_empty() {
        let ports: Vec<String> = s.ports.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "ports = [{}]", ports.join(", "));
    }
    if !s.volumes.is_empty() {
        out.push_str("volumes = [\n");
        for (host, container, ro) in &s.volumes {
            let mut pairs = vec![
                ("host_path".to_owned(), t::string(host)),
                ("container_path".to_owned(), t::string(container)),
            ];
            if *ro {
                pairs.push(("read_only".to_owned(), "true".to_owned()));
            }
            let _ = writeln!(out, "  {},", t::inline(&pairs));
        }
        out.push_str("]\n");
    }
    if let Some(h) = &s.health {
        let mut pairs = vec![("cmd".to_owned(), t::strings(&h.cmd))];
        for (k, v) in [
            ("interval_ms", h.interval_ms),
            ("timeout_ms", h.timeout_ms),
            ("retries", h.retries),
        ] {
            if let Some(v) = v {
                pairs.push((k.to_owned(), v.to_string()));
            }
        }
        let _ = writeln!(out, "health_check = {}", t::inline(&pairs));
    }
    if !s.depends_on.is_empty() {
        let pairs: Vec<(String, String)> = s
            .depends_on
            .iter()
            .map(|(id, c)| (id.clone(), t::string(c)))
            .collect();
        let _ = writeln!(out, "depends_on = {}", t::inline(&pairs));
    }
    if !s.env.is_empty() {
        let _ = writeln!(out, "\n[service.{}.env]", t::key(&s.id));
        for (k, v) in &s.env {
            let _ = writeln!(out, "{} = {}", t::key(k), t::string(v));
        }
    }
}

fn write_scenario(out: &mut String, s: &Service) {
    let id = t::string(&s.id);
    let (name, step, cmd, hint) = match &s.health {
        Some(h) => (
            format!("{} is healthy", s.id),
            "health check",
            // A literal `${` in a step is written `$${` (a `${name}` there is a capture).
            h.cmd.iter().map(|a| a.replace("${", "$${")).collect(),
            "",
        ),
        None => (
            format!("{} starts", s.id),
            "running",
            vec!["true".to_owned()],
            "# Starter: replace with a check of what the service does (a `command` in it,\n\
             # or an `http` request to one of its ports).\n",
        ),
    };
    let _ = write!(
        out,
        "\n[[scenario]]\nname = {}\nservices = [{id}]\n\n{hint}[[scenario.steps]]\nname = {}\n\
         service = {id}\ncommand = {}\n",
        t::string(&name),
        t::string(step),
        t::strings(&cmd)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |n| owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    fn interp(
        s: &str,
        pairs: &[(&str, &str)],
    ) -> Result<(String, Vec<String>), InterpolationError> {
        let mut unset = BTreeSet::new();
        let out = interpolate(s, &vars(pairs), &mut unset)?;
        Ok((out, unset.into_iter().collect()))
    }

    #[test]
    fn interpolation_follows_compose() {
        let set = [("USER", "ann"), ("EMPTY", "")];
        let ok = |s: &str| interp(s, &set).unwrap().0;
        assert_eq!(ok("$USER and ${USER}"), "ann and ann");
        assert_eq!(ok("$$USER costs $$5"), "$USER costs $5");
        assert_eq!(ok("${EMPTY:-def}|${EMPTY-def}"), "def|");
        assert_eq!(ok("${NOPE:-a ${USER} b}"), "a ann b");
        assert_eq!(ok("${USER:+yes}${EMPTY:+no}${EMPTY+set}"), "yesset");
        assert_eq!(ok("a $ b $1"), "a $ b $1");
        let (out, unset) = interp("x${NOPE}y$ALSO", &set).unwrap();
        assert_eq!(
            (out.as_str(), unset),
            ("xy", vec!["ALSO".into(), "NOPE".into()])
        );
        assert!(
            interp("${NOPE:?must be set}", &set)
                .unwrap_err()
                .to_string()
                .contains("NOPE is required: must be set")
        );
        assert!(interp("${EMPTY:?}", &set).is_err());
        assert!(interp("${EMPTY?}", &set).is_ok());
        assert!(
            interp("${USER", &set)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(interp("${1X}", &set).is_err());
    }

    #[test]
    fn durations_are_go_durations() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1.5s"), Some(1_500));
        assert_eq!(duration_ms("1h"), Some(3_600_000));
        assert_eq!(duration_ms("100us"), Some(1));
        assert_eq!(duration_ms("0"), Some(0));
        assert_eq!(duration_ms("10"), None);
        assert_eq!(duration_ms("10 parsecs"), None);
        assert_eq!(duration_ms(""), None);
    }

    #[test]
    fn env_files_read_like_compose() {
        let text =
            "# c\nA=1\nexport B = two \nC='lit ${X}'\nD=\"q\\n${X}\"\nE=v # note\nnot a pair\n";
        let got = parse_env_file(text);
        let want = [
            ("A", "1", true),
            ("B", "two", true),
            ("C", "lit ${X}", false),
            ("D", "q\n${X}", true),
            ("E", "v", true),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v, i), (wk, wv, wi)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str(), *i), (wk, wv, wi));
        }
    }

    fn import(yaml: &str) -> Result<Imported, ImportError> {
        let var = vars(&[("TAG", "16"), ("HOME", "/home/ann")]);
        from_compose(&ComposeInput {
            text: yaml,
            file: "compose.yaml",
            dir: Path::new("/srv/shop"),
            project: "shop",
            var: &var,
            out_dir: Path::new("/srv/shop/tests"),
        })
    }

    #[test]
    fn a_service_keeps_what_has_an_equivalent() {
        let out = import(
            r#"
services:
  db:
    image: "postgres:${TAG}"
    environment:
      POSTGRES_PASSWORD: secret
      PORT: 5432
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U $${POSTGRES_USER}"]
      interval: 2s
      timeout: 1s
      retries: 5
      start_period: 10s
    volumes:
      - ./init.sql:/docker-entrypoint-initdb.d/init.sql:ro
      - pgdata:/var/lib/postgresql/data
      - ~/certs:/certs
  web:
    build: .
    entrypoint: ["/bin/app"]
    command: serve --port "8080"
    ports: ["127.0.0.1:8080:8080", "9000-9001:9000-9001", {target: 7000}, "53:53/udp"]
    environment: [MODE=test, "EMPTY="]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully, restart: true}
    restart: always
  migrate:
    image: busybox
    command: ["true"]
volumes:
  pgdata: {}
"#,
        )
        .unwrap();
        let v: toml::Table = out.toml.parse().expect(&out.toml);
        let db = &v["service"]["db"];
        assert_eq!(db["image"].as_str(), Some("postgres:16"));
        assert_eq!(db["env"]["PORT"].as_str(), Some("5432"));
        let hc = &db["health_check"];
        assert_eq!(
            hc["cmd"][2].as_str(),
            Some("pg_isready -U ${POSTGRES_USER}")
        );
        assert_eq!(hc["interval_ms"].as_integer(), Some(2000));
        assert_eq!(hc["retries"].as_integer(), Some(10));
        let vols = db["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["host_path"].as_str(), Some("../init.sql"));
        assert_eq!(vols[0]["read_only"].as_bool(), Some(true));
        assert_eq!(vols[1]["host_path"].as_str(), Some("/home/ann/certs"));
        let web = &v["service"]["web"];
        assert_eq!(web["image"].as_str(), Some("shop-web"));
        assert_eq!(web["entrypoint"][0].as_str(), Some("/bin/app"));
        assert_eq!(web["args"].as_array().unwrap().len(), 3);
        let ports: Vec<i64> = web["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(toml::Value::as_integer)
            .collect();
        assert_eq!(ports, [8080, 9000, 9001, 7000]);
        assert_eq!(web["env"]["EMPTY"].as_str(), Some(""));
        assert_eq!(web["depends_on"]["db"].as_str(), Some("healthy"));
        assert_eq!(web["depends_on"]["migrate"].as_str(), Some("completed"));
        // The starter scenarios: none for the one-shot.
        let names: Vec<&str> = v["scenario"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names, ["db is healthy", "web starts"]);
        // The health check as a step keeps its literal `${`.
        let step = &v["scenario"][0]["steps"][0];
        assert_eq!(
            step["command"][2].as_str(),
            Some("pg_isready -U $${POSTGRES_USER}")
        );
        for part in [
            "services.db.volumes[1]",
            "services.web.ports[3]",
            "services.web.restart",
            "services.web.depends_on.migrate.restart",
            "volumes:",
        ] {
            assert!(
                out.skipped.iter().any(|s| s.contains(part)),
                "{part}: {:?}",
                out.skipped
            );
        }
        assert!(
            out.toml.contains("# - services.web.restart: \"always\""),
            "{}",
            out.toml
        );
        assert!(out.toml.contains("docker compose build"), "{}", out.toml);
    }

    #[test]
    fn bad_input_is_named() {
        let e = import("services:\n  a: [\n").unwrap_err();
        assert!(matches!(e, ImportError::Syntax { line: 3, .. }), "{e:?}");
        let e = import("services:\n  a:\n    command: x\n").unwrap_err();
        assert!(e.to_string().contains("services.a: has neither"), "{e}");
        let e = import("services:\n  a:\n    image: x\n    ports: [\"99999\"]\n").unwrap_err();
        assert!(
            e.to_string().contains("services.a.ports[0]: \"99999\""),
            "{e}"
        );
        let e = import("services:\n  a:\n    image: x\n    depends_on: [b]\n").unwrap_err();
        assert!(e.to_string().contains("names \"b\""), "{e}");
        let e = import("services:\n  a:\n    image: ${NOPE:?set it}\n").unwrap_err();
        assert!(
            e.to_string().contains("services.a.image: variable NOPE"),
            "{e}"
        );
        let e = import("- a\n").unwrap_err();
        assert!(e.to_string().contains("mapping"), "{e}");
        let e = import("services:\n  a:\n    image: x\n    volumes: [\"data\"]\n").unwrap_err();
        assert!(e.to_string().contains("must be absolute"), "{e}");
    }

    #[test]
    fn hostile_files_are_bounded_and_cannot_break_the_output() {
        // Defaults nested past the bound: an error, not a stack overflow.
        let deep = format!("{}x{}", "${A:-".repeat(5000), "}".repeat(5000));
        let e = import(&format!("services:\n  a:\n    image: \"{deep}\"\n")).unwrap_err();
        assert!(e.to_string().contains("nest more than"), "{e}");
        // Huge counts and durations.
        let out = import(
            "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, \"true\"]\n      \
             retries: 9223372036854775807\n      start_period: 1s\n",
        )
        .unwrap();
        let v: toml::Table = out
            .toml
            .parse()
            .unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
        assert_eq!(
            v["service"]["a"]["health_check"]["retries"].as_integer(),
            Some(i64::MAX)
        );
        let e = import(
            "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, \"true\"]\n      \
             interval: 99999999999999h\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
        // Ids and keys with newlines and control characters stay inside comments and
        // quoted keys: the output is still one valid file with the same services.
        let out = import(
            "services:\n  \"m\\n[service.x]\\nimage='evil'\\n#\":\n    image: x\n    \
             \"odd\\rkey\": 1\n  b:\n    image: y\n    depends_on:\n      \
             \"m\\n[service.x]\\nimage='evil'\\n#\": {condition: service_completed_successfully}\n",
        )
        .unwrap();
        let v: toml::Table = out
            .toml
            .parse()
            .unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
        let ids: Vec<&String> = v["service"]
            .as_table()
            .map(|t| t.keys().collect())
            .unwrap_or_default();
        assert_eq!(ids.len(), 2, "{}", out.toml);
        assert!(!ids.iter().any(|id| *id == "x"), "{}", out.toml);
    }

    #[test]
    fn the_project_name_is_normalised_wherever_it_is_written() {
        let out = import("services:\n  web:\n    build: .\nname: \"My App!\"\n").unwrap();
        let v: toml::Table = out.toml.parse().unwrap();
        assert_eq!(v["service"]["web"]["image"].as_str(), Some("myapp-web"));
        assert_eq!(project_name("Shop_2-x"), "shop_2-x");
        assert_eq!(project_name("!!!"), "imported");
    }

    #[test]
    fn merge_keys_and_extensions_are_applied() {
        let out = import(
            "x-common: &common\n  image: busybox\n  environment: {A: \"1\"}\nservices:\n  \
             one:\n    <<: *common\n  \"two.v2\":\n    <<: *common\n    command: sleep 1\n",
        )
        .unwrap();
        let v: toml::Table = out.toml.parse().unwrap();
        assert_eq!(v["service"]["two.v2"]["image"].as_str(), Some("busybox"));
        assert_eq!(v["service"]["one"]["env"]["A"].as_str(), Some("1"));
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }

    #[test]
    fn relative_bind_mounts_stay_relative_to_where_the_definition_is_written() {
        for (path, from, want) in [
            ("/srv/shop/init.sql", "/srv/shop/tests", "../init.sql"),
            ("/srv/shop/tests/conf", "/srv/shop/tests", "./conf"),
            ("/srv/shop", "/srv/shop", "."),
            ("/a/b/c", "/x/y", "../../a/b/c"),
        ] {
            assert_eq!(
                relative_to(Path::new(path), Path::new(from)),
                want,
                "{path} from {from}"
            );
        }
    }
    #[test]
    fn interpolation_errors_name_the_text() {
        let set = [("USER", "ann")];
        let why = |s: &str| interp(s, &set).unwrap_err().to_string();
        assert_eq!(why("a ${USER"), "unclosed `${` in \"a ${USER\"");
        assert_eq!(why("${1X}"), "`${1X}` does not start with a variable name");
        assert_eq!(why("${USER%x}"), "`${USER%x}`: unknown modifier \"%x\"");
        assert_eq!(why("${NOPE?set it}"), "variable NOPE is required: set it");
        let deep = format!("{}{}", "${N:-".repeat(10), "}".repeat(10));
        assert_eq!(why(&deep), "variables nest more than 8 deep");
    }
}
