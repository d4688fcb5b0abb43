//! An in-memory engine for unit tests of scheduling, cancellation and the pool's
//! accounting: containers, networks and labels are bookkeeping; an attached
//! container's main process is a tiny stand-in for the agent's shell that answers
//! clnrm's scripts (`sleep`, `false`, `echo`, the hygiene checks) the way `sh` would.
//! Every call can be made to hang (`stall`), to try the deadlines. End-to-end tests
//! use the real engine.

use super::{
    Attached, Chunk, ContainerEngine, ContainerSpec, ContainerState, ContainerView, Details,
    EngineError, ExecSpec, Execution, ImageInfo, Labels, Listed, ListedImage,
};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// The in-memory engine; clones share one state.
#[derive(Clone, Default)]
pub struct FakeEngine {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    stall: AtomicBool,
    created: AtomicUsize,
    networks_made: AtomicUsize,
    removed: AtomicUsize,
    pings: AtomicUsize,
    images_asked: AtomicUsize,
    builds: AtomicUsize,
    /// Builds fail from now on (as a builder's error).
    broken_builds: AtomicBool,
    /// Container creates panic from now on.
    panicking_creates: AtomicBool,
    /// Builds wait until this is false.
    held_builds: AtomicBool,
    /// Archives put into containers.
    puts: AtomicUsize,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Exec id → its exit code (`false` exits 1, anything else 0).
    execs: BTreeMap<String, i64>,
    /// The fixture snapshots and built images made (the only ones there are).
    snapshots: std::collections::BTreeSet<String>,
    containers: BTreeMap<String, Container>,
    networks: BTreeMap<String, Labels>,
    volumes: BTreeMap<String, Labels>,
    /// Image → how many times it was rebuilt (its id changes each time).
    rebuilt: BTreeMap<String, u32>,
    /// The images built or snapshotted, by id, with their labels (what `images` lists).
    listed: BTreeMap<String, ListedImage>,
    /// Containers of another process's (a CI job's) that the engine runs.
    views: BTreeMap<String, ContainerView>,
    /// (network, container) connected by [`ContainerEngine::connect`], in order.
    connected: Vec<(String, String)>,
    /// Connections made so far.
    joins: usize,
}

impl State {
    /// Records image `tag` (id `sha256:<tag>`) with `labels`, made after every other.
    fn list_image(&mut self, tag: &str, labels: &Labels) {
        self.next += 1;
        let created = self.next as i64;
        self.listed.insert(
            format!("sha256:{tag}"),
            ListedImage {
                id: format!("sha256:{tag}"),
                tags: vec![tag.to_owned()],
                labels: labels.clone(),
                size: 0,
                created,
            },
        );
    }
}

struct Container {
    labels: Labels,
    running: bool,
}

impl FakeEngine {
    /// A fresh engine with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Containers that exist now.
    pub fn live(&self) -> usize {
        self.lock().containers.len()
    }

    /// Networks that exist now.
    pub fn networks(&self) -> usize {
        self.lock().networks.len()
    }

    /// Networks created so far.
    pub fn networks_made(&self) -> usize {
        self.inner.networks_made.load(Ordering::SeqCst)
    }

    /// Containers created so far.
    pub fn created(&self) -> usize {
        self.inner.created.load(Ordering::SeqCst)
    }

    /// Times it was pinged (a run pings its engine before it starts a session).
    pub fn pings(&self) -> usize {
        self.inner.pings.load(Ordering::SeqCst)
    }

    /// Images built.
    pub fn builds(&self) -> usize {
        self.inner.builds.load(Ordering::SeqCst)
    }

    /// Builds wait from now on, until [`FakeEngine::release_builds`].
    pub fn hold_builds(&self) {
        self.inner.held_builds.store(true, Ordering::SeqCst);
    }

    /// Builds waiting go on.
    pub fn release_builds(&self) {
        self.inner.held_builds.store(false, Ordering::SeqCst);
    }

    /// Every build from now on fails.
    pub fn break_builds(&self) {
        self.inner.broken_builds.store(true, Ordering::SeqCst);
    }

    /// Every container create from now on panics (a defect somewhere in clnrm).
    pub fn panic_on_create(&self) {
        self.inner.panicking_creates.store(true, Ordering::SeqCst);
    }

    /// Archives put into containers so far.
    pub fn puts(&self) -> usize {
        self.inner.puts.load(Ordering::SeqCst)
    }

    /// Whether an image built, snapshotted or tagged here is named `tag`.
    pub fn has_image(&self, tag: &str) -> bool {
        self.lock().snapshots.contains(tag)
    }

    /// Times an image was asked about.
    pub fn images_asked(&self) -> usize {
        self.inner.images_asked.load(Ordering::SeqCst)
    }

