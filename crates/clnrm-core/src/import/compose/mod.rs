//! A clnrm file from a Compose file (`compose.yaml`, `docker-compose.yml`).
//!
//! Each Compose service becomes a `[service.<id>]` with its image or its build (and
//! `develop.watch` rules), entrypoint, command, environment (`environment` in both
//! forms, `env_file`), container ports, bind mounts, health check and `depends_on`
//! conditions, and gets a starter scenario (a one-shot, which others wait to complete,
//! is exercised by theirs). Variables are interpolated as Compose does
//! (`${VAR:-default}`, from the environment, then the `.env` beside the file). What
//! has no equivalent is listed in a comment at the top.
//!
//! Here: the entry ([`from_compose`], which reads the file's top level) and the project
//! name. The rest is in files named after their job: `read` (files from disk, env
//! files), `interpolate` (`${VAR}`), `values` (scalars, durations), `paths` (host
//! paths), `state` (one import's state and what its readers share), `service`,
//! `build`, `develop`, `environment`, `ports`, `volumes` and `health` (a service's
//! keys), and `write` (the TOML text).

mod build;
mod develop;
mod environment;
mod health;
mod interpolate;
mod paths;
mod ports;
mod read;
mod service;
mod state;
mod values;
mod volumes;
mod write;

pub use interpolate::{InterpolationError, interpolate};
pub use read::{MAX_BYTES, parse_env_file, read_bounded};
pub use values::duration_ms;

use super::{ImportError, Imported};
use read::read_dotenv;
use serde_yaml_ng::Value;
use state::Import;
use std::collections::BTreeSet;
use std::path::Path;
use values::scalar;
use write::write;

/// What to import.
pub struct ComposeInput<'a> {
    /// The file's text.
    pub text: &'a str,
    /// The file as named to the user (in messages and the header comment).
    pub file: &'a str,
    /// Its directory: relative bind mounts, build contexts, `develop.watch` paths,
    /// `env_file` and `.env` are found there.
    pub dir: &'a Path,
    /// The project name when the file has no `name` (Compose uses the directory's).
    pub project: &'a str,
    /// The environment variables interpolation reads before `.env`.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The directory the test definition will be written in: a relative bind mount or
    /// build context stays relative, to it (clnrm reads a relative `host_path` or
    /// `context` from its file's directory, as Compose does from its own).
    pub out_dir: &'a Path,
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
    // `name`, as Compose normalises a project name.
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
                    services.push(imp.service(&id, svc)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |n| owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    /// `yaml` as `/srv/shop/compose.yaml`, written to `/srv/shop/tests/`, with `TAG`
    /// and `HOME` set.
    pub(super) fn import(yaml: &str) -> Result<Imported, ImportError> {
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

    /// The output as a table, after clnrm's own reader took it without an error.
    pub(super) fn read(toml: &str) -> toml::Table {
        let src = crate::diag::Source::file("imported.clnrm.toml", toml);
        let (_, diags) = crate::model::parse_test_file(&src);
        assert!(!diags.has_errors(), "{diags:?}\n{toml}");
        toml.parse().unwrap_or_else(|e| panic!("{e}\n{toml}"))
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
      - {type: tmpfs, target: /var/lib/scratch, tmpfs: {size: 1048576, mode: 0o1777}}
      - {type: tmpfs, target: /var/cache/app, read_only: true, tmpfs: {mode: 0o755}}
    tmpfs: /run
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
        // `type: tmpfs` volumes (with their size and mode) and `tmpfs` itself.
        let tmpfs: Vec<&str> = db["tmpfs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(toml::Value::as_str)
            .collect();
        assert_eq!(
            tmpfs,
            [
                "/var/lib/scratch:size=1048576,mode=1777",
                "/var/cache/app:mode=755,ro",
                "/run"
            ]
        );
        let web = &v["service"]["web"];
        assert_eq!(web.get("image"), None);
        assert_eq!(web["build"].as_str(), Some(".."));
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
        assert_eq!(v["meta"]["name"].as_str(), Some("myapp"));
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
}
