//! Compose values read as text: a scalar, a value in brief for a comment, a Go
//! duration in milliseconds.

use crate::import::toml_text as t;
use serde_yaml_ng::Value;

/// A scalar as text (strings, numbers and booleans; not null).
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value as one short line for a comment.
pub(super) fn brief(v: &Value) -> String {
    let text = match v {
        Value::String(s) => t::string(s),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
}

/// A Go duration (`1m30s`, `500ms`, `2h`) in milliseconds, rounded up.
pub fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut total_ns = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += n * scale;
        rest = &rest[unit_len..];
    }
    // TOML integers are i64.
    let ms = (total_ns / 1e6).ceil();
    (ms.is_finite() && ms <= i64::MAX as f64).then_some(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_go_durations() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1.5s"), Some(1_500));
        assert_eq!(duration_ms("1h"), Some(3_600_000));
        assert_eq!(duration_ms("100us"), Some(1));
        assert_eq!(duration_ms("0"), Some(0));
        assert_eq!(duration_ms("10"), None);
        assert_eq!(duration_ms("10 parsecs"), None);
        assert_eq!(duration_ms(""), None);
    }
}
