//! The images clnrm built for a project, recorded in its `.clnrm/cache/builds.json`
//! (tag, service, when): what `clnrm cache stats` lists and `clnrm cache clear`
//! prunes, the newest per service kept (the one the next run most likely uses). Not
//! labels on the images: the classic builder makes each label a step of its own, one
//! more commit per build (about 2 s each on this machine's storage driver).

use crate::backend::{ContainerEngine, EngineError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record's format.
const FORMAT: &str = "clnrm.builds.v1";
/// The most images the record keeps (the oldest go first).
const MAX_RECORDED: usize = 10_000;
/// The most of the record read, in bytes.
const MAX_RECORD_BYTES: u64 = 8 << 20;

/// `.clnrm/cache/builds.json` of the project at `root`.
pub fn record_path(root: &Path) -> PathBuf {
    root.join(crate::project::Layout::CACHE).join("builds.json")
}

#[derive(Default, Serialize, Deserialize)]
struct Record {
    format: String,
    images: Vec<Recorded>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Recorded {
    tag: String,
    service: String,
    /// When it was made, in milliseconds since the Unix epoch.
    made: i64,
}

/// The record of `root`; an unreadable or foreign one is empty, and only tags clnrm
/// gives this project's builds (`clnrm-build/<project>-<service>:`) are taken from it:
/// a record that came with the project's files (an upload to the runs service, a
/// repository) names no other image for clnrm to remove.
fn read(root: &Path) -> Record {
    let mut record = read_any(root);
    let project = super::project_name(root);
    record.images.retain(|r| {
        r.tag
            .starts_with(&super::build_tag(&project, &r.service, ""))
    });
    record
}

fn read_any(root: &Path) -> Record {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(record_path(root))
        .and_then(|f| f.take(MAX_RECORD_BYTES).read_to_string(&mut text));
    match read {
        Ok(_) => serde_json::from_str::<Record>(&text)
            .ok()
            .filter(|r| r.format == FORMAT)
            .unwrap_or_default(),
        Err(_) => Record::default(),
    }
}

fn write(root: &Path, record: &Record) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    crate::files::write_atomic(&record_path(root), &text)
}

/// Records that image `tag` was built (or named) for `service` of the project at
/// `root`, under the cache's lock.
pub fn record_built(root: &Path, tag: &str, service: &str) -> std::io::Result<()> {
    let _lock = crate::files::lock_dir(&root.join(crate::project::Layout::CACHE))?;
    let mut record = read(root);
    record.format = FORMAT.to_owned();
    record.images.retain(|r| r.tag != tag);
    let made = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    record.images.push(Recorded {
        tag: tag.to_owned(),
        service: service.to_owned(),
        made,
    });
    let over = record.images.len().saturating_sub(MAX_RECORDED);
    record.images.drain(..over);
    write(root, &record)
}

/// An image built for the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its tag (`clnrm-build/<project>-<service>:<key>`).
    pub tag: String,
    /// The service it was built for.
    pub service: String,
    /// Its id.
    pub id: String,
    /// Its size in bytes (layers shared with its bases included).
    pub size: u64,
    /// When it was made, in milliseconds since the Unix epoch.
    pub made: i64,
}

/// The images recorded as built for the project at `root` that the engine still has,
/// oldest first.
pub async fn built_images<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<Vec<BuiltImage>, EngineError> {
    let mut out = Vec::new();
    for r in read(Path::new(root)).images {
        if let Some(info) = engine.image(&r.tag).await? {
            out.push(BuiltImage {
                tag: r.tag,
                service: r.service,
                id: info.id,
                size: info.size,
                made: r.made,
            });
        }
    }
    // Stable: the record is in the order the builds were made.
    out.sort_by_key(|b| b.made);
    Ok(out)
}

/// What pruning did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Images removed.
    pub removed: usize,
    /// Images kept: the newest of each service.
    pub kept: usize,
    /// Why each image that was to go did not (a container still uses it, say).
    pub failed: Vec<String>,
}

/// Removes the images built for the project at `root` but the newest of each service
/// (by tag: one named for two services goes with its last name), and forgets them.
pub async fn prune_built<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<Pruned, EngineError> {
    let all = built_images(engine, root).await?;
    // Oldest first: the last one seen of a service is its newest.
    let newest: BTreeMap<&str, &str> = all
        .iter()
        .map(|b| (b.service.as_str(), b.tag.as_str()))
        .collect();
    let mut out = Pruned::default();
    let mut removed: Vec<String> = Vec::new();
    for b in &all {
        if newest.get(b.service.as_str()) == Some(&b.tag.as_str()) {
            out.kept += 1;
            continue;
        }
        match engine.remove_image(&b.tag).await {
            Ok(()) => {
                out.removed += 1;
                removed.push(b.tag.clone());
            }
            Err(e) => out.failed.push(format!("{}: {e}", b.tag)),
        }
    }
    // Only what went is forgotten: what another run recorded meanwhile stays.
    let root = Path::new(root);
    if let Ok(_lock) = crate::files::lock_dir(&root.join(crate::project::Layout::CACHE)) {
        let mut record = read_any(root);
        record.images.retain(|r| !removed.contains(&r.tag));
        let _ = write(root, &record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BuildSpec;
    use crate::backend::fake::FakeEngine;

    async fn build(engine: &FakeEngine, root: &Path, service: &str, tag: &str) {
        let spec = BuildSpec {
            tag: tag.into(),
            dockerfile: "Dockerfile".into(),
            ..BuildSpec::default()
        };
        engine
            .build(&spec, vec![0])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        record_built(root, tag, service).unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_image_of_each_service_of_the_project() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (p, other) = (dir.path().join("p"), dir.path().join("other"));
        let engine = FakeEngine::new();
        build(&engine, &p, "api", "clnrm-build/p-api:1").await;
        build(&engine, &p, "api", "clnrm-build/p-api:2").await;
        build(&engine, &p, "web", "clnrm-build/p-web:1").await;
        build(&engine, &other, "api", "clnrm-build/other-api:1").await;
        let root = p.display().to_string();
        assert_eq!(
            built_images(&engine, &root).await.map(|v| v.len()).ok(),
            Some(3)
        );
        let pruned = prune_built(&engine, &root)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pruned.removed, pruned.kept), (1, 2), "{pruned:?}");
        let left: Vec<String> = built_images(&engine, &root)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|b| b.tag)
            .collect();
        assert_eq!(
            left,
            vec![
                "clnrm-build/p-api:2".to_owned(),
                "clnrm-build/p-web:1".to_owned()
            ]
        );
        let other = other.display().to_string();
        assert_eq!(
            built_images(&engine, &other).await.map(|v| v.len()).ok(),
            Some(1)
        );
    }

    #[test]
    fn a_foreign_or_broken_record_is_empty() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = record_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        for text in ["{", "[]", "{\"format\": \"other\", \"images\": []}"] {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(read(dir.path()).images.is_empty(), "{text}");
        }
        let project = dir.path().join("shop");
        record_built(&project, "clnrm-build/shop-s:1", "s").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&project).images.len(), 1);
        // Another project's image, or any other, is not this project's to remove.
        for tag in [
            "postgres:16",
            "clnrm-build/other-s:1",
            "clnrm-build/shop-t:1",
        ] {
            record_built(&project, tag, "s").unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(read(&project).images.len(), 1);
    }
}
