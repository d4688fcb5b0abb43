//! Splitting a `run` string into argv like a POSIX shell word list, without a shell:
//! single quotes are literal, double quotes allow `\"`, `\\`, `\$` and `` \` ``
//! escapes, a backslash outside quotes escapes the next character.

/// Why a command line cannot be split, and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitError {
    /// Byte offset of the problem (the opening quote, or the trailing backslash).
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Splits `line` into words.
pub fn split_words(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => cur.push(ch),
                        None => {
                            return Err(SplitError {
                                offset: i,
                                reason: "unclosed single quote",
                            });
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e @ ('"' | '\\' | '$' | '`'))) => cur.push(e),
                            Some((_, '\n')) => {}
                            Some((_, other)) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => {
                                return Err(SplitError {
                                    offset: i,
                                    reason: "unclosed double quote",
                                });
                            }
                        },
                        Some((_, ch)) => cur.push(ch),
                        None => {
                            return Err(SplitError {
                                offset: i,
                                reason: "unclosed double quote",
                            });
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, ch)) => cur.push(ch),
                    None => {
                        return Err(SplitError {
                            offset: i,
                            reason: "trailing backslash",
                        });
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_words(r#"sh -c 'echo "a b"' x\ y "q\"q""#),
            Ok(vec![
                "sh".into(),
                "-c".into(),
                "echo \"a b\"".into(),
                "x y".into(),
                "q\"q".into()
            ])
        );
        assert_eq!(split_words("  "), Ok(vec![]));
        assert_eq!(split_words("''"), Ok(vec![String::new()]));
    }

    #[test]
    fn reports_the_opening_quote() {
        assert_eq!(split_words("echo 'abc").map_err(|e| e.offset), Err(5));
        assert_eq!(
            split_words("echo \"abc").map_err(|e| e.reason),
            Err("unclosed double quote")
        );
        assert_eq!(
            split_words("echo \\").map_err(|e| e.reason),
            Err("trailing backslash")
        );
    }

    proptest! {
        #[test]
        fn quoting_each_word_round_trips(words in prop::collection::vec("[^']{0,8}", 0..6)) {
            let line: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            prop_assert_eq!(split_words(&line.join(" ")), Ok(words));
        }

        #[test]
        fn never_panics(line in ".{0,64}") {
            let _ = split_words(&line);
        }
    }
}
