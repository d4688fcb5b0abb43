//! Digests as text: bytes as lower-case hex (one table look-up per nibble rather than
//! a formatter per byte: it is on the path of every cache lookup), the SHA-256 key of
//! named parts, and a part as the cache keeps it.

use sha2::{Digest, Sha256};

/// `bytes` as lower-case hex, two characters a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// How many characters of a key part an entry keeps.
pub const PART_LEN: usize = 16;

/// A key: SHA-256 over the parts, each length-prefixed.
pub fn key<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

/// `value` as an entry keeps it: without a `sha256:` prefix, at most [`PART_LEN`]
/// characters.
pub fn short(value: &str) -> String {
    let v = value.strip_prefix("sha256:").unwrap_or(value);
    v.chars().take(PART_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn every_byte_is_two_lower_case_digits_as_the_formatter_writes_them() {
        let all: Vec<u8> = (0..=255).collect();
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), formatted);
        assert_eq!(hex(&[]), "");
    }
}
