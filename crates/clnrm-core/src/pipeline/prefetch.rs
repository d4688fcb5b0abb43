//! Image ids asked for before a run's files are read. The ids of a run's images are
//! part of every cache key, so a fully cached run must hear from the engine before it
//! can answer, and the engine takes about as long to answer as clnrm takes to read
//! and validate the files. `clnrm run` therefore asks first, for the images its
//! project's cache names (those of every scenario it holds an entry of, removed ones
//! too until evicted), and reads the files meanwhile; an image the cache does not
//! name is asked for during the run, as without a
//! prefetch (a scenario with a new image has no cached pass anyway). The ids are the
//! engine's at the start of the process, not when the run is planned: an image
//! rebuilt while the files are read is found out by the next run, as one rebuilt
//! while a run executes always was.

use crate::backend::ContainerEngine;
use crate::project::Layout;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Image name → id, as the engine answered; `None` when it did not answer.
pub(super) type Ids = Option<HashMap<String, String>>;

/// Image ids on their way: see the module documentation.
pub struct Prefetch {
    /// Until the run takes it.
    task: Option<JoinHandle<Ids>>,
}

impl Prefetch {
    /// Starts asking `engine`, in the background, for the ids of the images the cache
    /// of the project laid out as `layout` names. Needs a tokio runtime.
    pub fn start<E: ContainerEngine>(engine: Arc<E>, layout: &Layout) -> Self {
        let dir = layout.cache();
        let task = tokio::spawn(async move {
            let images = crate::cache::images_named(&dir);
            image_ids(engine, images).await
        });
        Self { task: Some(task) }
    }

    /// The answer (`None`: the engine did not answer).
    pub(super) async fn answer(mut self) -> Ids {
        self.task.take()?.await.ok().flatten()
    }
}

impl Drop for Prefetch {
    /// A run that does not use it (the cache off, forced) does not wait for it.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Inspections of images in flight at once: a cache may name many images (those of
/// scenarios since removed too, until their entries are evicted).
const AT_ONCE: usize = 8;

/// The ids of those of `images` the engine has; `None` when it did not answer (then
/// nothing is asked again: a run that must run finds out why).
pub(super) async fn image_ids<E: ContainerEngine>(engine: Arc<E>, images: BTreeSet<String>) -> Ids {
    use futures_util::StreamExt as _;
    let asked = images.into_iter().map(|image| {
        let engine = engine.clone();
        async move {
            let info = engine.image(&image).await?;
            Ok::<_, crate::backend::EngineError>(info.map(|i| (image, i.id)))
        }
    });
    let found: Vec<_> = futures_util::stream::iter(asked)
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut ids = HashMap::new();
    for one in found {
        ids.extend(one.ok()?);
    }
    Some(ids)
}
