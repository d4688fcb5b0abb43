//! Host paths of bind mounts and env files: made absolute against the Compose file's
//! directory, and written relative to where the test definition is written.

use std::path::{Component, Path, PathBuf};

/// `path` made absolute against `dir`, with `.` and `..` resolved by name.
pub(super) fn absolute(dir: &Path, path: &str, home: Option<String>) -> PathBuf {
    let p = match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    };
    let joined = if p.is_absolute() { p } else { dir.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` (absolute, resolved) written relative to the directory `from` (absolute,
/// resolved): `./x` below it, `../x` beside it.
pub(super) fn relative_to(path: &Path, from: &Path) -> String {
    let (p, f): (Vec<_>, Vec<_>) = (path.components().collect(), from.components().collect());
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    let text = out.to_string_lossy().into_owned();
    if text.is_empty() {
        ".".to_owned()
    } else if text.starts_with("..") {
        text
    } else {
        format!("./{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_bind_mounts_stay_relative_to_where_the_definition_is_written() {
        for (path, from, want) in [
            ("/srv/shop/init.sql", "/srv/shop/tests", "../init.sql"),
            ("/srv/shop/tests/conf", "/srv/shop/tests", "./conf"),
            ("/srv/shop", "/srv/shop", "."),
            ("/a/b/c", "/x/y", "../../a/b/c"),
        ] {
            assert_eq!(
                relative_to(Path::new(path), Path::new(from)),
                want,
                "{path} from {from}"
            );
        }
    }
}
