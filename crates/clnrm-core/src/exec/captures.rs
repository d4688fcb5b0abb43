//! What a scenario's steps capture (SPEC §7.4), and `${name}` in the steps after them.

use super::events::Answer;
use crate::backend::ExecOutput;
use crate::plan::{CaptureHow, HttpBody, Masker, PlannedStep, is_secret_key};
use crate::subst::{SubstError, substitute};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Why a step's captures could not be taken, or its `${name}` resolved.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A `${name}` that no earlier step captured.
    #[error(transparent)]
    Subst(#[from] SubstError),
    /// The output or answer has nothing where the capture looks (a missing header).
    #[error("capture \"{name}\": the answer has no {from}")]
    NoSource {
        /// The capture's name.
        name: String,
        /// Where it looks (`stdout`, `body`, `header:<name>`).
        from: String,
    },
    /// A `json` capture's text is not JSON.
    #[error("capture \"{name}\": {from} is not JSON ({source})")]
    NotJson {
        /// The capture's name.
        name: String,
        /// Where it looks.
        from: String,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A `regex` capture's expression matched nothing.
    #[error("capture \"{name}\": /{pattern}/ matched nothing in {from}")]
    RegexMissed {
        /// The capture's name.
        name: String,
        /// The expression as written.
        pattern: String,
        /// Where it looks.
        from: String,
    },
    /// A `json` capture's query selected nothing.
    #[error("capture \"{name}\": {query} selected nothing in {from}")]
    JsonMissed {
        /// The capture's name.
        name: String,
        /// The JSONPath query as written.
        query: String,
        /// Where it looks.
        from: String,
    },
}

/// The values captured so far in one scenario, and the masker that hides the secret
/// ones (a capture whose name looks secret, as an env key would) from then on.
#[derive(Clone, Debug)]
pub struct Captured {
    values: BTreeMap<String, String>,
    /// The file's secrets plus the secret captures.
    pub masker: Masker,
}

impl Captured {
    /// Nothing captured yet; secrets as `masker` knows them.
    pub fn new(masker: &Masker) -> Self {
        Self {
            values: BTreeMap::new(),
            masker: masker.clone(),
        }
    }

    /// `step` with `${name}` in its command, env values and workdir replaced (and
    /// `$${` made `${`); the error names a capture nobody made (the validator refuses
    /// those, so only a step that did not run can leave one missing).
    pub fn resolve<'s>(&self, step: &'s PlannedStep) -> Result<Cow<'s, PlannedStep>, CaptureError> {
        let has = |t: &str| t.contains('$');
        let any = step.argv.iter().any(|a| has(a))
            || step.env.iter().any(|(_, v)| has(v))
            || step.workdir.as_deref().is_some_and(has)
            || step.http.as_ref().is_some_and(|h| {
                has(h.url.as_str())
                    || h.headers.iter().any(|(_, v)| has(v))
                    || match &h.body {
                        Some(HttpBody::Text(t)) => has(t),
                        // A JSON body's strings, escaped or not, keep their `$`.
                        Some(HttpBody::Json(j)) => has(&j.to_string()),
                        None => false,
                    }
            })
            || step.grpc.as_ref().is_some_and(|g| {
                has(&g.target) || g.metadata.iter().any(|(_, v)| has(v)) || has(&g.json.to_string())
            });
        if !any {
            return Ok(Cow::Borrowed(step));
        }
        let get = |name: &str| self.values.get(name).map(String::as_str);
        let one = |t: &str| substitute(t, get);
        let mut owned = step.clone();
        for a in &mut owned.argv {
            *a = one(a)?;
        }
        for (_, v) in &mut owned.env {
            *v = one(v)?;
        }
        if let Some(w) = &mut owned.workdir {
            *w = one(w)?;
        }
        if let Some(g) = &mut owned.grpc {
            g.target = one(&g.target)?;
            for (_, v) in &mut g.metadata {
                *v = one(v)?;
            }
            resolve_json(&mut g.json, &one)?;
        }
        if let Some(h) = &mut owned.http {
            h.url = h.url.substituted(one)?;
            for (_, v) in &mut h.headers {
                *v = one(v)?;
            }
            match &mut h.body {
                Some(HttpBody::Text(t)) => *t = one(t)?,
                Some(HttpBody::Json(j)) => resolve_json(j, &one)?,
                None => {}
            }
        }
        Ok(Cow::Owned(owned))
    }

    /// Takes `step`'s captures from what a command printed.
    pub fn take(&mut self, step: &PlannedStep, out: &ExecOutput) -> Result<(), CaptureError> {
        self.take_from(step, |from| {
            let bytes = if from == "stderr" {
                &out.stderr
            } else {
                &out.stdout
            };
            Some(String::from_utf8_lossy(bytes).into_owned())
        })
    }

    /// Takes `step`'s captures from an HTTP answer: its `body` or a `header:<name>`.
    pub fn take_http(&mut self, step: &PlannedStep, answer: &Answer) -> Result<(), CaptureError> {
        self.take_from(step, |from| match from.strip_prefix("header:") {
            Some(name) => answer.header(name).map(str::to_owned),
            None => Some(String::from_utf8_lossy(&answer.body).into_owned()),
        })
    }

    /// Takes `step`'s captures from the texts `source` gives by name; the error says
    /// which capture found nothing, and where it looked.
    fn take_from(
        &mut self,
        step: &PlannedStep,
        source: impl Fn(&str) -> Option<String>,
    ) -> Result<(), CaptureError> {
        for c in &step.captures {
            let Some(text) = source(&c.from) else {
                return Err(CaptureError::NoSource {
                    name: c.name.clone(),
                    from: c.from.clone(),
                });
            };
            let value = match &c.how {
                CaptureHow::Regex(re) => re
                    .captures(&text)
                    .and_then(|m| m.get(1).or_else(|| m.get(0)).map(|g| g.as_str().to_owned())),
                CaptureHow::Json(query) => {
                    let doc: serde_json::Value =
                        serde_json::from_str(text.trim()).map_err(|source| {
                            CaptureError::NotJson {
                                name: c.name.clone(),
                                from: c.from.clone(),
                                source,
                            }
                        })?;
                    query.select(&doc).first().map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }
            };
            let Some(value) = value else {
                let (name, from) = (c.name.clone(), c.from.clone());
                return Err(match &c.how {
                    CaptureHow::Regex(re) => CaptureError::RegexMissed {
                        name,
                        pattern: re.as_str().to_owned(),
                        from,
                    },
                    CaptureHow::Json(q) => CaptureError::JsonMissed {
                        name,
                        query: q.as_str().to_owned(),
                        from,
                    },
                });
            };
            if is_secret_key(&c.name) && !value.is_empty() {
                self.masker = self.masker.with(&value);
            }
            self.values.insert(c.name.clone(), value);
        }
        Ok(())
    }
}

