//! The images clnrm built for a project, as the engine keeps them (labelled with the
//! project's root and the service): what `clnrm cache stats` lists and `clnrm cache
//! clear` prunes, the newest per service kept (the one the next run most likely uses).

use super::{BUILD_LABEL, BUILD_SERVICE_LABEL};
use crate::backend::{ContainerEngine, EngineError};
use std::collections::BTreeMap;

/// An image built for the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its tags (`clnrm-build/<project>-<service>:<key>`).
    pub tags: Vec<String>,
    /// The service it was built for.
    pub service: String,
    /// Its id.
    pub id: String,
    /// Its size in bytes (layers shared with its bases included).
    pub size: u64,
    /// When it was made, in seconds since the Unix epoch.
    pub created: i64,
}

/// The images built for the project at `root`, oldest first.
pub async fn built_images<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<Vec<BuiltImage>, EngineError> {
    let mut out: Vec<BuiltImage> = engine
        .images(&format!("{BUILD_LABEL}={root}"))
        .await?
        .into_iter()
        .map(|found| BuiltImage {
            service: found
                .labels
                .get(BUILD_SERVICE_LABEL)
                .cloned()
                .unwrap_or_default(),
            tags: found.tags,
            id: found.id,
            size: found.size,
            created: found.created,
        })
        .collect();
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
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

/// Removes the images built for the project at `root` but the newest of each service.
pub async fn prune_built<E: ContainerEngine>(
    engine: &E,
    root: &str,
) -> Result<Pruned, EngineError> {
    let all = built_images(engine, root).await?;
    // Oldest first: the last one seen of a service is its newest.
    let newest: BTreeMap<&str, &str> = all
        .iter()
        .map(|b| (b.service.as_str(), b.id.as_str()))
        .collect();
    let mut out = Pruned::default();
    for b in &all {
        if newest.get(b.service.as_str()) == Some(&b.id.as_str()) {
            out.kept += 1;
            continue;
        }
        // By its tags: an image a later sync was made from has children, which keep
        // its layers; its tags go (the engine refuses to remove it by id).
        let names: Vec<&str> = if b.tags.is_empty() {
            vec![b.id.as_str()]
        } else {
            b.tags.iter().map(String::as_str).collect()
        };
        let mut gone = true;
        for name in names {
            if let Err(e) = engine.remove_image(name).await {
                out.failed.push(format!("{name}: {e}"));
                gone = false;
            }
        }
        if gone {
            out.removed += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeEngine;
    use crate::backend::{BuildSpec, Labels};

    async fn build(engine: &FakeEngine, root: &str, service: &str, tag: &str) {
        let spec = BuildSpec {
            tag: tag.into(),
            dockerfile: "Dockerfile".into(),
            target: None,
            args: BTreeMap::new(),
            labels: Labels::from([
                (BUILD_LABEL.to_owned(), root.to_owned()),
                (BUILD_SERVICE_LABEL.to_owned(), service.to_owned()),
            ]),
        };
        engine
            .build(&spec, vec![0])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_image_of_each_service_of_the_project() {
        let engine = FakeEngine::new();
        build(&engine, "/p", "api", "clnrm-build/p-api:1").await;
        build(&engine, "/p", "api", "clnrm-build/p-api:2").await;
        build(&engine, "/p", "web", "clnrm-build/p-web:1").await;
        build(&engine, "/other", "api", "clnrm-build/other-api:1").await;
        assert_eq!(
            built_images(&engine, "/p").await.map(|v| v.len()).ok(),
            Some(3)
        );
        let pruned = prune_built(&engine, "/p")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pruned.removed, pruned.kept), (1, 2), "{pruned:?}");
        let left: Vec<Vec<String>> = built_images(&engine, "/p")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|b| b.tags)
            .collect();
        assert_eq!(
            left,
            vec![
                vec!["clnrm-build/p-api:2".to_owned()],
                vec!["clnrm-build/p-web:1".to_owned()]
            ]
        );
        assert_eq!(
            built_images(&engine, "/other").await.map(|v| v.len()).ok(),
            Some(1)
        );
    }
}
