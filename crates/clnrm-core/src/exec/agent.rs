//! The in-container agent: a POSIX shell that is the container's main process and
//! reads commands from its stdin. Running a step is one write and a few reads on an
//! open connection (about a millisecond) instead of an engine exec (tens of
//! milliseconds). Each command runs in a subshell with stdin from `/dev/null`, its
//! argv single-quoted so that it reaches the program exactly as written; markers
//! with a per-agent nonce end its stdout and stderr and carry its exit code.
//! When clnrm dies, the connection closes, the shell reads end-of-file and the
//! container stops by itself.

use crate::backend::{Attached, Chunk, EngineError, ExecOutput};
use futures_util::StreamExt;
use std::hash::{BuildHasher, RandomState};
use tokio::io::AsyncWriteExt;

/// Why the agent could not run a command.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The shell's output ended: the container's main process is gone.
    #[error("the container's main process exited")]
    Died,
    /// Writing to the shell failed.
    #[error("could not write to the container: {0}")]
    Write(String),
    /// The engine stream failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A check of clnrm's did not finish in time (a stopped shell, a stalled engine).
    #[error("the shell did not answer within {}", crate::backend::seconds(*.0))]
    Timeout(std::time::Duration),
}

/// A shell in a container, driven over its attached stdin and stdout.
pub struct Agent {
    conn: Attached,
    nonce: String,
    seq: u64,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("seq", &self.seq).finish()
    }
}

/// Quotes a word for a POSIX shell.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `word` as a reader should see it in a report: [`quote`]d, except that control
/// characters (a newline in a `sh -c` script) are written as `$'...'` escapes, so a
/// command stays on one line.
pub fn quote_for_display(word: &str) -> String {
    if !word.chars().any(char::is_control) {
        return quote(word);
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c) & 0xff)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The shell line that runs `argv` with `env` in `workdir`.
pub fn command_line(argv: &[String], env: &[(String, String)], workdir: Option<&str>) -> String {
    let mut line = String::from("(");
    if let Some(dir) = workdir {
        line.push_str(&format!("cd -- {} || exit 126; ", quote(dir)));
    }
    for (k, v) in env {
        line.push_str(&format!("export {}; ", quote(&format!("{k}={v}"))));
    }
    line.push_str("exec");
    for a in argv {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line.push_str(") </dev/null");
    line
}

impl Agent {
    /// Wraps a connection to a shell.
    pub fn new(conn: Attached) -> Self {
        let nonce = format!(
            "__clnrm_{:016x}__",
            RandomState::new().hash_one(std::process::id())
        );
        Self {
            conn,
            nonce,
            seq: 0,
        }
    }

    /// Runs `argv` and waits for it to end.
    pub async fn run(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        workdir: Option<&str>,
    ) -> Result<ExecOutput, AgentError> {
        self.script(&command_line(argv, env, workdir)).await
    }

    /// Runs a shell snippet in a subshell-free context and waits for it (for checks).
    pub async fn script(&mut self, snippet: &str) -> Result<ExecOutput, AgentError> {
        self.seq += 1;
        let mark = format!("{}{}", self.nonce, self.seq);
        let line =
            format!("{snippet}\nprintf '\\n{mark} %d\\n' \"$?\"; printf '\\n{mark}\\n' >&2\n");
        self.conn
            .input
            .write_all(line.as_bytes())
            .await
            .map_err(|e| AgentError::Write(e.to_string()))?;
        self.conn
            .input
            .flush()
            .await
            .map_err(|e| AgentError::Write(e.to_string()))?;
        self.collect(&mark).await
    }

    /// Runs one of clnrm's own checks, which must answer within `limit`. After a
    /// timeout the connection is out of step: the agent must not be used again.
    pub async fn check(
        &mut self,
        snippet: &str,
        limit: std::time::Duration,
    ) -> Result<ExecOutput, AgentError> {
        tokio::time::timeout(limit, self.script(snippet))
            .await
            .unwrap_or(Err(AgentError::Timeout(limit)))
    }

    async fn collect(&mut self, mark: &str) -> Result<ExecOutput, AgentError> {
        let out_end = format!("\n{mark} ");
        let err_end = format!("\n{mark}\n");
        let mut stdout = Capture::default();
        let mut stderr = Capture::default();
        let mut code = None;
        let mut err_done = false;
        while code.is_none() || !err_done {
            match self.conn.output.next().await {
                None => return Err(AgentError::Died),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Chunk::Stdout(b))) => {
                    stdout.push(&b);
                    if code.is_none() {
                        code = stdout.take_exit_marker(&out_end);
                    }
                }
                Some(Ok(Chunk::Stderr(b))) => {
                    stderr.push(&b);
                    if !err_done && stderr.bytes.ends_with(err_end.as_bytes()) {
                        let keep = stderr.bytes.len() - err_end.len();
                        stderr.bytes.truncate(keep);
                        err_done = true;
                    }
                }
            }
        }
        Ok(ExecOutput {
            exit_code: code.unwrap_or(-1),
            stdout: stdout.bytes,
            stderr: stderr.bytes,
        })
    }
}

