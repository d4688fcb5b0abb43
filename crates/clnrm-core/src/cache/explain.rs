//! Why a scenario would run or be skipped: its key's parts now beside those its last
//! run recorded, which changed, and for a changed directory input which of its files
//! (when the file list of the old digest is still kept).

use super::{Entry, INPUT_PART, Key, short};
use std::collections::BTreeMap;
use std::path::Path;

/// One part of a key, now and at the last run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartState {
    /// `definition`, `image <name>`, `baseline`, `input <path>`, `snapshot <path>`.
    pub name: String,
    /// Its value now (shortened).
    pub now: String,
    /// Its value at the last run (shortened), when it had this part.
    pub then: Option<String>,
    /// For a changed directory input: files added, removed and changed in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileChanges>,
}

impl PartState {
    /// Whether it differs from the last run's (or is new).
    pub fn changed(&self) -> bool {
        self.then.as_deref() != Some(self.now.as_str())
    }
}

/// The files of a directory input that differ between two digests.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileChanges {
    /// New files.
    pub added: Vec<String>,
    /// Files gone.
    pub removed: Vec<String>,
    /// Files whose content changed.
    pub changed: Vec<String>,
}

/// What a run would do with a scenario, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "why")]
pub enum Verdict {
    /// Skipped: unchanged since its last passing run.
    Cached,
    /// Runs: it has no entry.
    NeverRun,
    /// Runs: its last run did not pass.
    LastFailed,
    /// Runs: these parts changed.
    Changed(Vec<String>),
    /// Runs every time: an input cannot be summarised.
    Uncacheable(String),
}

/// The explanation of one scenario's key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// The scenario.
    pub id: String,
    /// What a run would do.
    pub verdict: Verdict,
    /// Every part of its key, now.
    pub parts: Vec<PartState>,
    /// Parts its last run had that it has no more (`name`, value).
    pub gone: Vec<(String, String)>,
    /// The last run's entry.
    #[serde(skip)]
    pub last: Option<Entry>,
}

/// Explains `key` of scenario `id` against `last`, its entry from the last run;
/// `manifests` holds the file lists of directory inputs (see `inputs`), `now_files`
/// the current file list of each directory input by its part name.
pub fn explain(
    id: &str,
    key: &Key,
    last: Option<&Entry>,
    manifests: &Path,
    now_files: &BTreeMap<String, BTreeMap<String, String>>,
) -> Explanation {
    let then = last.map(|e| &e.parts);
    let parts: Vec<PartState> = key
        .parts
        .iter()
        .map(|(name, value)| {
            let now = short(value);
            let before = then.and_then(|p| p.get(name)).cloned();
            let files = match (&before, now_files.get(name)) {
                (Some(old), Some(current)) if *old != now && name.starts_with(INPUT_PART) => {
                    crate::inputs::manifest::load(manifests, old).map(|old_files| {
                        let (added, removed, changed) =
                            crate::inputs::manifest::changes(&old_files, current);
                        FileChanges {
                            added,
                            removed,
                            changed,
                        }
                    })
                }
                _ => None,
            };
            PartState {
                name: name.clone(),
                now,
                then: before,
                files,
            }
        })
        .collect();
    let gone: Vec<(String, String)> = then
        .into_iter()
        .flatten()
        .filter(|(n, _)| !key.parts.iter().any(|(k, _)| k == *n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let verdict = match (last, &key.uncacheable) {
        (_, Some(why)) => Verdict::Uncacheable(why.clone()),
        (None, None) => Verdict::NeverRun,
        (Some(e), None) if e.key == key.digest() => {
            if e.passed {
                Verdict::Cached
            } else {
                Verdict::LastFailed
            }
        }
        (Some(_), None) => {
            let mut changed: Vec<String> = parts
                .iter()
                .filter(|p| p.changed())
                .map(|p| p.name.clone())
                .collect();
            changed.extend(gone.iter().map(|(n, _)| format!("{n} (gone)")));
            if changed.is_empty() {
                // An entry written before parts were kept: its key differs all the same.
                changed.push("the key".to_owned());
            }
            Verdict::Changed(changed)
        }
    };
    Explanation {
        id: id.to_owned(),
        verdict,
        parts,
        gone,
        last: last.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &Key, passed: bool) -> Entry {
        Entry {
            key: key.digest(),
            passed,
            duration_ms: 1,
            last_used_ms: 1,
            parts: key.short_parts(),
        }
    }

    #[test]
    fn the_changed_input_and_its_changed_file_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old_files: BTreeMap<String, String> =
            [("a.conf".into(), "1".into()), ("b.conf".into(), "2".into())].into();
        crate::inputs::manifest::save(dir.path(), "aaaaaaaaaaaaaaaaaaaa", &old_files)
            .expect("save");
        let mut then = Key::default();
        then.push("definition", "d1");
        then.push("input /x/conf", "aaaaaaaaaaaaaaaaaaaa");
        let mut now = Key::default();
        now.push("definition", "d1");
        now.push("input /x/conf", "bbbbbbbbbbbbbbbbbbbb");
        let now_files: BTreeMap<String, BTreeMap<String, String>> = [(
            "input /x/conf".to_owned(),
            [("a.conf".into(), "1".into()), ("c.conf".into(), "3".into())].into(),
        )]
        .into();
        let e = explain(
            "t::s",
            &now,
            Some(&entry(&then, true)),
            dir.path(),
            &now_files,
        );
        assert_eq!(e.verdict, Verdict::Changed(vec!["input /x/conf".into()]));
        assert!(!e.parts[0].changed());
        assert_eq!(
            e.parts[1].files,
            Some(FileChanges {
                added: vec!["c.conf".into()],
                removed: vec!["b.conf".into()],
                changed: vec![],
            })
        );
        assert_eq!(
            explain(
                "t::s",
                &then,
                Some(&entry(&then, true)),
                dir.path(),
                &now_files
            )
            .verdict,
            Verdict::Cached
        );
        assert_eq!(
            explain(
                "t::s",
                &then,
                Some(&entry(&then, false)),
                dir.path(),
                &now_files
            )
            .verdict,
            Verdict::LastFailed
        );
        let mut unknowable = then.clone();
        unknowable.uncacheable = Some("too big".into());
        assert_eq!(
            explain("t::s", &unknowable, None, dir.path(), &now_files).verdict,
            Verdict::Uncacheable("too big".into())
        );
    }
}
