//! One Compose service as a clnrm service: each of its keys kept or left behind (with
//! why), `environment` over `env_file`, `build` (and its `develop` rules) in place of
//! `image`, and `depends_on` with its conditions.

use super::build::Build;
use super::develop::WatchRule;
use super::health::Health;
use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::{Mapping, Value};

/// One imported service.
#[derive(Default)]
pub(super) struct Service {
    pub(super) id: String,
    /// `None` for a service built from source.
    pub(super) image: Option<String>,
    pub(super) build: Option<Build>,
    pub(super) develop: Vec<WatchRule>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) ports: Vec<u16>,
    pub(super) volumes: Vec<(String, String, bool)>,
    /// `tmpfs`, and volumes of `type: tmpfs`: `/path` or `/path:options`.
    pub(super) tmpfs: Vec<String>,
    pub(super) health: Option<Health>,
    pub(super) depends_on: Vec<(String, &'static str)>,
    pub(super) notes: Vec<String>,
}

impl Import<'_> {
    pub(super) fn service(&mut self, id: &str, v: &Value) -> Result<Service, ImportError> {
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
        let mut image = None;
        let mut build = None;
        let mut develop = None;
        for (k, v) in m {
            let key = scalar(k).unwrap_or_default();
            let path = format!("{base}.{key}");
            match key.as_str() {
                "image" => {
                    let name = scalar(v).ok_or_else(|| self.err(&path, "must be a string"))?;
                    image = Some((name, v));
                }
                "build" => build = Some(self.build(v, &path)?),
                "develop" => develop = Some(v),
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
                "volumes" => svc.volumes = self.volumes(v, &path, &mut svc.tmpfs)?,
                // A path, or a list of `/path[:options]` (as clnrm writes them).
                "tmpfs" => match v {
                    Value::Sequence(_) => svc.tmpfs.extend(self.words(v, &path)?),
                    _ => svc.tmpfs.push(
                        scalar(v).ok_or_else(|| self.err(&path, "must be a path or a list"))?,
                    ),
                },
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
        match (image, &build) {
            (None, None) => return Err(self.err(&base, "has neither `image` nor `build`")),
            // Compose tags what it builds with `image`; clnrm names its builds itself.
            (Some((_, v)), Some(_)) => self.skip(
                &format!("{base}.image"),
                v,
                "the tag of the image Compose builds: clnrm builds it and names it itself",
            ),
            (Some((name, _)), None) => svc.image = Some(name),
            (None, Some(_)) => {}
        }
        match (develop, &build) {
            (Some(v), Some(b)) => {
                svc.develop = self.develop(v, &format!("{base}.develop"), &b.dir)?
            }
            (Some(v), None) => self.skip(
                &format!("{base}.develop"),
                v,
                "develop rules are for a service built from source, and it has no `build`",
            ),
            (None, _) => {}
        }
        svc.build = build;
        Ok(svc)
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