/// One stream's bytes, capped.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
}

impl Capture {
    fn push(&mut self, b: &[u8]) {
        crate::backend::push_capped(&mut self.bytes, b);
    }

    /// If the buffer ends with `<end><code>\n`, removes that and returns the code.
    fn take_exit_marker(&mut self, end: &str) -> Option<i64> {
        if self.bytes.last() != Some(&b'\n') {
            return None;
        }
        let window_start = self.bytes.len().saturating_sub(end.len() + 24);
        let window = &self.bytes[window_start..];
        let at = find_last(window, end.as_bytes())?;
        let digits = &window[at + end.len()..window.len() - 1];
        let code = std::str::from_utf8(digits).ok()?.parse().ok()?;
        self.bytes.truncate(window_start + at);
        Some(code)
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    (0..=hay.len().checked_sub(needle.len())?)
        .rev()
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_displayed_command_stays_on_one_line() {
        assert_eq!(quote_for_display("echo"), "echo");
        assert_eq!(quote_for_display("a b"), "'a b'");
        assert_eq!(
            quote_for_display("set -e\necho 'hi'\n"),
            "$'set -e\\necho \\'hi\\'\\n'"
        );
    }
    use bytes::Bytes;
    use futures_util::stream;

    fn fake(chunks: Vec<Chunk>) -> Attached {
        Attached {
            input: Box::pin(tokio::io::sink()),
            output: stream::iter(chunks.into_iter().map(Ok)).boxed(),
        }
    }

    #[test]
    fn quoting_keeps_every_byte() {
        assert_eq!(quote("plain-word_1.txt"), "plain-word_1.txt");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a b\n$HOME"), "'a b\n$HOME'");
    }

    #[test]
    fn command_line_runs_in_a_subshell_with_env_and_workdir() {
        let line = command_line(
            &["echo".into(), "a b".into()],
            &[("K".into(), "v w".into())],
            Some("/tmp"),
        );
        assert_eq!(
            line,
            "(cd -- /tmp || exit 126; export 'K=v w'; exec echo 'a b') </dev/null"
        );
    }

    #[tokio::test]
    async fn markers_split_output_and_carry_the_exit_code() {
        let mut agent = Agent::new(fake(vec![]));
        agent.nonce = "N".into();
        agent.conn = fake(vec![
            Chunk::Stdout(Bytes::from_static(b"hello")),
            Chunk::Stderr(Bytes::from_static(b"warn\n\nN1\n")),
            Chunk::Stdout(Bytes::from_static(b"\nN1 3\n")),
        ]);
        let out = agent.script("true").await.unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"warn\n");
        assert_eq!(out.exit_code, 3);
    }

    #[tokio::test]
    async fn a_closed_stream_means_the_shell_died() {
        let mut agent = Agent::new(fake(vec![Chunk::Stdout(Bytes::from_static(b"x"))]));
        assert!(matches!(agent.script("true").await, Err(AgentError::Died)));
    }
}
