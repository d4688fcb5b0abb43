//! Secret masking: the values of environment keys that look secret (`*TOKEN*`,
//! `*PASSWORD*`, `*SECRET*`, `*KEY*`, any case) are replaced by `***` in everything
//! clnrm prints or writes about a scenario. A file's secrets are its services' and
//! steps' secret-looking environment values and its credential-carrying OTLP headers.

use crate::model::TestFile;

/// Replaces known secret values in text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Masker {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<String>,
}

pub use crate::model::MASK;

/// Whether an environment key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "SECRET", "KEY"]
        .iter()
        .any(|w| upper.contains(w))
}

impl Masker {
    /// A masker for the secret-looking pairs among `env`.
    pub fn from_env<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut values: Vec<String> = env
            .into_iter()
            .filter(|(k, v)| is_secret_key(k) && !v.is_empty())
            .map(|(_, v)| v.to_owned())
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self { values }
    }

    /// This masker, also masking `value`.
    pub fn with(&self, value: &str) -> Self {
        let mut values = self.values.clone();
        values.push(value.to_owned());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self { values }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// `text` with every secret value masked, or `None` when it holds none.
    pub fn mask_if_needed(&self, text: &str) -> Option<String> {
        self.values
            .iter()
            .any(|v| text.contains(v.as_str()))
            .then(|| self.mask(text))
    }

    /// Masks the value of `KEY=VALUE` when the key looks secret, and any secret inside.
    pub fn mask_assignment(&self, key: &str, value: &str) -> String {
        if is_secret_key(key) && !value.is_empty() {
            format!("{key}={MASK}")
        } else {
            format!("{key}={}", self.mask(value))
        }
    }
}

/// The secret values of `file`: its services' and steps' secret-looking environment
/// and build arguments, and the OTLP headers that carry credentials.
pub(super) fn file_masker(file: &TestFile) -> Masker {
    let service_env = file.services.iter().flat_map(|(_, s)| {
        s.env
            .iter()
            .chain(s.build.iter().flat_map(|b| b.args.iter()))
            .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
    });
    let step_env = file.scenarios.iter().flat_map(|sc| {
        sc.steps.iter().flat_map(|st| {
            st.env
                .iter()
                .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
        })
    });
    // OTLP headers that carry credentials (`authorization`, `x-api-key`, cookies).
    let headers = file.otel.iter().flat_map(|o| {
        o.headers
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                is_secret_key(&k) || k.contains("auth") || k.contains("cookie")
            })
            .map(|(_, v)| ("SECRET", v))
    });
    Masker::from_env(service_env.chain(step_env).chain(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_in_any_case() {
        for k in [
            "API_TOKEN",
            "db_password",
            "ClientSecret",
            "SSH_KEY",
            "keyring",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["PATH", "HOME", "USER", "MONKEY_BUSINESS_X"] {
            assert_eq!(is_secret_key(k), k.contains("KEY"), "{k}");
        }
    }

    #[test]
    fn every_occurrence_is_masked_longest_first() {
        let m = Masker::from_env([("TOKEN", "abc"), ("API_KEY", "abcdef"), ("HOME", "/root")]);
        assert_eq!(m.mask("abcdef and abc at /root"), "*** and *** at /root");
        assert_eq!(m.mask_assignment("API_KEY", "abcdef"), "API_KEY=***");
        assert_eq!(
            m.mask_assignment("URL", "http://u:abc@h"),
            "URL=http://u:***@h"
        );
    }

    #[test]
    fn empty_values_mask_nothing() {
        let m = Masker::from_env([("TOKEN", "")]);
        assert!(m.is_empty());
        assert_eq!(m.mask("text"), "text");
    }
}