    /// Gives `image` a new id, as a rebuild does.
    pub fn rebuild(&self, image: &str) {
        *self.lock().rebuilt.entry(image.to_owned()).or_default() += 1;
    }

    /// The fixture snapshot images there are.
    pub fn snapshot_images(&self) -> usize {
        self.lock().snapshots.len()
    }

    /// Containers removed so far.
    pub fn removed(&self) -> usize {
        self.inner.removed.load(Ordering::SeqCst)
    }

    /// Runs `view` as a container of its own (clnrm in a CI job's container).
    pub fn add_view(&self, view: ContainerView) {
        self.lock().views.insert(view.id.clone(), view);
    }

    /// What is connected now by [`ContainerEngine::connect`]: (network, container),
    /// in the order connected.
    pub fn connected(&self) -> Vec<(String, String)> {
        self.lock().connected.clone()
    }

    /// Connections [`ContainerEngine::connect`] made so far.
    pub fn joins(&self) -> usize {
        self.lock().joins
    }

    /// Makes every call hang (`true`) or answer again.
    pub fn stall(&self, on: bool) {
        self.inner.stall.store(on, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn gate(&self) {
        while self.inner.stall.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Answers one script of the agent the way `sh` would, for the commands the tests use.
async fn answer(script: &str) -> (String, i64) {
    let mut out = String::new();
    let mut code = 0;
    for line in script.lines() {
        if let Some(rest) = line.split("exec sleep ").nth(1) {
            let secs: f64 = rest
                .split([')', ' '])
                .next()
                .and_then(|s| s.trim_matches('\'').parse().ok())
                .unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        }
        if line.contains("exec false") || line.contains("exec 'false'") {
            code = 1;
        }
        if let Some(rest) = line.split("exec echo ").nth(1) {
            out.push_str(rest.split(')').next().unwrap_or("").trim_matches('\''));
            out.push('\n');
        }
        if line.contains("set -- /proc/[0-9]*") {
            out.push_str("1 0 0\n");
        }
        if line.contains("for f in /etc/hosts /etc/resolv.conf /etc/hostname") {
            out.push_str("== /etc/hosts\n== /etc/resolv.conf\n== /etc/hostname\n");
        }
    }
    (out, code)
}

/// The shell behind an attached container: reads scripts from `input`, answers each
/// on `output` with the markers the agent waits for.
async fn shell(
    input: tokio::io::DuplexStream,
    output: mpsc::UnboundedSender<Result<Chunk, EngineError>>,
) {
    let mut lines = tokio::io::BufReader::new(input).lines();
    let mut script = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let marker = line
            .strip_prefix("printf '\\n")
            .and_then(|rest| rest.split(" %d").next())
            .map(str::to_owned);
        let Some(mark) = marker else {
            script.push_str(&line);
            script.push('\n');
            continue;
        };
        let (out, code) = answer(&script).await;
        script.clear();
        let stdout = format!("{out}\n{mark} {code}\n");
        let stderr = format!("\n{mark}\n");
        if output.send(Ok(Chunk::Stdout(Bytes::from(stdout)))).is_err()
            || output.send(Ok(Chunk::Stderr(Bytes::from(stderr)))).is_err()
        {
            return;
        }
    }
}

impl ContainerEngine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.gate().await;
        self.inner.pings.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, EngineError> {
        self.gate().await;
        self.inner.images_asked.fetch_add(1, Ordering::SeqCst);
        // Snapshots and built images are there once made.
        let snapshot =
            image.starts_with(super::SNAPSHOT_REPO) || image.starts_with(super::BUILD_REPO);
        let there = if snapshot {
            self.lock().snapshots.contains(image)
        } else {
            !image.contains("missing")
        };
        let generation = self.lock().rebuilt.get(image).copied().unwrap_or_default();
        Ok(there.then(|| ImageInfo {
            id: format!("sha256:{image}.{generation}"),
            cmd: vec!["sh".into()],
            entrypoint: Vec::new(),
            user: String::new(),
            volumes: Vec::new(),
            size: 0,
            labels: Labels::new(),
            triggers: 0,
        }))
    }

    async fn pull(&self, image: &str) -> Result<(), EngineError> {
        self.gate().await;
        Err(EngineError::ImageMissing {
            image: image.to_owned(),
            reason: "no registry in a fake".into(),
        })
    }

    async fn create_network(&self, name: &str, labels: &Labels) -> Result<String, EngineError> {
        self.gate().await;
        self.inner.networks_made.fetch_add(1, Ordering::SeqCst);
        self.lock().networks.insert(name.to_owned(), labels.clone());
        Ok(name.to_owned())
    }

    async fn network_containers(&self, id: &str) -> Result<Vec<String>, EngineError> {
        self.gate().await;
        let st = self.lock();
        Ok(st
            .connected
            .iter()
            .filter(|(n, _)| n == id)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn network_gateway(&self, _network: &str) -> Result<Option<IpAddr>, EngineError> {
        self.gate().await;
        Ok(None)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.gate().await;
        let mut st = self.lock();
        // As an engine does: a network a container is still connected to stays.
        if st.connected.iter().any(|(n, _)| n == id) {
            return Err(EngineError::Api(format!(
                "network {id} has active endpoints"
            )));
        }
        st.networks.remove(id);
        Ok(())
    }

    async fn connect(&self, network: &str, container: &str) -> Result<Option<IpAddr>, EngineError> {
        self.gate().await;
        let mut st = self.lock();
        if !st.networks.contains_key(network) && network != super::DEFAULT_NETWORK {
            return Err(EngineError::Gone(format!("network {network}")));
        }
        let pair = (network.to_owned(), container.to_owned());
        if !st.connected.contains(&pair) {
            st.connected.push(pair);
            st.joins += 1;
        }
        let n = st.connected.len() as u8;
        Ok(Some(IpAddr::from([10, 99, n, 2])))
    }

    async fn disconnect(&self, network: &str, container: &str) -> Result<(), EngineError> {
        self.gate().await;
        self.lock()
            .connected
            .retain(|(n, c)| !(n == network && c == container));
        Ok(())
    }

    async fn container_view(&self, id: &str) -> Result<Option<ContainerView>, EngineError> {
        self.gate().await;
        Ok(self.lock().views.get(id).cloned())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.gate().await;
        assert!(
            !self.inner.panicking_creates.load(Ordering::SeqCst),
            "the fake engine was told to panic on create"
        );
        let mut st = self.lock();
        st.next += 1;
        let id = format!("fake{:08}", st.next);
        st.containers.insert(
            id.clone(),
            Container {
                labels: spec.labels.clone(),
                running: false,
            },
        );
        self.inner.created.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    async fn attach(&self, id: &str) -> Result<Attached, EngineError> {
        self.gate().await;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = mpsc::unbounded_channel();
        if !self.lock().containers.contains_key(id) {
            return Err(EngineError::Gone(id.to_owned()));
        }
        tokio::spawn(shell(theirs, tx));
        let output = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed();
        Ok(Attached {
            input: Box::pin(ours),
            output,
        })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.gate().await;
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| EngineError::Gone(id.to_owned()))?;
        c.running = true;
        Ok(())
    }

    async fn exec_start(&self, _id: &str, spec: &ExecSpec) -> Result<Execution, EngineError> {
        self.gate().await;
        let code = i64::from(spec.argv.first().is_some_and(|p| p == "false"));
        let mut st = self.lock();
        st.next += 1;
        let id = format!("exec{}", st.next);
        st.execs.insert(id.clone(), code);
        Ok(Execution {
            id,
            output: futures_util::stream::empty().boxed(),
        })
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<i64, EngineError> {
        self.gate().await;
        Ok(self.lock().execs.get(exec).copied().unwrap_or(0))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, EngineError> {
        self.gate().await;
        let st = self.lock();
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| EngineError::Gone(id.to_owned()))?;
        Ok(ContainerState {
            running: c.running,
            exit_code: None,
            oom_killed: false,
        })
    }

    async fn stdout_log(&self, _id: &str) -> Result<Vec<u8>, EngineError> {
        self.gate().await;
        Ok(Vec::new())
    }

    async fn log(&self, _id: &str, _cap: usize) -> Result<Vec<u8>, EngineError> {
        self.gate().await;
        Ok(Vec::new())
    }

    async fn log_tail(&self, _id: &str, _lines: usize) -> Result<Vec<u8>, EngineError> {
        self.gate().await;
        Ok(Vec::new())
    }

    async fn details(&self, id: &str) -> Result<Details, EngineError> {
        self.gate().await;
        // An address on its network, as an engine gives each container (from its id's
        // number: `fake00000001` is 10.88.0.1).
        let n: u32 = id.trim_start_matches("fake").parse().unwrap_or(0);
        Ok(Details {
            ips: vec![IpAddr::from([10, 88, (n >> 8) as u8, n as u8])],
            ..Details::default()
        })
    }

    async fn changes(&self, _id: &str) -> Result<Vec<String>, EngineError> {
        self.gate().await;
        Ok(Vec::new())
    }

    async fn stop(&self, id: &str, _grace: std::time::Duration) -> Result<(), EngineError> {
        self.gate().await;
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.running = false;
        }
        Ok(())
    }

    async fn snapshot(
        &self,
        _id: &str,
        tag: &str,
        _volumes: &[String],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        self.gate().await;
        let mut state = self.lock();
        state.snapshots.insert(tag.to_owned());
        state.list_image(tag, labels);
        drop(state);
        Ok(format!("sha256:{tag}"))
    }

    async fn relabel(
        &self,
        _image: &str,
        tag: &str,
        labels: &Labels,
    ) -> Result<String, EngineError> {
        // As a snapshot of a container that changed nothing.
        self.snapshot("", tag, &[], labels).await
    }

    async fn put_files(&self, _id: &str, _files: Vec<u8>) -> Result<(), EngineError> {
        self.inner.puts.fetch_add(1, Ordering::SeqCst);
        self.gate().await;
        Ok(())
    }

    async fn tag_image(&self, image: &str, tag: &str) -> Result<(), EngineError> {
        self.gate().await;
        let mut state = self.lock();
        state.snapshots.insert(tag.to_owned());
        if let Some(listed) = state
            .listed
            .values_mut()
            .find(|i| i.id == image || i.tags.iter().any(|t| t == image))
        {
            listed.tags.push(tag.to_owned());
        }
        Ok(())
    }

    async fn images(&self, key: &str) -> Result<Vec<ListedImage>, EngineError> {
        self.gate().await;
        let (name, value) = match key.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (key, None),
        };
        Ok(self
            .lock()
            .listed
            .values()
            .filter(|i| match (i.labels.get(name), value) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .cloned()
            .collect())
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        self.gate().await;
        let mut state = self.lock();
        state.snapshots.remove(id);
        if let Some(gone) = state.listed.remove(id) {
            for tag in &gone.tags {
                state.snapshots.remove(tag);
            }
        }
        // A tag: it goes, and its image with its last tag.
        let tagged: Vec<String> = state
            .listed
            .iter()
            .filter(|(_, i)| i.tags.iter().any(|t| t == id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in tagged {
            if let Some(image) = state.listed.get_mut(&key) {
                image.tags.retain(|t| t != id);
                if image.tags.is_empty() {
                    state.listed.remove(&key);
                }
            }
        }
        Ok(())
    }

    async fn build(
        &self,
        spec: &super::BuildSpec,
        context: Vec<u8>,
    ) -> Result<super::BuildOutcome, EngineError> {
        self.gate().await;
        if context.is_empty() {
            return Ok(super::BuildOutcome::Failed {
                message: "no build context".into(),
                output: String::new(),
            });
        }
        while self.inner.held_builds.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if self.inner.broken_builds.load(Ordering::SeqCst) {
            return Ok(super::BuildOutcome::Failed {
                message: "The command '/bin/sh -c make' returned a non-zero code: 2".into(),
                output: "Step 1/2 : FROM scratch\nStep 2/2 : COPY src/ /app/src/\n".into(),
            });
        }
        self.inner.builds.fetch_add(1, Ordering::SeqCst);
        let mut state = self.lock();
        state.snapshots.insert(spec.tag.clone());
        state.list_image(&spec.tag, &Labels::new());
        drop(state);
        Ok(super::BuildOutcome::Built {
            id: format!("sha256:{}", spec.tag),
            output: String::new(),
        })
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.gate().await;
        if self.lock().containers.remove(id).is_some() {
            self.inner.removed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn list(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.gate().await;
        Ok(self
            .lock()
            .containers
            .iter()
            .filter(|(_, c)| c.labels.contains_key(key))
            .map(|(id, c)| Listed {
                id: id.clone(),
                labels: c.labels.clone(),
            })
            .collect())
    }

    async fn list_networks(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.gate().await;
        Ok(self
            .lock()
            .networks
            .iter()
            .filter(|(_, l)| l.contains_key(key))
            .map(|(id, l)| Listed {
                id: id.clone(),
                labels: l.clone(),
            })
            .collect())
    }

    async fn create_volume(
        &self,
        name: &str,
        _options: &[(String, String)],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        self.gate().await;
        self.lock().volumes.insert(name.to_owned(), labels.clone());
        Ok(format!("/fake/volumes/{name}/_data"))
    }

    async fn volume(&self, name: &str) -> Result<Option<String>, EngineError> {
        self.gate().await;
        let there = self.lock().volumes.contains_key(name);
        Ok(there.then(|| format!("/fake/volumes/{name}/_data")))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.gate().await;
        self.lock().volumes.remove(name);
        Ok(())
    }

    async fn list_volumes(&self, key: &str) -> Result<Vec<Listed>, EngineError> {
        self.gate().await;
        Ok(self
            .lock()
            .volumes
            .iter()
            .filter(|(_, l)| match key.split_once('=') {
                Some((k, v)) => l.get(k).is_some_and(|have| have == v),
                None => l.contains_key(key),
            })
            .map(|(id, l)| Listed {
                id: id.clone(),
                labels: l.clone(),
            })
            .collect())
    }
}
