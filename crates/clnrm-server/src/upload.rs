//! A submitted project: a `.tar.gz` of its directory or JSON `{"files": {path: text}}`,
//! made into a bundle (a plain tar of its regular files) that the run keeps. Nothing
//! that could reach outside the run's directory gets in: absolute paths, `..`, links
//! and special files are refused, as is more than the size bound (compressed or
//! unpacked) or more than [`MAX_FILES`] files.

use std::io::Read;
use std::path::{Component, Path};

/// The most files a project may hold.
pub const MAX_FILES: usize = 20_000;

/// The longest path accepted, in bytes.
const MAX_PATH: usize = 1024;

/// Why a project is refused; becomes a 4xx.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Malformed (400).
    #[error("{0}")]
    Bad(String),
    /// Over a bound (413).
    #[error("{0}")]
    TooLarge(String),
}

/// A project's files: (path relative to its root, content), in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// The files.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Checks a path from a client: relative, plain names only, no NUL; the normal form.
pub fn check_path(raw: &str) -> Result<String, Refused> {
    let bad = |why: &str| Refused::Bad(format!("path \"{}\" {why}", raw.escape_debug()));
    if raw.is_empty() || raw.len() > MAX_PATH {
        return Err(bad("is empty or too long"));
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err(bad("holds a NUL or a backslash"));
    }
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| bad("is not UTF-8"))?),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("escapes the project (`..`)")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("is absolute; paths are relative to the project"));
            }
        }
    }
    if parts.is_empty() {
        return Err(bad("names no file"));
    }
    Ok(parts.join("/"))
}

impl Bundle {
    /// From `{"path": "text", ...}`, at most `max` bytes in all.
    pub fn from_json(
        files: &serde_json::Map<String, serde_json::Value>,
        max: usize,
    ) -> Result<Self, Refused> {
        let mut b = Bundle::default();
        let mut total = 0usize;
        for (path, text) in files {
            let text = text.as_str().ok_or_else(|| {
                Refused::Bad(format!(
                    "files[\"{}\"] is not a string",
                    path.escape_debug()
                ))
            })?;
            total += text.len();
            b.add(check_path(path)?, text.as_bytes().to_vec(), total, max)?;
        }
        b.finish()
    }

    /// From a gzip-compressed tar archive, at most `max` bytes unpacked.
    pub fn from_tar_gz(bytes: &[u8], max: usize) -> Result<Self, Refused> {
        let gz = flate2::read::GzDecoder::new(bytes);
        // The files' sizes are checked against `max` as their headers give them; the
        // stream itself (headers and padding too) is cut well past that.
        let cut = (max as u64).saturating_mul(2).saturating_add(1 << 20);
        let mut archive = tar::Archive::new(gz.take(cut));
        let mut b = Bundle::default();
        let mut total = 0usize;
        let entries = archive
            .entries()
            .map_err(|e| Refused::Bad(format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(bounded)?;
            let kind = entry.header().entry_type();
            let raw = entry
                .path()
                .map_err(|e| Refused::Bad(format!("an entry's path is unreadable: {e}")))?
                .to_string_lossy()
                .into_owned();
            if kind.is_dir() {
                check_path(&raw)?;
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(Refused::Bad(format!(
                    "\"{}\" is a link; links are not accepted (they could point outside the project)",
                    raw.escape_debug()
                )));
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                return Err(Refused::Bad(format!(
                    "\"{}\" is not a regular file",
                    raw.escape_debug()
                )));
            }
            let path = check_path(&raw)?;
            let size = entry.header().size().unwrap_or(u64::MAX);
            if (total as u64).saturating_add(size) > max as u64 {
                return Err(too_large(max));
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(bounded)?;
            total += content.len();
            b.add(path, content, total, max)?;
        }
        b.finish()
    }

    fn add(
        &mut self,
        path: String,
        content: Vec<u8>,
        total: usize,
        max: usize,
    ) -> Result<(), Refused> {
        if total > max {
            return Err(too_large(max));
        }
        if self.files.len() >= MAX_FILES {
            return Err(Refused::TooLarge(format!("more than {MAX_FILES} files")));
        }
        self.files.push((path, content));
        Ok(())
    }

    fn finish(mut self) -> Result<Self, Refused> {
        self.files.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = self.files.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Refused::Bad(format!("\"{}\" is given twice", w[0].0)));
        }
        if self.files.is_empty() {
            return Err(Refused::Bad("the project holds no file".into()));
        }
        Ok(self)
    }

