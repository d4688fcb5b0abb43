//! Template functions: `env`, `now_rfc3339`, `sha256`, `toml_encode`, `uuid`, `fake_*`.
//!
//! Functions that produce "random" or time-dependent values read per-file state
//! ([`RenderState`]): the seed from `[determinism].seed` (or a hash of the template, so
//! rendering is pure even without one) and the frozen clock. The engine resets that
//! state before each file, so output depends only on the input and the context.

use super::guard;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tera::{Error, Result, Tera, Value};

/// Per-render state shared by the seeded functions.
#[derive(Debug, Default)]
pub struct RenderState {
    rng: u64,
    frozen_clock: Option<String>,
    /// Macro calls and includes entered and not yet left (see [`super::guard`]).
    depth: usize,
}

impl RenderState {
    /// Resets the generator to `seed` and the clock to `frozen`.
    pub fn reset(&mut self, seed: u64, frozen: Option<String>) {
        self.rng = seed;
        self.frozen_clock = frozen;
        self.depth = 0;
    }

    /// splitmix64: tiny, fast, and the same on every platform.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Shared handle to the state.
pub type SharedState = Arc<Mutex<RenderState>>;

const FIRST: &[&str] = &[
    "Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Edsger", "Margaret", "Dennis", "Radia",
];
const LAST: &[&str] = &[
    "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Dijkstra", "Hamilton",
    "Ritchie", "Perlman",
];
const WORDS: &[&str] = &[
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "garnet", "harbor", "iris", "juniper",
    "kelp", "lumen",
];
const COMPANIES: &[&str] = &["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"];
const CITIES: &[&str] = &["Lisbon", "Oslo", "Quito", "Nairobi", "Osaka", "Perth"];

fn lock(state: &SharedState) -> std::sync::MutexGuard<'_, RenderState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn str_arg<'a>(
    args: &'a HashMap<String, Value>,
    fname: &str,
    key: &str,
) -> Result<Option<&'a str>> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::msg(format!(
            "{fname}(): `{key}` must be a string, found {other}"
        ))),
    }
}

fn int_arg(args: &HashMap<String, Value>, fname: &str, key: &str, default: i64) -> Result<i64> {
    match args.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| Error::msg(format!("{fname}(): `{key}` must be an integer, found {v}"))),
    }
}

/// Formats 16 bytes as an RFC 4122 version-4 UUID.
fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::digest::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// SHA-256 of `s` as lower-case hex.
pub fn sha256_hex(s: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(s))
}

