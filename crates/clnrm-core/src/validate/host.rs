//! Host paths that a bind mount must not hand to a container (W0004): the container
//! engine's socket (whoever holds it controls the host), the host's root, system and
//! home directories, and the directories above the project. Paths are compared after
//! resolving `.`, `..` and, where they exist, symlinks (`/var/run` is `/run`).

use std::path::{Component, Path, PathBuf};

/// Where the engine's socket is usually found, besides `DOCKER_HOST`.
const KNOWN_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
];

/// Directories whose whole tree is the host's (a writable mount anywhere inside counts).
const SYSTEM_TREES: &[&str] = &["/etc", "/proc", "/sys", "/boot", "/dev"];

/// Directories that are dangerous themselves (their subdirectories are ordinary).
const SYSTEM_DIRS: &[&str] = &["/", "/root", "/home", "/usr", "/var", "/run"];

/// The host paths of one project that mounts must not expose.
#[derive(Clone, Debug, Default)]
pub struct HostPaths {
    root: PathBuf,
    sockets: Vec<PathBuf>,
}

impl HostPaths {
    /// For the project at `root`, with the engine socket of `DOCKER_HOST` when it names one.
    pub fn new(root: &Path) -> Self {
        let docker_host = std::env::var("DOCKER_HOST").ok();
        Self::with_engine(root, docker_host.as_deref())
    }

    /// For the project at `root` and the engine at `docker_host` (`unix://...`).
    pub fn with_engine(root: &Path, docker_host: Option<&str>) -> Self {
        let mut sockets: Vec<PathBuf> = KNOWN_SOCKETS
            .iter()
            .map(|s| resolve(Path::new(s)))
            .collect();
        if let Some(p) = docker_host.and_then(|h| h.strip_prefix("unix://")) {
            sockets.push(resolve(Path::new(p)));
        }
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(root)
        };
        Self {
            root: resolve(&root),
            sockets,
        }
    }

    /// Why mounting `host_path` into a container is dangerous, if it is. A socket is
    /// dangerous even read-only: `read_only` does not stop a client from connecting.
    pub fn danger(&self, host_path: &str, read_only: bool) -> Option<String> {
        let path = resolve(Path::new(host_path));
        if let Some(s) = self
            .sockets
            .iter()
            .find(|s| **s == path || (s.starts_with(&path) && path.parent().is_some()))
        {
            let what = if *s == path {
                "the container engine's socket".to_owned()
            } else {
                format!(
                    "a directory holding the container engine's socket ({})",
                    s.display()
                )
            };
            return Some(format!("{what}, which controls the host"));
        }
        if read_only {
            return None;
        }
        if let Some(t) = SYSTEM_TREES.iter().find(|t| path.starts_with(t)) {
            return Some(format!("the host's {t}"));
        }
        if SYSTEM_DIRS.iter().any(|d| path == Path::new(d)) {
            return Some(format!("the host's {}", path.display()));
        }
        if self.root.starts_with(&path) && self.root != path {
            return Some(format!(
                "a parent of the project root ({})",
                self.root.display()
            ));
        }
        None
    }
}

/// `p` made absolute-looking without `.` and `..`, then with symlinks resolved when it exists.
fn resolve(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    std::fs::canonicalize(&out).unwrap_or(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_socket_system_directories_and_parents_of_the_root_are_dangerous() {
        let h =
            HostPaths::with_engine(Path::new("/srv/team/project"), Some("unix:///tmp/x/d.sock"));
        for (path, ro, why) in [
            ("/var/run/docker.sock", true, "engine's socket"),
            ("/tmp/x/d.sock", false, "engine's socket"),
            ("/tmp/x", false, "holding the container engine's socket"),
            ("/", false, "the host's /"),
            ("//etc/../etc/", false, "the host's /etc"),
            ("/etc/nginx", false, "the host's /etc"),
            ("/proc/sys", false, "the host's /proc"),
            ("/root", false, "the host's /root"),
            ("/home", false, "the host's /home"),
            ("/srv/team", false, "a parent of the project root"),
            ("/srv", false, "a parent of the project root"),
        ] {
            let got = h.danger(path, ro);
            assert!(
                got.as_deref().is_some_and(|g| g.contains(why)),
                "{path}: {got:?}"
            );
        }
        for (path, ro) in [
            ("/srv/team/project", false),
            ("/srv/team/project/data", false),
            ("/home/me/src", false),
            ("/etc", true),
            ("/srv", true),
            ("/tmp/cache", false),
        ] {
            assert_eq!(h.danger(path, ro), None, "{path}");
        }
    }
}
