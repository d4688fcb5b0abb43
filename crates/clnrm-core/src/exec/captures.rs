//! What a scenario's steps capture (SPEC §7.4), and `${name}` in the steps after them.

use crate::backend::ExecOutput;
use crate::plan::{CaptureHow, Masker, PlannedStep, is_secret_key};
use crate::subst::substitute;
use std::borrow::Cow;
use std::collections::BTreeMap;

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
    pub fn resolve<'s>(&self, step: &'s PlannedStep) -> Result<Cow<'s, PlannedStep>, String> {
        let has = |t: &str| t.contains('$');
        let any = step.argv.iter().any(|a| has(a))
            || step.env.iter().any(|(_, v)| has(v))
            || step.workdir.as_deref().is_some_and(has);
        if !any {
            return Ok(Cow::Borrowed(step));
        }
        let get = |name: &str| self.values.get(name).map(String::as_str);
        let one = |t: &str| {
            substitute(t, get).map_err(|name| {
                format!("`${{{name}}}` is not captured (the step that captures it did not run)")
            })
        };
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
        Ok(Cow::Owned(owned))
    }

    /// Takes `step`'s captures from what it printed; the error says which capture
    /// found nothing, and where it looked.
    pub fn take(&mut self, step: &PlannedStep, out: &ExecOutput) -> Result<(), String> {
        for c in &step.captures {
            let text = String::from_utf8_lossy(if c.from == "stderr" {
                &out.stderr
            } else {
                &out.stdout
            });
            let value = match &c.how {
                CaptureHow::Regex(re) => re
                    .captures(&text)
                    .and_then(|m| m.get(1).or_else(|| m.get(0)).map(|g| g.as_str().to_owned())),
                CaptureHow::Json(query) => {
                    let doc: serde_json::Value =
                        serde_json::from_str(text.trim()).map_err(|e| {
                            format!("capture \"{}\": {} is not JSON ({e})", c.name, c.from)
                        })?;
                    query.select(&doc).first().map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }
            };
            let Some(value) = value else {
                let what = match &c.how {
                    CaptureHow::Regex(re) => format!("/{}/ matched nothing", re.as_str()),
                    CaptureHow::Json(q) => format!("{} selected nothing", q.as_str()),
                };
                return Err(format!("capture \"{}\": {what} in {}", c.name, c.from));
            };
            if is_secret_key(&c.name) && !value.is_empty() {
                self.masker = self.masker.with(&value);
            }
            self.values.insert(c.name.clone(), value);
        }
        Ok(())
    }
}