/// Encodes a JSON-like value as an inline TOML value.
pub fn toml_encode(value: &Value) -> Result<String> {
    Ok(match value {
        Value::Null => return Err(Error::msg("toml_encode(): TOML has no null")),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Array(items) => {
            let parts: Result<Vec<String>> = items.iter().map(toml_encode).collect();
            format!("[{}]", parts?.join(", "))
        }
        Value::Object(map) => {
            let parts: Result<Vec<String>> = map
                .iter()
                .map(|(k, v)| Ok(format!("{} = {}", toml_key(k), toml_encode(v)?)))
                .collect();
            let parts = parts?;
            if parts.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
    })
}

/// A map, or a list of `"key=value"` strings, as a map (values stay strings).
pub fn as_table(v: &Value) -> Result<Value> {
    match v {
        Value::Object(_) => Ok(v.clone()),
        Value::Array(items) => {
            let mut map = serde_json::Map::new();
            for item in items {
                let pair = item.as_str().and_then(|s| s.split_once('='));
                let Some((k, val)) = pair else {
                    return Err(Error::msg(format!(
                        "toml_table(): expected \"key=value\", found {item}"
                    )));
                };
                map.insert(k.trim().to_owned(), Value::String(val.to_owned()));
            }
            Ok(Value::Object(map))
        }
        other => Err(Error::msg(format!(
            "toml_table(): expected a map or a list of \"key=value\", found {other}"
        ))),
    }
}

/// A list of `"a>b"` strings (or of two-element lists) as a list of pairs.
pub fn as_pairs(v: &Value) -> Result<Value> {
    let bad = |item: &Value| Error::msg(format!("toml_pairs(): expected \"a>b\", found {item}"));
    let Value::Array(items) = v else {
        return Err(bad(v));
    };
    let pairs: Result<Vec<Value>> = items
        .iter()
        .map(|item| match item {
            Value::String(s) => {
                let (a, b) = s.split_once('>').ok_or_else(|| bad(item))?;
                Ok(Value::Array(vec![
                    Value::from(a.trim()),
                    Value::from(b.trim()),
                ]))
            }
            Value::Array(p) if p.len() == 2 => Ok(item.clone()),
            _ => Err(bad(item)),
        })
        .collect();
    Ok(Value::Array(pairs?))
}

/// A TOML key, bare when possible, quoted otherwise.
pub fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

/// Registers every clnrm function on `tera`, sharing `state`.
pub fn register(tera: &mut Tera, state: &SharedState) {
    tera.register_function("env", |args: &HashMap<String, Value>| {
        let name =
            str_arg(args, "env", "name")?.ok_or_else(|| Error::msg("env(): missing `name`"))?;
        if super::untrusted() {
            return Err(Error::msg(
                "env() is not available here: this server runs uploaded projects, which may not read its environment",
            ));
        }
        match std::env::var(name) {
            Ok(v) => Ok(Value::String(v)),
            Err(_) => match args.get("default") {
                Some(d) => Ok(d.clone()),
                None => Err(Error::msg(format!(
                    "environment variable `{name}` is not set and env() has no `default`"
                ))),
            },
        }
    });
    tera.register_function("sha256", |args: &HashMap<String, Value>| {
        let s = match args.get("s") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(Error::msg("sha256(): missing `s`")),
        };
        Ok(Value::String(sha256_hex(s.as_bytes())))
    });
    tera.register_function("toml_encode", |args: &HashMap<String, Value>| {
        let v = args
            .get("value")
            .ok_or_else(|| Error::msg("toml_encode(): missing `value`"))?;
        toml_encode(v).map(Value::String)
    });
    tera.register_function("toml_table", |args: &HashMap<String, Value>| {
        let v = args
            .get("value")
            .ok_or_else(|| Error::msg("toml_table(): missing `value`"))?;
        toml_encode(&as_table(v)?).map(Value::String)
    });
    tera.register_function("toml_pairs", |args: &HashMap<String, Value>| {
        let v = args
            .get("value")
            .ok_or_else(|| Error::msg("toml_pairs(): missing `value`"))?;
        toml_encode(&as_pairs(v)?).map(Value::String)
    });
    let s = state.clone();
    tera.register_function("now_rfc3339", move |_: &HashMap<String, Value>| {
        if let Some(frozen) = &lock(&s).frozen_clock {
            return Ok(Value::String(frozen.clone()));
        }
        let now = time::OffsetDateTime::now_utc();
        now.format(&time::format_description::well_known::Rfc3339)
            .map(Value::String)
            .map_err(|e| Error::msg(format!("now_rfc3339(): {e}")))
    });
    let s = state.clone();
    tera.register_function("uuid", move |args: &HashMap<String, Value>| {
        let bytes: [u8; 16] = match str_arg(args, "uuid", "seed")? {
            Some(seed) => {
                let digest = Sha256::digest(seed.as_bytes());
                let mut b = [0u8; 16];
                b.copy_from_slice(&digest[..16]);
                b
            }
            None => {
                let mut st = lock(&s);
                let (a, b) = (st.next().to_le_bytes(), st.next().to_le_bytes());
                let mut out = [0u8; 16];
                out[..8].copy_from_slice(&a);
                out[8..].copy_from_slice(&b);
                out
            }
        };
        Ok(Value::String(format_uuid(bytes)))
    });
    register_fakes(tera, state);
    register_guard(tera, state);
}

/// The depth counter of [`super::guard`].
fn register_guard(tera: &mut Tera, state: &SharedState) {
    let s = state.clone();
    tera.register_function(guard::ENTER, move |args: &HashMap<String, Value>| {
        let mut st = lock(&s);
        st.depth += 1;
        if st.depth <= guard::MAX_DEPTH && guard::stack_left() {
            return Ok(Value::String(String::new()));
        }
        let (kind, name) = args.iter().next().map_or(("template", ""), |(k, v)| {
            (k.as_str(), v.as_str().unwrap_or(""))
        });
        Err(Error::msg(guard::too_deep(kind, name, st.depth)))
    });
    let s = state.clone();
    tera.register_function(guard::LEAVE, move |_: &HashMap<String, Value>| {
        let mut st = lock(&s);
        st.depth = st.depth.saturating_sub(1);
        Ok(Value::String(String::new()))
    });
}

