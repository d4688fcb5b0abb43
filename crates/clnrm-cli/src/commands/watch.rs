//! `clnrm watch`: run once, then on every batch of saves re-render and re-validate the
//! files they affect (following `{% include/import/extends %}`, so editing a shared
//! partial re-runs every template that uses it, the host paths their services
//! bind-mount, so editing a mounted config re-runs its scenarios, and the contexts
//! their services are built from, so editing the app rebuilds it, or copies the change
//! into the containers of its last image under `develop` rules) and run their
//! scenarios; the cache makes unchanged ones free. One session of warm containers
//! serves every cycle. A save
//! that does not validate prints its diagnostics and the watch goes on. Saves during a
//! cycle are queued into one follow-up cycle. Ctrl-C ends it with no container left.

use super::run::{finish, flags, pipeline_error, resolve};
use super::{Output, connect_engine, end_session, prepare, print_prepared, runtime, watch_signals};
use crate::cli::WatchArgs;
use crate::exit;
use crate::sink::CliSink;
use clnrm_core::backend::Engine;
use clnrm_core::discover::is_test_file_name;
use clnrm_core::exec::{Session, Stop};
use clnrm_core::pipeline::{self, Host, Prepared};
use clnrm_core::plan::{file_contexts, file_inputs};
use clnrm_core::project::{Layout, Project};
use clnrm_core::watch::{Filter, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs the command.
pub fn run(args: WatchArgs) -> i32 {
    match runtime() {
        Ok(rt) => rt.block_on(watch(args)),
        Err(code) => code,
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Test file → the templates it imports, includes or extends.
fn dependency_map(prepared: &Prepared) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    prepared
        .files
        .iter()
        .map(|f| {
            (
                canonical(&f.path),
                f.dependencies.iter().map(|d| canonical(d)).collect(),
            )
        })
        .collect()
}

/// Test file → the host paths its services bind-mount.
fn input_map(prepared: &Prepared) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    prepared
        .files
        .iter()
        .map(|f| (canonical(&f.path), file_inputs(f)))
        .collect()
}

/// Test file → the contexts its services are built from, each with its Dockerfiles.
fn context_map(prepared: &Prepared) -> BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> {
    prepared
        .files
        .iter()
        .map(|f| (canonical(&f.path), file_contexts(f)))
        .collect()
}

/// Every context of a map of test file → contexts, with all their Dockerfiles.
fn all_contexts(
    contexts: &BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>,
) -> BTreeMap<PathBuf, BTreeSet<String>> {
    let mut out: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (context, dockerfiles) in contexts.values().flatten() {
        out.entry(context.clone())
            .or_default()
            .extend(dockerfiles.iter().cloned());
    }
    out
}

/// Every path of a map of test file → paths (mounted host paths, build contexts).
fn all_inputs(inputs: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> BTreeSet<PathBuf> {
    inputs.values().flatten().cloned().collect()
}

/// The test files a batch of changed paths affects (through templates they use, host
/// paths they mount or contexts they build); `None` means all of them.
fn affected(
    batch: &BTreeSet<PathBuf>,
    deps: &BTreeMap<PathBuf, Vec<PathBuf>>,
    inputs: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    contexts: &BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>,
) -> Option<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for p in batch {
        let p = canonical(p);
        if p.ends_with(Layout::CONFIG) {
            return None;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_test_file_name(&name) && p.exists() {
            out.insert(p.clone());
        }
        for (file, uses) in deps {
            if uses.contains(&p) {
                out.insert(file.clone());
            }
        }
        // A mounted path may be written as the user wrote it (no symlinks resolved).
        let raw = p.clone();
        let under = |m: &PathBuf| raw.starts_with(m) || p.starts_with(canonical(m));
        for (file, mounts) in inputs {
            if mounts.iter().any(under) {
                out.insert(file.clone());
            }
        }
        for (file, built) in contexts {
            if built.keys().any(under) {
                out.insert(file.clone());
            }
        }
    }
    Some(out)
}

struct Watch {
    args: WatchArgs,
    session: Session<Engine>,
    stop: Stop,
    deps: BTreeMap<PathBuf, Vec<PathBuf>>,
    inputs: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    contexts: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>,
    /// Files in mounted host paths the runs themselves write: their changes start no
    /// cycle.
    written: BTreeSet<PathBuf>,
}

async fn watch(args: WatchArgs) -> i32 {
    let stop = Stop::default();
    let cancel = stop.interrupt.clone();
    tokio::spawn(watch_signals(stop.clone()));
    let paths = if args.run.paths.is_empty() {
        vec![PathBuf::from("tests")]
    } else {
        args.run.paths.clone()
    };
    let first = prepare(&paths, &args.run.vars);
    let project = first.project.clone();
    let engine = match connect_engine(&project.config.executor).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let config = match resolve(&flags(&args.run), &first) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let session = pipeline::start_session(engine, &first, &config, true)
        .await
        .remember_builds()
        .networks_ahead();
    for w in session.warnings() {
        eprintln!("warning: {w}");
    }
    let debounce = Duration::from_millis(args.debounce.unwrap_or(project.config.watch.debounce_ms));
    let inputs = input_map(&first);
    // Made by the first cycle if not there yet: named as the events will name it.
    let reports = output_paths(
        args.run
            .report_dir
            .iter()
            .cloned()
            .chain(first.files.iter().flat_map(clnrm_core::plan::report_files)),
    );
    let source = match start_source(&project, &paths, &all_inputs(&inputs), &reports) {
        Ok((s, failed)) => {
            for f in failed {
                eprintln!("warning: {f}; its changes start no cycle");
            }
            s
        }
        Err(e) => {
            eprintln!(
                "error: cannot watch {}: {e}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            end_session(&session, &stop).await;
            return exit::ENVIRONMENT;
        }
    };
    let mut w = Watch {
        args,
        session,
        stop: stop.clone(),
        deps: dependency_map(&first),
        inputs,
        contexts: context_map(&first),
        written: BTreeSet::new(),
    };
    let watched_inputs = source.inputs();
    for f in watched_inputs.contexts(&all_contexts(&w.contexts)) {
        eprintln!("warning: {f}; its changes start no cycle");
    }
    // What earlier runs wrote into their own mounts starts no cycle.
    watched_inputs.ignore(&clnrm_core::inputs::written::files(
        &clnrm_core::inputs::written::load(&project.layout().cache()),
    ));
    w.cycle(first).await;
    watched_inputs.ignore(&w.written);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stopping = cancel.clone();
    std::thread::spawn(move || {
        while let Some(batch) = source.next_batch(debounce, &|| stopping.is_cancelled()) {
            if tx.send(batch).is_err() {
                return;
            }
        }
    });
    loop {
        eprintln!("watching for changes (Ctrl-C to stop)");
        let mut batch = tokio::select! {
            b = rx.recv() => match b { Some(b) => b, None => break },
            () = cancel.cancelled() => break,
        };
        // Saves that arrived during the last cycle make one follow-up cycle.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        let targets = match affected(&batch, &w.deps, &w.inputs, &w.contexts) {
            None => paths.clone(),
            Some(files) if files.is_empty() => continue,
            Some(files) => files.into_iter().collect(),
        };
        let prepared = prepare(&targets, &w.args.run.vars);
        w.deps.extend(dependency_map(&prepared));
        w.inputs.extend(input_map(&prepared));
        w.contexts.extend(context_map(&prepared));
        // A `[report]` table added since is clnrm's output from now on.
        watched_inputs.outputs(output_paths(
            prepared
                .files
                .iter()
                .flat_map(clnrm_core::plan::report_files),
        ));
        for f in watched_inputs
            .add(&all_inputs(&w.inputs))
            .into_iter()
            .chain(watched_inputs.contexts(&all_contexts(&w.contexts)))
        {
            eprintln!("warning: {f}; its changes start no cycle");
        }
        w.cycle(prepared).await;
        watched_inputs.ignore(&w.written);
        if cancel.is_cancelled() {
            break;
        }
    }
    end_session(&w.session, &stop).await;
    exit::INTERRUPTED
}

/// Paths clnrm writes, as events may name them: as written (absolute, `..` resolved
/// by its text: a mounted path is watched as written) and with links resolved.
fn output_paths(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let lexical = clnrm_core::model::host_path_in(&p.to_string_lossy(), Path::new("."));
        if let Ok(real) = lexical.canonicalize()
            && real != lexical
        {
            out.push(real);
        }
        out.push(lexical);
    }
    out
}

fn start_source(
    project: &Project,
    paths: &[PathBuf],
    inputs: &BTreeSet<PathBuf>,
    reports: &[PathBuf],
) -> notify::Result<(Source, Vec<String>)> {
    let root = canonical(&project.root);
    let cfg = &project.config.watch;
    let filter = Filter::new(&root, &cfg.patterns, &cfg.ignore_patterns, reports);
    let mut watched: Vec<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
    let layout = Layout::new(&root, &project.config.diff.baseline_path);
    for dir in [layout.templates(), layout.dir()] {
        if dir.is_dir() {
            watched.push(dir);
        }
    }
    Source::new(&watched, filter, inputs)
}

impl Watch {
    /// One cycle: the run pipeline over `prepared`, in the watch's session, with
    /// every flag of `run` honoured.
    async fn cycle(&mut self, prepared: Prepared) {
        if print_prepared(&prepared, "waiting for the next save").is_err() {
            return;
        }
        let Ok(config) = resolve(&flags(&self.args.run), &prepared) else {
            return;
        };
        let format = self.args.run.format;
        let sink = CliSink::new(Output::of(format));
        let host = Host::Session(&self.session);
        match pipeline::run(&prepared, &config, host, sink, self.stop.clone()).await {
            Ok(ran) => {
                finish(format, &prepared, &config, &ran);
                self.written.extend(clnrm_core::inputs::written::files(
                    &ran.concluded.written_inputs,
                ));
            }
            Err(e) => {
                pipeline_error(&e);
                eprintln!("waiting for the next save");
            }
        }
    }
}
