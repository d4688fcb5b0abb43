//! Output snapshots (SPEC §8): a step with `snapshot = true` compares its output
//! (stdout; an `http` step's body), masked and then redacted, with
//! `.clnrm/snapshots/<scenario id, sanitised>/<step, sanitised>.snap`. The file starts
//! with a header holding the content's SHA-256, so that a match is decided by hash
//! before anything is compared. A missing or different snapshot fails the step and
//! leaves the new output in `<step>.snap.new` for `clnrm snapshots review`;
//! `--update-snapshots` writes the `.snap` instead.

use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first line of every snapshot file.
const MAGIC: &str = "# clnrm snapshot v1";

/// The most a snapshot may hold, in bytes (a step's output is bounded far below).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The most lines of unified diff kept in a report.
const MAX_DIFF_LINES: usize = 200;

/// Redactions applied to an output before it is compared: each regex's matches
/// replaced (`$1` and `${name}` refer to groups), in order.
#[derive(Clone, Debug, Default)]
pub struct Redactions(pub Vec<(Regex, String)>);

impl Redactions {
    /// Applies every redaction to `text`.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (re, with) in &self.0 {
            if let std::borrow::Cow::Owned(s) = re.replace_all(&out, with.as_str()) {
                out = s;
            }
        }
        out
    }
}

impl Serialize for Redactions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(r, w)| (r.as_str(), w.as_str()))
            .collect();
        pairs.serialize(s)
    }
}

/// Where and how a step's output is checked.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    /// The `.snap` file.
    pub path: PathBuf,
    /// The same, as shown to users (relative to the project root).
    pub display: String,
    /// The scenario and step, written in the header.
    pub scenario: String,
    /// Step name.
    pub step: String,
    /// What is replaced before comparing (config's, then the file's).
    pub redact: std::sync::Arc<Redactions>,
    /// `--update-snapshots`: write the output as the snapshot instead of failing.
    pub update: bool,
}

/// How a check went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The output is the snapshot.
    Matched,
    /// `--update-snapshots` wrote it (new or changed).
    Written,
    /// No snapshot yet: the output is in `.snap.new`.
    New {
        /// The pending file.
        pending: String,
    },
    /// It differs: the output is in `.snap.new`.
    Changed {
        /// The pending file.
        pending: String,
        /// Unified diff, snapshot → output (at most 200 lines).
        diff: String,
    },
}

/// A snapshot file that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct CheckError {
    /// The `.snap` or `.snap.new` file.
    pub path: PathBuf,
    /// What reading or writing it said.
    #[source]
    pub source: std::io::Error,
}

impl SnapshotSpec {
    /// Compares `output` (already masked) with the snapshot, writing `.snap.new` or
    /// (when updating) `.snap`; the error says which file could not be read or written.
    pub fn check(&self, output: &str) -> Result<Outcome, CheckError> {
        let content = self.redact.apply(output);
        let hash = sha256(content.as_bytes());
        let pending = pending_path(&self.path);
        let io = |p: &Path, source: std::io::Error| CheckError {
            path: p.to_path_buf(),
            source,
        };
        let old = read(&self.path).map_err(|e| io(&self.path, e))?;
        if old.as_ref().is_some_and(|s| s.hash == hash) {
            remove_if_there(&pending).map_err(|e| io(&pending, e))?;
            return Ok(Outcome::Matched);
        }
        let text = self.encode(&content, &hash);
        if self.update {
            write(&self.path, &text).map_err(|e| io(&self.path, e))?;
            remove_if_there(&pending).map_err(|e| io(&pending, e))?;
            return Ok(Outcome::Written);
        }
        write(&pending, &text).map_err(|e| io(&pending, e))?;
        let shown = format!("{}.new", self.display);
        Ok(match old {
            None => Outcome::New { pending: shown },
            Some(old) => Outcome::Changed {
                pending: shown,
                diff: unified_diff(&old.content, &content, &self.display),
            },
        })
    }

    fn encode(&self, content: &str, hash: &str) -> String {
        format!(
            "{MAGIC}\n# scenario: {}\n# step: {}\n# sha256: {hash}\n{content}",
            one_line(&self.scenario),
            one_line(&self.step)
        )
    }
}