fn register_fakes(tera: &mut Tera, state: &SharedState) {
    let pickers: [(&str, &'static [&'static str]); 6] = [
        ("fake_first_name", FIRST),
        ("fake_last_name", LAST),
        ("fake_word", WORDS),
        ("fake_company", COMPANIES),
        ("fake_city", CITIES),
        (
            "fake_color",
            &["red", "green", "blue", "amber", "violet", "teal"],
        ),
    ];
    for (name, list) in pickers {
        let s = state.clone();
        tera.register_function(name, move |_: &HashMap<String, Value>| {
            Ok(Value::String(lock(&s).pick(list).to_owned()))
        });
    }
    let s = state.clone();
    tera.register_function("fake_name", move |_: &HashMap<String, Value>| {
        let mut st = lock(&s);
        Ok(Value::String(format!(
            "{} {}",
            st.pick(FIRST),
            st.pick(LAST)
        )))
    });
    let s = state.clone();
    tera.register_function("fake_email", move |_: &HashMap<String, Value>| {
        let mut st = lock(&s);
        let (first, last, n) = (st.pick(FIRST), st.pick(LAST), st.below(1000));
        Ok(Value::String(format!(
            "{}.{}{n}@example.test",
            first.to_lowercase(),
            last.to_lowercase()
        )))
    });
    let s = state.clone();
    tera.register_function("fake_int", move |args: &HashMap<String, Value>| {
        let min = int_arg(args, "fake_int", "min", 0)?;
        let max = int_arg(args, "fake_int", "max", 1000)?;
        if min > max {
            return Err(Error::msg(format!(
                "fake_int(): min {min} is above max {max}"
            )));
        }
        let span = (max - min) as u64 + 1;
        Ok(Value::from(min + lock(&s).below(span) as i64))
    });
    let s = state.clone();
    tera.register_function("fake_bool", move |_: &HashMap<String, Value>| {
        Ok(Value::Bool(lock(&s).below(2) == 1))
    });
    let s = state.clone();
    tera.register_function("fake_ipv4", move |_: &HashMap<String, Value>| {
        let mut st = lock(&s);
        Ok(Value::String(format!(
            "10.{}.{}.{}",
            st.below(256),
            st.below(256),
            1 + st.below(254)
        )))
    });
    let s = state.clone();
    tera.register_function("fake_port", move |_: &HashMap<String, Value>| {
        Ok(Value::from(1024 + lock(&s).below(64511)))
    });
    let s = state.clone();
    tera.register_function("fake_hex", move |args: &HashMap<String, Value>| {
        let len = int_arg(args, "fake_hex", "len", 16)?.clamp(0, 4096) as usize;
        let mut st = lock(&s);
        Ok(Value::String(
            (0..len).map(|_| format!("{:x}", st.below(16))).collect(),
        ))
    });
    let s = state.clone();
    tera.register_function("fake_sentence", move |args: &HashMap<String, Value>| {
        let n = int_arg(args, "fake_sentence", "words", 6)?.clamp(1, 100);
        let mut st = lock(&s);
        let words: Vec<&str> = (0..n).map(|_| st.pick(WORDS)).collect();
        Ok(Value::String(format!("{}.", words.join(" "))))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toml_encode_quotes_strings_and_keys() {
        let v = json!({"a b": "x\"y", "n": [1, true]});
        let encoded = toml_encode(&v).unwrap_or_default();
        assert_eq!(encoded, r#"{ "a b" = 'x"y', n = [1, true] }"#);
        let parsed: std::result::Result<toml::Table, _> = toml::from_str(&format!("k = {encoded}"));
        assert!(parsed.is_ok());
    }

    #[test]
    fn seeded_generator_repeats() {
        let mut a = RenderState::default();
        let mut b = RenderState::default();
        a.reset(7, None);
        b.reset(7, None);
        assert_eq!((a.next(), a.next()), (b.next(), b.next()));
    }

    #[test]
    fn uuid_has_version_and_variant_bits() {
        let u = format_uuid([0xff; 16]);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
