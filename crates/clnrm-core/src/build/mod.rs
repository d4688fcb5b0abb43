//! The system under test from its source (SPEC §14): an image built from a context is
//! named by a hash of what the engine is sent (the context's files as `.dockerignore`
//! leaves them, the Dockerfile and `.dockerignore` always, as the engine always reads
//! them) and of how it is built (the Dockerfile's path, the target, the build
//! arguments), and of the base images' ids ([`with_bases`]), so that a build whose
//! inputs are unchanged is not made again ([`Builds`]). Files are read through the stat index, as bind-mounted inputs are: an
//! unchanged context costs a stat per file. The base images' ids are in the key when
//! the recipe holds them ([`base_images`] names them from the `FROM` lines; asking
//! the engine for their ids is the caller's).

mod dockerfile;
mod ensure;
mod ignore;
mod store;

pub use dockerfile::{LateCopies, base_images, failed_step, late_copies, stages};
pub use ensure::{Builds, EnsureError, Ensured, Wanted, build_tag, sync_tar};
pub use ignore::{BadPattern, DockerIgnore};
pub use store::{BuiltImage, Pruned, built_images, prune_built, record_built, record_path};

use crate::inputs::{DigestError, InputDigest, StatIndex, Walk, digest_with, walk_tree};
use std::collections::BTreeMap;
use std::path::Path;

/// How an image is built from its context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildRecipe {
    /// The Dockerfile, relative to the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// The stage built (the last when `None`).
    pub target: Option<String>,
    /// `ARG` values.
    pub args: BTreeMap<String, String>,
    /// The ids of the base images (`FROM`), by name, as the engine has them: a
    /// re-pulled base is a new key ([`with_bases`]). Asked for by whoever makes the
    /// recipe ([`base_images`] names them).
    pub bases: BTreeMap<String, String>,
    /// Paths in the context that are clnrm's own (the project's `.clnrm/`, which every
    /// run writes): neither keyed nor sent.
    pub leave_out: Vec<std::path::PathBuf>,
}

/// Why a build has no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The context is not a directory clnrm can read.
    #[error("build context {}: {why}", context.display())]
    Context {
        /// The context.
        context: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Its `.dockerignore` has a line that is no pattern.
    #[error("build context {}: {source}", context.display())]
    Ignore {
        /// The context.
        context: std::path::PathBuf,
        /// The line.
        #[source]
        source: BadPattern,
    },
}

/// The most a build context sent to the engine may hold, in bytes.
pub const MAX_CONTEXT_BYTES: u64 = 1 << 30;

