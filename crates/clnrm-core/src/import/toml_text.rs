//! Writing TOML text by hand, so that the imported file reads like one a person wrote
//! (inline tables where they are short, keys in the source's order, comments).

/// `s` as a one-line TOML basic string (also valid as a quoted key).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `k` as a TOML key: bare when it can be.
pub fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { k.to_owned() } else { string(k) }
}

/// A list of strings.
pub fn strings(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// An inline table of already-written values.
pub fn inline(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "{}".to_owned();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {v}", key(k)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// The width comment lines are wrapped at (a longer word stays whole).
const WIDTH: usize = 88;

/// `text` as comment lines (`# …`), wrapped at spaces; a wrapped `- ` item's next
/// lines are indented under its text.
pub fn comment(text: &str) -> String {
    let mut out = String::new();
    // TOML allows no control character but tab in a comment.
    let text: String = text
        .chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() && c != '\t' && c != '\n' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect();
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("#\n");
            continue;
        }
        let indent = if line.starts_with("- ") { "  " } else { "" };
        let mut cur = String::from("#");
        for (i, word) in line.split(' ').enumerate() {
            if i > 0 && cur.len() + 1 + word.len() > WIDTH {
                out.push_str(&cur);
                out.push('\n');
                cur = format!("# {indent}{word}");
            } else {
                cur.push(' ');
                cur.push_str(word);
            }
        }
        out.push_str(&cur);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key("db"), "db");
        assert_eq!(key("my-app_2"), "my-app_2");
        assert_eq!(key("app.v2"), "\"app.v2\"");
        assert_eq!(key(""), "\"\"");
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        let nasty = "a \"quoted\" \\ path\nwith a newline\t and ${VAR}";
        let text = format!("k = {}\nl = {}", string(nasty), strings(&[nasty.into()]));
        let v: toml::Table = text.parse().unwrap();
        assert_eq!(v["k"].as_str(), Some(nasty));
        assert_eq!(v["l"][0].as_str(), Some(nasty));
    }

    #[test]
    fn comments_cover_every_line_and_wrap_at_spaces() {
        assert_eq!(comment("a\n\nb"), "# a\n#\n# b\n");
        let long = format!("- {} {}", "x".repeat(60), "y".repeat(40));
        let want = format!("# - {}\n#   {}\n", "x".repeat(60), "y".repeat(40));
        assert_eq!(comment(&long), want);
        assert_eq!(comment("a\rb\u{7f}c"), "# a\\rb\\u{7f}c\n");
        let word = "z".repeat(100);
        assert_eq!(comment(&word), format!("# {word}\n"));
    }
}
