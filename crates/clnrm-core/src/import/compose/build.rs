//! A service's `build` as clnrm's `build`: the context (a path, or `context`,
//! `dockerfile`, `target` and `args`), written relative to the test definition as a
//! relative bind mount is. A remote context or a Dockerfile outside the context cannot
//! be imported; what clnrm's builds have no equivalent for (`ssh`, `secrets`, caches,
//! platforms, …) is left behind.

use super::paths::{absolute, relative_to};
use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::{Mapping, Value};
use std::path::{Path, PathBuf};

/// One imported `build`.
pub(super) struct Build {
    /// The context as written: relative to the test definition's directory, or
    /// absolute where Compose's was.
    pub(super) context: String,
    /// Where the context is (absolute, resolved): `develop` paths are made relative
    /// to it.
    pub(super) dir: PathBuf,
    /// The Dockerfile relative to the context, when it is not `Dockerfile`.
    pub(super) dockerfile: Option<String>,
    pub(super) target: Option<String>,
    pub(super) args: Vec<(String, String)>,
}

impl Build {
    /// Whether the context alone says it all (`build = "<context>"`).
    pub(super) fn is_context_only(&self) -> bool {
        self.dockerfile.is_none() && self.target.is_none() && self.args.is_empty()
    }
}

impl Import<'_> {
    /// `build`: a context, or a mapping with `context` (`.` by default),
    /// `dockerfile`, `target` and `args`.
    pub(super) fn build(&mut self, v: &Value, path: &str) -> Result<Build, ImportError> {
        let empty = Mapping::new();
        let (context, m) = match v {
            Value::Mapping(m) => (m.get("context").and_then(scalar), m),
            other => match scalar(other) {
                Some(c) => (Some(c), &empty),
                None => return Err(self.err(path, "must be a path or a mapping")),
            },
        };
        let at = |key: &str| format!("{path}.{key}");
        let context = context.unwrap_or_else(|| ".".to_owned());
        let context_path = if matches!(v, Value::Mapping(_)) {
            at("context")
        } else {
            path.to_owned()
        };
        if is_remote(&context) {
            return Err(self.err(
                &context_path,
                format!(
                    "{context:?} is a remote context: clnrm builds from a directory (clone it \
                     and name the directory)"
                ),
            ));
        }
        let dir = absolute(self.input.dir, &context, self.lookup("HOME"));
        let written = if Path::new(&context).is_absolute() || context.starts_with("~/") {
            dir.to_string_lossy().into_owned()
        } else {
            relative_to(&dir, self.input.out_dir)
        };
        let mut build = Build {
            context: written,
            dockerfile: None,
            target: None,
            args: Vec::new(),
            dir,
        };
        for (k, v) in m {
            let key = scalar(k).unwrap_or_default();
            let p = at(&key);
            match key.as_str() {
                "context" => {}
                "dockerfile" => build.dockerfile = self.dockerfile(v, &p, &build.dir)?,
                "target" => {
                    build.target = Some(scalar(v).ok_or_else(|| self.err(&p, "must be a string"))?);
                }
                "args" => build.args = self.build_args(v, &p)?,
                "dockerfile_inline" => self.skip(
                    &p,
                    v,
                    "clnrm reads the Dockerfile from the context: write it to a file there and \
                     name it in `dockerfile`",
                ),
                "tags" | "labels" => self.skip(&p, v, "clnrm names and labels what it builds"),
                "cache_from" | "cache_to" | "no_cache" | "pull" => self.skip(
                    &p,
                    v,
                    "clnrm keys each build by its sources and bases: unchanged, it is not built again",
                ),
                "platforms" => self.skip(&p, v, "clnrm builds for the engine's platform"),
                "additional_contexts" => {
                    self.skip(&p, v, "clnrm sends the engine one context");
                }
                _ => self.skip(&p, v, "no equivalent in clnrm's builds"),
            }
        }
        Ok(build)
    }

    /// `dockerfile`: relative to the context (or absolute), and inside it, as clnrm
    /// reads it from there; `None` for the default `Dockerfile`.
    fn dockerfile(
        &self,
        v: &Value,
        path: &str,
        context: &Path,
    ) -> Result<Option<String>, ImportError> {
        let file = scalar(v).ok_or_else(|| self.err(path, "must be a path"))?;
        let rel = relative_to(&absolute(context, &file, None), context);
        if rel == "." || rel.starts_with("..") {
            return Err(self.err(
                path,
                format!(
                    "{file:?} is not inside the build context: clnrm reads the Dockerfile from \
                     the context (move it there)"
                ),
            ));
        }
        let rel = rel.trim_start_matches("./");
        Ok((rel != "Dockerfile").then(|| rel.to_owned()))
    }

    /// `args`: a map (a null value is read from the environment) or a list of
    /// `KEY=VALUE` / `KEY` (read from the environment). One set in neither is left
    /// out, so the Dockerfile's default applies, and noted.
    fn build_args(&mut self, v: &Value, path: &str) -> Result<Vec<(String, String)>, ImportError> {
        let pairs: Vec<(String, Option<String>)> = match v {
            Value::Mapping(m) => m
                .iter()
                .map(|(k, val)| {
                    let k = scalar(k).unwrap_or_default();
                    match val {
                        Value::Null => Ok((k, None)),
                        other => match scalar(other) {
                            Some(s) => Ok((k, Some(s))),
                            None => Err(self.err(&format!("{path}.{k}"), "must be a scalar")),
                        },
                    }
                })
                .collect::<Result<_, _>>()?,
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let s = scalar(item)
                        .ok_or_else(|| self.err(&format!("{path}[{i}]"), "must be a string"))?;
                    Ok(match s.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (s, None),
                    })
                })
                .collect::<Result<_, _>>()?,
            Value::Null => Vec::new(),
            _ => return Err(self.err(path, "must be a mapping or a list")),
        };
        let mut out = Vec::new();
        for (k, v) in pairs {
            match v.or_else(|| self.lookup(&k)) {
                Some(v) => out.push((k, v)),
                None => self.skipped.push(format!(
                    "{path}.{k}: taken from the environment, where it is not set (the \
                     Dockerfile's default applies)"
                )),
            }
        }
        Ok(out)
    }
}

