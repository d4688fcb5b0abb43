//! A service's `healthcheck` as a clnrm `health_check`: its `test` in each form, its
//! durations, and `start_period` counted as more retries.

use super::state::Import;
use super::values::{brief, duration_ms, scalar};
use crate::import::ImportError;
use serde_yaml_ng::Value;

pub(super) struct Health {
    pub(super) cmd: Vec<String>,
    pub(super) interval_ms: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) retries: Option<u64>,
}

impl Import<'_> {
    /// `healthcheck`: `test` in its three forms, `interval`, `timeout`, `retries`;
    /// `start_period` becomes more retries (clnrm counts every failed probe).
    pub(super) fn health(
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
}
