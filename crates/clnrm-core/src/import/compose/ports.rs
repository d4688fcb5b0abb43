//! A service's `ports`: the container side of each, ranges expanded (bounded); host
//! ports and UDP are noted, as clnrm publishes TCP container ports on loopback.

use super::state::Import;
use super::values::scalar;
use crate::import::ImportError;
use serde_yaml_ng::Value;

/// The most container ports one range may expand to.
const MAX_RANGE: u32 = 64;

impl Import<'_> {
    /// `ports`: the container side of each (clnrm publishes them on random loopback
    /// ports); host ports and UDP are noted.
    pub(super) fn ports(
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
}