/// The `.snap.new` beside a `.snap`.
pub fn pending_path(snap: &Path) -> PathBuf {
    let mut s = snap.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

/// `.clnrm/snapshots/<scenario>/<step>.snap` under `dir` (`.clnrm/snapshots`), each
/// name [`file_name`]d.
pub fn path_for(dir: &Path, scenario_id: &str, step: &str) -> PathBuf {
    dir.join(file_name(scenario_id))
        .join(format!("{}.snap", file_name(step)))
}

/// A name as a file name: itself when [`sanitise`] keeps it whole, else sanitised
/// with 8 hex digits of its hash, so that two names never share a file.
pub fn file_name(name: &str) -> String {
    let clean = sanitise(name);
    if clean == name {
        return clean;
    }
    let short: String = clean.chars().take(180).collect();
    format!("{short}-{}", &sha256(name.as_bytes())[..8])
}

/// A file name from any text: letters, digits, `.`, `-` and `_` kept, everything else
/// `_`; never empty, never `.` or `..`, at most 200 bytes.
pub fn sanitise(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = format!("_{s}");
    }
    s
}

/// A snapshot file as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snap {
    /// The hash its header gives.
    pub hash: String,
    /// What follows the header.
    pub content: String,
}

/// The snapshot at `path`: none when there is no file; a file that is not a
/// snapshot (or hand-edited so that its hash no longer holds) reads as holding what
/// follows its header, with the hash of that.
pub fn read(path: &Path) -> std::io::Result<Option<Snap>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "more than the {} MiB a snapshot may hold",
            MAX_BYTES >> 20
        )));
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Some(parse(&text)))
}

fn parse(text: &str) -> Snap {
    let mut rest = text;
    let mut stated = None;
    if let Some(after) = rest.strip_prefix(MAGIC).and_then(|r| r.strip_prefix('\n')) {
        rest = after;
        while rest.starts_with("# ") {
            let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            if let Some(h) = line.strip_prefix("# sha256: ") {
                stated = Some(h.trim().to_owned());
            }
            rest = tail;
            if stated.is_some() {
                break;
            }
        }
    }
    let content = rest.to_owned();
    let actual = sha256(content.as_bytes());
    // A header whose hash does not hold (the content was edited by hand) is ignored.
    let hash = match stated {
        Some(h) if h == actual => h,
        _ => actual,
    };
    Snap { hash, content }
}

/// The hash of the snapshot at `path` ("" when there is none or it cannot be read),
/// read from its header: for cache keys.
pub fn hash_of(path: &Path) -> String {
    read(path)
        .ok()
        .flatten()
        .map(|s| s.hash)
        .unwrap_or_default()
}

/// A pending snapshot: its `.snap.new` and the `.snap` it would become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The `.snap.new`.
    pub new: PathBuf,
    /// The `.snap`.
    pub snap: PathBuf,
}

impl Pending {
    /// Unified diff from the current snapshot (empty when there is none) to the new
    /// output, as `label` names them.
    pub fn diff(&self, label: &str) -> std::io::Result<String> {
        let old = read(&self.snap)?.map(|s| s.content).unwrap_or_default();
        let new = read(&self.new)?.map(|s| s.content).unwrap_or_default();
        Ok(unified_diff(&old, &new, label))
    }

    /// Makes the new output the snapshot.
    pub fn accept(&self) -> std::io::Result<()> {
        std::fs::rename(&self.new, &self.snap)
    }

    /// Drops the new output.
    pub fn reject(&self) -> std::io::Result<()> {
        std::fs::remove_file(&self.new)
    }
}

/// Every `.snap.new` under `dir`, sorted by path.
pub fn pending(dir: &Path) -> Vec<Pending> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            // Symbolic links are not followed: the directory is clnrm's own.
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && let Some(name) = path.file_name().and_then(|n| n.to_str())
                && let Some(base) = name.strip_suffix(".snap.new")
            {
                found.push(Pending {
                    snap: path.with_file_name(format!("{base}.snap")),
                    new: path,
                });
            }
        }
    }
    found.sort_by(|a, b| a.new.cmp(&b.new));
    found
}

/// A unified diff of `old` → `new` with 3 lines of context, at most
/// [`MAX_DIFF_LINES`] lines.
pub fn unified_diff(old: &str, new: &str, label: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{label} (snapshot)"), &format!("{label} (output)"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_DIFF_LINES {
        return text;
    }
    let mut cut = lines[..MAX_DIFF_LINES].join("\n");
    cut.push_str(&format!(
        "\n… {} more lines of diff\n",
        lines.len() - MAX_DIFF_LINES
    ));
    cut
}