/// Whether a Compose context is a Git repository or a URL rather than a directory.
fn is_remote(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

#[cfg(test)]
mod tests {
    use crate::import::compose::tests::{import, read};

    #[test]
    fn a_context_stays_relative_to_where_the_definition_is_written() {
        let out = import(
            "services:\n  web:\n    build: ./web\n  api:\n    build: /opt/api\n  \
             home:\n    build: ~/src/app\n",
        )
        .unwrap();
        let v = read(&out.toml);
        let svc = &v["service"];
        // /srv/shop/web from /srv/shop/tests.
        assert_eq!(svc["web"]["build"].as_str(), Some("../web"));
        assert_eq!(svc["api"]["build"].as_str(), Some("/opt/api"));
        assert_eq!(svc["home"]["build"].as_str(), Some("/home/ann/src/app"));
        assert!(svc["web"].get("image").is_none(), "{}", out.toml);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }

    #[test]
    fn an_image_with_a_build_is_the_build_s_tag_and_is_left_out() {
        let out = import("services:\n  web:\n    image: shop/web:${TAG}\n    build: .\n").unwrap();
        let v = read(&out.toml);
        assert_eq!(v["service"]["web"]["build"].as_str(), Some(".."));
        assert!(v["service"]["web"].get("image").is_none(), "{}", out.toml);
        assert!(
            out.skipped
                .iter()
                .any(|s| s.starts_with("services.web.image: \"shop/web:16\"")),
            "{:?}",
            out.skipped
        );
    }

    #[test]
    fn the_map_form_keeps_dockerfile_target_and_args() {
        let out = import(
            r#"
services:
  web:
    build:
      context: app
      dockerfile: ./docker/dev.Dockerfile
      target: dev
      args: [PYTHON=3.12, TAG, NOT_SET, "EMPTY="]
      ssh: [default]
      cache_from: [shop/web:cache]
      dockerfile_inline: FROM x
  worker:
    build:
      dockerfile: Dockerfile
      args: {RETRIES: 3, TAG: null}
  plain:
    build: {context: ./plain, dockerfile: Dockerfile}
"#,
        )
        .unwrap();
        let v = read(&out.toml);
        let web = &v["service"]["web"]["build"];
        assert_eq!(web["context"].as_str(), Some("../app"));
        assert_eq!(web["dockerfile"].as_str(), Some("docker/dev.Dockerfile"));
        assert_eq!(web["target"].as_str(), Some("dev"));
        let args = web["args"].as_table().unwrap();
        let pairs: Vec<(&str, &str)> = args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
            .collect();
        assert_eq!(pairs, [("EMPTY", ""), ("PYTHON", "3.12"), ("TAG", "16")]);
        // `context` defaults to the Compose file's directory; the default Dockerfile is
        // not written.
        let worker = &v["service"]["worker"]["build"];
        assert_eq!(worker["context"].as_str(), Some(".."));
        assert!(worker.get("dockerfile").is_none(), "{}", out.toml);
        assert_eq!(worker["args"]["RETRIES"].as_str(), Some("3"));
        assert_eq!(worker["args"]["TAG"].as_str(), Some("16"));
        assert_eq!(v["service"]["plain"]["build"].as_str(), Some("../plain"));
        for part in [
            "services.web.build.args.NOT_SET: taken from the environment",
            "services.web.build.ssh",
            "services.web.build.cache_from",
            "services.web.build.dockerfile_inline",
        ] {
            assert!(
                out.skipped.iter().any(|s| s.starts_with(part)),
                "{part}: {:?}",
                out.skipped
            );
        }
    }

    #[test]
    fn a_remote_context_or_a_dockerfile_outside_the_context_is_refused_by_its_path() {
        for (yaml, want) in [
            (
                "services:\n  web:\n    build:\n      context: https://github.com/a/b.git#main\n",
                "services.web.build.context: \"https://github.com/a/b.git#main\" is a remote",
            ),
            (
                "services:\n  web:\n    build: git@github.com:a/b.git\n",
                "services.web.build: \"git@github.com:a/b.git\" is a remote",
            ),
            (
                "services:\n  web:\n    build: {context: app, dockerfile: ../Dockerfile}\n",
                "services.web.build.dockerfile: \"../Dockerfile\" is not inside",
            ),
            (
                "services:\n  web:\n    build: [app]\n",
                "services.web.build: must be a path or a mapping",
            ),
        ] {
            let e = import(yaml).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        // An absolute Dockerfile inside the context is made relative to it.
        let out =
            import("services:\n  web:\n    build: {context: app, dockerfile: /srv/shop/app/x/D}\n")
                .unwrap();
        let v = read(&out.toml);
        assert_eq!(
            v["service"]["web"]["build"]["dockerfile"].as_str(),
            Some("x/D")
        );
    }
}
