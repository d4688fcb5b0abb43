//! A service's `develop.watch` rules as clnrm's `[service.<id>.develop]`: each path,
//! relative to the Compose file's directory there, made relative to the build's
//! context, as clnrm reads it. A rule clnrm cannot follow (a path outside the context,
//! an action other than `sync`, `sync+restart` or `rebuild`) and `ignore` (clnrm's
//! `.dockerignore` decides which files count) are left behind.

use super::paths::{absolute, relative_to};
use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::Value;
use std::path::Path;

/// One imported `develop.watch` rule.
pub(super) struct WatchRule {
    /// Relative to the build's context.
    pub(super) path: String,
    pub(super) action: String,
    pub(super) target: Option<String>,
}

impl Import<'_> {
    /// `develop` of a service built from the context `context` (absolute, resolved).
    pub(super) fn develop(
        &mut self,
        v: &Value,
        path: &str,
        context: &Path,
    ) -> Result<Vec<WatchRule>, ImportError> {
        let Value::Mapping(m) = v else {
            return Err(self.err(path, "must be a mapping"));
        };
        let mut out = Vec::new();
        for (k, v) in m {
            let key = scalar(k).unwrap_or_default();
            let p = format!("{path}.{key}");
            if key != "watch" {
                self.skip(&p, v, "no equivalent in clnrm");
                continue;
            }
            let Value::Sequence(items) = v else {
                return Err(self.err(&p, "must be a list of rules"));
            };
            for (i, item) in items.iter().enumerate() {
                if let Some(rule) = self.watch_rule(item, &format!("{p}[{i}]"), context)? {
                    out.push(rule);
                }
            }
        }
        Ok(out)
    }

    /// One rule, or `None` (noted) when clnrm cannot follow it.
    fn watch_rule(
        &mut self,
        v: &Value,
        at: &str,
        context: &Path,
    ) -> Result<Option<WatchRule>, ImportError> {
        let Value::Mapping(m) = v else {
            return Err(self.err(at, "must be a mapping"));
        };
        let field = |key: &str| -> Result<Option<String>, ImportError> {
            match m.get(key) {
                None => Ok(None),
                Some(v) => scalar(v)
                    .map(Some)
                    .ok_or_else(|| self.err(&format!("{at}.{key}"), "must be a string")),
            }
        };
        let (Some(file), Some(action)) = (field("path")?, field("action")?) else {
            return Err(self.err(at, "needs a `path` and an `action`"));
        };
        let target = field("target")?;
        if !matches!(action.as_str(), "sync" | "sync+restart" | "rebuild") {
            self.skip(
                at,
                v,
                "clnrm's develop actions are sync, sync+restart and rebuild",
            );
            return Ok(None);
        }
        let syncs = action != "rebuild";
        if syncs && !target.as_deref().is_some_and(|t| t.starts_with('/')) {
            self.skip(at, v, "a sync rule needs an absolute `target` in clnrm");
            return Ok(None);
        }
        let rel = relative_to(
            &absolute(self.input.dir, &file, self.lookup("HOME")),
            context,
        );
        if rel.starts_with("..") {
            self.skip(
                at,
                v,
                "its path is outside the build context, and clnrm's rules cover the context's \
                 files",
            );
            return Ok(None);
        }
        for (k, v) in m {
            let key = scalar(k).unwrap_or_default();
            let why = match key.as_str() {
                "path" | "action" | "target" => continue,
                "ignore" => "the context's .dockerignore decides which files count",
                _ => "no equivalent in clnrm",
            };
            self.skip(&format!("{at}.{key}"), v, why);
        }
        Ok(Some(WatchRule {
            path: rel.trim_start_matches("./").to_owned(),
            action,
            target: if syncs { target } else { None },
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::import::compose::tests::{import, read};

    #[test]
    fn watch_paths_become_relative_to_the_build_context() {
        let out = import(
            r#"
services:
  web:
    build: ./app
    develop:
      watch:
        - {path: ./app/src, action: sync, target: /app/src, ignore: [node_modules/]}
        - {path: app/package.json, action: rebuild, target: /ignored}
        - {path: ./app, action: sync+restart, target: /app}
        - {path: ./shared, action: sync, target: /shared}
        - {path: ./app/src, action: sync+exec, target: /app/src, exec: {command: reload}}
        - {path: ./app/conf, action: restart}
        - {path: ./app/src, action: sync}
        - {path: ./app/lib, action: sync, target: lib}
"#,
        )
        .unwrap();
        let v = read(&out.toml);
        let rules = v["service"]["web"]["develop"]["watch"].as_array().unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = rules
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap_or_default(),
                    r["action"].as_str().unwrap_or_default(),
                    r.get("target").and_then(toml::Value::as_str),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("src", "sync", Some("/app/src")),
                ("package.json", "rebuild", None),
                (".", "sync+restart", Some("/app")),
            ]
        );
        for (i, why) in [
            (
                0,
                ".ignore: [\"node_modules/\"] (the context's .dockerignore",
            ),
            (3, ": {\"path\":\"./shared\""),
            (3, "outside the build context"),
            (4, "sync, sync+restart and rebuild"),
            (5, "sync, sync+restart and rebuild"),
            (6, "absolute `target`"),
            (7, "absolute `target`"),
        ] {
            let at = format!("services.web.develop.watch[{i}]");
            assert!(
                out.skipped
                    .iter()
                    .any(|s| s.starts_with(&at) && s.contains(why)),
                "{at} {why}: {:?}",
                out.skipped
            );
        }
    }

    #[test]
    fn develop_without_a_build_is_left_behind() {
        let out = import(
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        \
             - {path: ., action: rebuild}\n",
        )
        .unwrap();
        let v = read(&out.toml);
        assert!(v["service"]["web"].get("develop").is_none(), "{}", out.toml);
        assert!(
            out.skipped
                .iter()
                .any(|s| s.starts_with("services.web.develop:") && s.contains("no `build`")),
            "{:?}",
            out.skipped
        );
        let e = import("services:\n  web:\n    build: .\n    develop:\n      watch: [{path: .}]\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("services.web.develop.watch[0]: needs a `path` and an `action`"),
            "{e}"
        );
    }
}