fn sha256(bytes: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(bytes))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::files::write_atomic(path, text.as_bytes())
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn spec(dir: &Path, update: bool) -> SnapshotSpec {
        let redact = Redactions(vec![(Regex::new(r"id=\d+").unwrap(), "id=[id]".to_owned())]);
        SnapshotSpec {
            path: path_for(dir, "tests/a.clnrm.toml::list all", "get /items"),
            display: "snaps/x.snap".into(),
            scenario: "tests/a.clnrm.toml::list all".into(),
            step: "get /items".into(),
            redact: Arc::new(redact),
            update,
        }
    }

    #[test]
    fn new_then_accepted_then_matched_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), false);
        let name = s
            .path
            .strip_prefix(dir.path())
            .unwrap()
            .display()
            .to_string();
        assert!(
            name.starts_with("tests_a.clnrm.toml__list_all-") && name.contains("/get__items-"),
            "{name}"
        );
        let first = s.check("a\nid=17\nb\n").unwrap();
        assert!(matches!(first, Outcome::New { .. }), "{first:?}");
        let pending = pending(dir.path());
        assert_eq!(pending.len(), 1);
        pending[0].accept().unwrap();
        // Redacted: another id is the same output.
        assert_eq!(s.check("a\nid=99\nb\n").unwrap(), Outcome::Matched);
        let Outcome::Changed { diff, .. } = s.check("a\nid=1\nc\n").unwrap() else {
            panic!("expected a change")
        };
        assert!(diff.contains("-b\n+c\n"), "{diff}");
        assert!(diff.contains("snaps/x.snap (snapshot)"), "{diff}");
        assert!(pending_path(&s.path).exists());
        // Rejected: the snapshot stays.
        super::pending(dir.path())[0].reject().unwrap();
        assert!(super::pending(dir.path()).is_empty());
        assert_eq!(s.check("a\nid=5\nb\n").unwrap(), Outcome::Matched);
        // Updating writes it and drops what was pending.
        s.check("zzz").unwrap();
        assert_eq!(
            spec(dir.path(), true).check("zzz").unwrap(),
            Outcome::Written
        );
        assert!(super::pending(dir.path()).is_empty());
        assert_eq!(s.check("zzz").unwrap(), Outcome::Matched);
        assert_eq!(read(&s.path).unwrap().unwrap().content, "zzz");
    }

    #[test]
    fn a_hand_edited_snapshot_is_compared_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), true);
        s.check("one\n").unwrap();
        let text = std::fs::read_to_string(&s.path).unwrap();
        std::fs::write(&s.path, text.replace("one\n", "two\n")).unwrap();
        let s = spec(dir.path(), false);
        assert_eq!(s.check("two\n").unwrap(), Outcome::Matched);
        assert!(matches!(s.check("one\n").unwrap(), Outcome::Changed { .. }));
        // A file written by hand without a header holds what it says.
        std::fs::write(&s.path, "three\n").unwrap();
        assert_eq!(s.check("three\n").unwrap(), Outcome::Matched);
    }

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(sanitise("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitise(".."), "_..");
        assert_eq!(sanitise(""), "_");
        assert_eq!(sanitise("é/x"), "__x");
        assert_eq!(sanitise(&"a".repeat(300)).len(), 200);
    }

    #[test]
    fn different_names_never_share_a_file() {
        let d = Path::new("/s");
        assert_ne!(
            path_for(d, "s", "get /items"),
            path_for(d, "s", "get_/items")
        );
        assert_ne!(path_for(d, "s", "é"), path_for(d, "s", "è"));
        assert_ne!(
            path_for(d, "s", &"a".repeat(300)),
            path_for(d, "s", &"a".repeat(301))
        );
        assert_eq!(
            path_for(d, "plain", "step-1.x"),
            Path::new("/s/plain/step-1.x.snap")
        );
    }

    #[test]
    fn long_diffs_are_cut() {
        let old: String = (0..1000).map(|i| format!("{i}\n")).collect();
        let d = unified_diff(&old, "", "x");
        assert!(d.lines().count() <= MAX_DIFF_LINES + 1);
        assert!(d.contains("more lines of diff"));
    }
    #[test]
    fn a_snapshot_that_cannot_be_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), false);
        // A directory where the file belongs: it opens, and reading it fails.
        s.path = dir.path().to_path_buf();
        let e = s.check("x").unwrap_err();
        let shown = format!("{}: {}", dir.path().display(), e.source);
        assert_eq!(e.to_string(), shown);
    }
}