/// `${name}` resolved in every string of a JSON body.
fn resolve_json(
    v: &mut serde_json::Value,
    one: &impl Fn(&str) -> Result<String, SubstError>,
) -> Result<(), SubstError> {
    match v {
        serde_json::Value::String(s) => *s = one(s)?,
        serde_json::Value::Array(items) => {
            for i in items {
                resolve_json(i, one)?;
            }
        }
        serde_json::Value::Object(map) => {
            for i in map.values_mut() {
                resolve_json(i, one)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_errors_say_which_capture_and_where_it_looked() {
        let (name, from) = ("n".to_owned(), "stdout".to_owned());
        let missed = CaptureError::RegexMissed {
            name: name.clone(),
            pattern: r"n=(\d+)".into(),
            from: from.clone(),
        };
        assert_eq!(
            missed.to_string(),
            r#"capture "n": /n=(\d+)/ matched nothing in stdout"#
        );
        let missed = CaptureError::JsonMissed {
            name: name.clone(),
            query: "$.id".into(),
            from: "body".into(),
        };
        assert_eq!(
            missed.to_string(),
            r#"capture "n": $.id selected nothing in body"#
        );
        let none = CaptureError::NoSource {
            name: name.clone(),
            from: "header:x-id".into(),
        };
        assert_eq!(
            none.to_string(),
            r#"capture "n": the answer has no header:x-id"#
        );
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let inner = source.to_string();
        let bad = CaptureError::NotJson { name, from, source };
        assert_eq!(
            bad.to_string(),
            format!(r#"capture "n": stdout is not JSON ({inner})"#)
        );
    }
}