    /// The bundle as a plain tar (what a run keeps).
    pub fn pack(&self) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        for (path, content) in &self.files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            // Paths were checked; a write into memory cannot fail otherwise.
            let _ = t.append_data(&mut h, path, content.as_slice());
        }
        t.into_inner().unwrap_or_default()
    }

    /// Reads a bundle made by [`Bundle::pack`] (checking its paths again).
    pub fn unpack(tar_bytes: &[u8]) -> Result<Self, Refused> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut b = Bundle::default();
        let entries = archive.entries().map_err(|e| Refused::Bad(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Refused::Bad(e.to_string()))?;
            let raw = entry
                .path()
                .map_err(|e| Refused::Bad(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .map_err(|e| Refused::Bad(e.to_string()))?;
            b.files.push((check_path(&raw)?, content));
        }
        Ok(b)
    }

    /// Writes the files under `dir`, with `.clnrm/` made so that `dir` is the project
    /// root whatever was uploaded.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join(".clnrm"))?;
        for (path, content) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, content)?;
        }
        Ok(())
    }
}

fn too_large(max: usize) -> Refused {
    Refused::TooLarge(format!(
        "the project is larger than {} MiB unpacked (--max-upload-mb)",
        max >> 20
    ))
}

/// A read error inside the archive (a truncated or cut stream among them).
fn bounded(e: std::io::Error) -> Refused {
    Refused::Bad(format!("not a whole tar.gz archive: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            // The raw name: tar's own checks would refuse `..`.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            t.append(&h, *data).unwrap();
        }
        let raw = t.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn paths_stay_inside_the_project() {
        assert_eq!(
            check_path("./tests/a.clnrm.toml").unwrap(),
            "tests/a.clnrm.toml"
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "", "a\0b", "a\\b", "."] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn archives_with_escapes_links_or_too_much_are_refused() {
        let ok = tar_gz(&[("tests/a.clnrm.toml", tar::EntryType::Regular, b"x = 1\n")]);
        let b = Bundle::from_tar_gz(&ok, 1 << 20).unwrap();
        assert_eq!(
            b.files,
            vec![("tests/a.clnrm.toml".to_owned(), b"x = 1\n".to_vec())]
        );
        assert_eq!(Bundle::unpack(&b.pack()).unwrap(), b);
        let escape = tar_gz(&[("../evil", tar::EntryType::Regular, b"x")]);
        let e = Bundle::from_tar_gz(&escape, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("escapes the project"), "{e}");
        let link = tar_gz(&[("tests/l", tar::EntryType::Symlink, b"")]);
        assert!(
            Bundle::from_tar_gz(&link, 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("link")
        );
        let fifo = tar_gz(&[("tests/f", tar::EntryType::Fifo, b"")]);
        assert!(Bundle::from_tar_gz(&fifo, 1 << 20).is_err());
        let big = tar_gz(&[("a", tar::EntryType::Regular, &vec![b'a'; 4096])]);
        assert!(matches!(
            Bundle::from_tar_gz(&big, 1024),
            Err(Refused::TooLarge(_))
        ));
        assert!(Bundle::from_tar_gz(b"not gzip", 1024).is_err());
    }

    #[test]
    fn json_files_are_checked_the_same_way() {
        let files = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                .collect::<serde_json::Map<_, _>>()
        };
        assert!(Bundle::from_json(&files(&[("a.toml", "x")]), 10).is_ok());
        assert!(Bundle::from_json(&files(&[("/a", "x")]), 10).is_err());
        assert!(matches!(
            Bundle::from_json(&files(&[("a", "12345678901")]), 10),
            Err(Refused::TooLarge(_))
        ));
        assert!(Bundle::from_json(&files(&[]), 10).is_err());
    }
}