/// The name of the project at `root` in its built images' tags: its directory's name.
pub fn project_name(root: &Path) -> String {
    root.file_name().map_or_else(
        || "project".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The key of the sources of building `recipe` in `context` (a directory), its files
/// read through `index`: SHA-256 over the context's digest and how it is built (not
/// the bases' ids, which [`with_bases`] adds).
pub fn build_key(
    context: &Path,
    recipe: &BuildRecipe,
    index: &mut StatIndex,
) -> Result<String, KeyError> {
    build_sources(context, recipe, index).map(|(key, _)| key)
}

/// [`build_key`], with the context's regular files (relative path → content hash)
/// that the key covers: what a later build's files are compared with, to tell which
/// changed.
pub fn build_sources(
    context: &Path,
    recipe: &BuildRecipe,
    index: &mut StatIndex,
) -> Result<(String, BTreeMap<String, String>), KeyError> {
    let dockerfile = recipe.dockerfile();
    let ignore = read_ignore(context)?;
    let walk = walker(&ignore, dockerfile);
    let (tree, files) = match digest_with(context, index, &recipe.leave_out, &walk) {
        InputDigest::Known { hash, files, .. } => (hash, files),
        InputDigest::Unknowable(why) => {
            return Err(KeyError::Context {
                context: context.to_path_buf(),
                why,
            });
        }
    };
    let mut parts = vec![
        "context".to_owned(),
        tree,
        "dockerfile".to_owned(),
        dockerfile.to_owned(),
        "target".to_owned(),
        recipe.target.clone().unwrap_or_default(),
    ];
    for (k, v) in &recipe.args {
        parts.push(format!("arg {k}"));
        parts.push(v.clone());
    }
    Ok((crate::digest::key(parts.iter().map(String::as_str)), files))
}

/// The key of a build whose sources have key `key` ([`build_key`]) made from base
/// images with ids `bases` (by name): what its tag is made from.
pub fn with_bases(key: &str, bases: &BTreeMap<String, String>) -> String {
    let mut parts = vec!["sources".to_owned(), key.to_owned()];
    for (name, id) in bases {
        parts.push(format!("base {name}"));
        parts.push(id.clone());
    }
    crate::digest::key(parts.iter().map(String::as_str))
}

/// What the context of `recipe` holds besides its regular files' contents: each
/// entry's kind by path, with a file's or directory's mode and a link's target, the
/// way the context's key reads them (`None` when it cannot be read). Reads no file's
/// content.
pub fn context_shape(context: &Path, recipe: &BuildRecipe) -> Option<BTreeMap<String, String>> {
    use std::os::unix::fs::PermissionsExt;
    let ignore = read_ignore(context).ok()?;
    let walk = walker(&ignore, recipe.dockerfile());
    let mut shape = BTreeMap::new();
    walk_tree(context, &recipe.leave_out, &walk, &mut |e| {
        let kind = e.meta.file_type();
        let mode = e.meta.permissions().mode() & 0o7777;
        let what = if kind.is_symlink() {
            let target = std::fs::read_link(e.path).map_err(|source| DigestError::Read {
                path: e.path.to_path_buf(),
                source,
            })?;
            format!("link {}", target.display())
        } else if kind.is_dir() {
            format!("dir {mode:o}")
        } else if kind.is_file() {
            format!("file {mode:o}")
        } else {
            format!("special {mode:o}")
        };
        shape.insert(e.rel.to_owned(), what);
        Ok(())
    })
    .ok()?;
    Some(shape)
}

/// Whether a context of shape `now` differs from one of shape `then` only in its
/// regular files' contents and in regular files added ([`context_shape`]): only
/// then can the changed files put into an image built from `then` stand for a build
/// of `now` (a `develop` sync, a rebuild ahead of its build).
pub fn same_shape(then: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> bool {
    then.iter().all(|(rel, what)| now.get(rel) == Some(what))
        && now
            .iter()
            .all(|(rel, what)| then.contains_key(rel) || what.starts_with("file "))
}

/// The tar of `context` the engine is sent to build `recipe`: what `.dockerignore`
/// leaves, the Dockerfile and `.dockerignore` always; symlinks as links.
pub fn context_tar(context: &Path, recipe: &BuildRecipe) -> Result<Vec<u8>, KeyError> {
    let ignore = read_ignore(context)?;
    let walk = walker(&ignore, recipe.dockerfile());
    let failed = |why: String| KeyError::Context {
        context: context.to_path_buf(),
        why,
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut sent = 0u64;
    let mut too_big = false;
    let walked = walk_tree(context, &recipe.leave_out, &walk, &mut |e| {
        sent += e.meta.len();
        if sent > MAX_CONTEXT_BYTES {
            too_big = true;
            return Err(DigestError::TooMany);
        }
        tar.append_path_with_name(e.path, e.rel)
            .map_err(|source| DigestError::Read {
                path: e.path.to_path_buf(),
                source,
            })
    });
    match walked {
        Err(_) if too_big => {
            return Err(failed(format!(
                "over {} MiB; leave some out with .dockerignore",
                MAX_CONTEXT_BYTES >> 20
            )));
        }
        Err(DigestError::TooMany) => {
            return Err(failed(format!(
                "over {} entries; leave some out with .dockerignore",
                crate::inputs::MAX_ENTRIES
            )));
        }
        Err(e) => return Err(failed(e.to_string())),
        Ok(()) => {}
    }
    tar.into_inner()
        .map_err(|e| failed(format!("cannot make its archive ({e})")))
}

impl BuildRecipe {
    /// The Dockerfile's path in the context.
    pub fn dockerfile(&self) -> &str {
        if self.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            &self.dockerfile
        }
    }
}

/// The most of a Dockerfile clnrm reads, in bytes.
pub const MAX_DOCKERFILE_BYTES: u64 = 1 << 20;

/// The text of the small file at `path` (a Dockerfile, a `.dockerignore`): a regular
/// file (not a device, a pipe or a directory), at most [`MAX_DOCKERFILE_BYTES`],
/// UTF-8; why not, in words.
pub fn read_small_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_DOCKERFILE_BYTES {
        return Err(format!("over {} KiB", MAX_DOCKERFILE_BYTES >> 10));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DOCKERFILE_BYTES).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// The `.dockerignore` of `context` (none: nothing left out).
pub fn read_ignore(context: &Path) -> Result<DockerIgnore, KeyError> {
    if !context.is_dir() {
        return Err(KeyError::Context {
            context: context.to_path_buf(),
            why: "not a directory".into(),
        });
    }
    let path = context.join(".dockerignore");
    if !path.exists() {
        return Ok(DockerIgnore::default());
    }
    match read_small_text(&path) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|source| KeyError::Ignore {
            context: context.to_path_buf(),
            source,
        }),
        Err(why) => Err(KeyError::Context {
            context: context.to_path_buf(),
            why: format!("cannot read .dockerignore ({why})"),
        }),
    }
}

/// What the engine is sent of an entry of the context (its relative path, whether it
/// is a directory): as `ignore` says, but the Dockerfile and `.dockerignore` always,
/// and the directories leading to the Dockerfile walked through.
fn walker<'a>(ignore: &'a DockerIgnore, dockerfile: &'a str) -> impl Fn(&str, bool) -> Walk + 'a {
    move |rel: &str, is_dir: bool| {
        if rel == dockerfile || rel == ".dockerignore" {
            return Walk::Take;
        }
        let leads_to_dockerfile =
            dockerfile.starts_with(rel) && dockerfile[rel.len()..].starts_with('/');
        match (is_dir, ignore.excludes(rel)) {
            (_, false) => Walk::Take,
            (false, true) => Walk::Skip,
            (true, true) if leads_to_dockerfile => Walk::Through,
            (true, true) => ignore.dir(rel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
    }

    fn key(root: &Path, recipe: &BuildRecipe) -> String {
        build_key(root, recipe, &mut StatIndex::in_memory()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_key_follows_what_the_engine_would_be_sent_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\nCOPY app.py /\n");
        write(root, "app.py", "print(1)\n");
        write(root, ".dockerignore", "*.log\n__pycache__\nDockerfile\n");
        write(root, "__pycache__/app.pyc", "x");
        let recipe = BuildRecipe::default();
        let start = key(root, &recipe);
        assert_eq!(key(root, &recipe), start, "stable");

        // What .dockerignore leaves out changes nothing.
        write(root, "debug.log", "noise");
        write(root, "__pycache__/app.pyc", "y");
        assert_eq!(key(root, &recipe), start);

        // The source does.
        write(root, "app.py", "print(2)\n");
        let edited = key(root, &recipe);
        assert_ne!(edited, start);

        // The Dockerfile counts even where .dockerignore names it.
        write(root, "Dockerfile", "FROM scratch\nCOPY app.py /app.py\n");
        let dockerfile = key(root, &recipe);
        assert_ne!(dockerfile, edited);

        // So does how it is built.
        let target = BuildRecipe {
            target: Some("test".into()),
            ..BuildRecipe::default()
        };
        assert_ne!(key(root, &target), dockerfile);
        let args = BuildRecipe {
            args: BTreeMap::from([("V".to_owned(), "1".to_owned())]),
            ..BuildRecipe::default()
        };
        assert_ne!(key(root, &args), dockerfile);
        // And the base images' ids: a re-pulled base is a new image.
        let base = |id: &str| BTreeMap::from([("python:3.11".to_owned(), id.to_owned())]);
        assert_ne!(
            with_bases(&dockerfile, &base("sha256:a")),
            with_bases(&dockerfile, &base("sha256:b"))
        );
        assert_ne!(
            with_bases(&dockerfile, &base("sha256:a")),
            with_bases(&edited, &base("sha256:a"))
        );
    }

    #[test]
    fn a_dockerfile_below_an_ignored_directory_still_counts() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        write(root, "docker/app.Dockerfile", "FROM scratch\n");
        write(root, "docker/notes.txt", "n");
        write(root, ".dockerignore", "docker\n");
        let recipe = BuildRecipe {
            dockerfile: "docker/app.Dockerfile".into(),
            ..BuildRecipe::default()
        };
        let start = key(root, &recipe);
        write(root, "docker/notes.txt", "changed");
        assert_eq!(key(root, &recipe), start, "ignored");
        write(root, "docker/app.Dockerfile", "FROM scratch\nENV A=1\n");
        assert_ne!(key(root, &recipe), start, "the Dockerfile is always read");
    }

    #[test]
    fn the_archive_holds_what_the_key_covers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, ".dockerignore", "**/*.log\nDockerfile\ncache\n");
        write(root, "app/main.py", "print(1)\n");
        write(root, "app/debug.log", "noise");
        write(root, "cache/blob", "x");
        std::os::unix::fs::symlink("app/main.py", root.join("main"))
            .unwrap_or_else(|e| panic!("{e}"));
        let bytes = context_tar(root, &BuildRecipe::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<(String, bool)> = archive
            .entries()
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| {
                let e = e.unwrap_or_else(|e| panic!("{e}"));
                let name = e
                    .path()
                    .unwrap_or_else(|e| panic!("{e}"))
                    .display()
                    .to_string();
                (name, e.header().entry_type().is_symlink())
            })
            .collect();
        names.sort();
        let shown: Vec<(&str, bool)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        assert_eq!(
            shown,
            vec![
                (".dockerignore", false),
                ("Dockerfile", false),
                ("app", false),
                ("app/main.py", false),
                ("main", true),
            ]
        );
    }

    #[test]
    fn clnrm_s_own_files_in_a_context_are_neither_keyed_nor_sent() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, ".clnrm/cache/hashes.json", "{}");
        let recipe = BuildRecipe {
            leave_out: vec![root.join(".clnrm")],
            ..BuildRecipe::default()
        };
        let start = key(root, &recipe);
        write(root, ".clnrm/cache/hashes.json", "{\"a\": 1}");
        assert_eq!(key(root, &recipe), start);
        let bytes = context_tar(root, &recipe).unwrap_or_else(|e| panic!("{e}"));
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| {
                let e = e.unwrap_or_else(|e| panic!("{e}"));
                e.path()
                    .unwrap_or_else(|e| panic!("{e}"))
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["Dockerfile".to_owned()]);
    }

    #[test]
    fn a_context_that_cannot_be_keyed_says_why() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("nope");
        let e = build_key(
            &missing,
            &BuildRecipe::default(),
            &mut StatIndex::in_memory(),
        )
        .expect_err("missing");
        assert!(e.to_string().ends_with("not a directory"), "{e}");
        write(dir.path(), ".dockerignore", "[z-a\n");
        let e = build_key(
            dir.path(),
            &BuildRecipe::default(),
            &mut StatIndex::in_memory(),
        )
        .expect_err("bad pattern");
        assert!(e.to_string().contains(".dockerignore line 1"), "{e}");
    }

    #[test]
    fn a_shape_allows_changed_contents_and_added_files_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("src/a.py"), "1").unwrap_or_else(|e| panic!("{e}"));
        let recipe = BuildRecipe::default();
        let shape = || context_shape(root, &recipe).unwrap_or_else(|| panic!("no shape"));
        let then = shape();
        std::fs::write(root.join("src/a.py"), "2").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("src/b.py"), "new").unwrap_or_else(|e| panic!("{e}"));
        assert!(same_shape(&then, &shape()), "contents and an added file");
        use std::os::unix::fs::PermissionsExt;
        let exec = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(root.join("src/a.py"), exec).unwrap_or_else(|e| panic!("{e}"));
        assert!(!same_shape(&then, &shape()), "a mode");
        std::fs::set_permissions(
            root.join("src/a.py"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let back = shape();
        std::os::unix::fs::symlink("a.py", root.join("src/link")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!same_shape(&back, &shape()), "a link added");
        std::fs::remove_file(root.join("src/link")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(root.join("src/pkg")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!same_shape(&back, &shape()), "a directory added");
        std::fs::remove_dir(root.join("src/pkg")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(root.join("src/b.py")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!same_shape(&back, &shape()), "a file removed");
    }
}
