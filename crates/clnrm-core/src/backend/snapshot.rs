//! Snapshots of stopped containers through the Docker API (SPEC §7.3).
//!
//! A commit keeps a container's filesystem but not what is in the volumes its image
//! declares (a database's data directory). So, when the image declares volumes, each
//! volume's content is read from the stopped container as a tar archive and added on
//! top of the commit by a build (`FROM <commit>` + `ADD vN.tar <parent>/`, which
//! unpacks it with owners and modes kept). A container created from the result gets
//! fresh anonymous volumes that the engine fills from the image: the snapshot's data.

use super::docker::{Docker, api, to_hash};
use super::{EngineError, Labels, SNAPSHOT_VOLUMES_CAP};
use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, CommitContainerOptions, DownloadFromContainerOptions,
    RemoveImageOptions,
};
use futures_util::StreamExt;
use sha2::Digest;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// `LABEL "k"="v" …`, each part a JSON string (a Dockerfile reads them so).
fn label_instruction(labels: &Labels) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
            format!("{}={}", q(k), q(v))
        })
        .collect();
    format!("LABEL {}", pairs.join(" "))
}

/// Whether the tar archive at `path` names its first entry by a directory's name
/// (Docker: `data/`) rather than as the root of what it holds (Podman: `/` or `./`).
async fn names_its_directory(path: &Path) -> std::io::Result<bool> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut header = [0u8; 512];
    // Extended headers (pax `x`/`g`, GNU long names `L`) come before the entry.
    for _ in 0..4 {
        if file.read_exact(&mut header).await.is_err() {
            return Ok(true);
        }
        let kind = header[156];
        if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            let size_field = std::str::from_utf8(&header[124..136]).unwrap_or("0");
            let size = u64::from_str_radix(size_field.trim_matches(['\0', ' ']), 8).unwrap_or(0);
            let skip = size.div_ceil(512) * 512;
            let mut rest = (&mut file).take(skip);
            tokio::io::copy(&mut rest, &mut tokio::io::sink()).await?;
            continue;
        }
        let end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..end]);
        let name = name.trim_start_matches('/').trim_start_matches("./");
        return Ok(!name.is_empty() && name != ".");
    }
    Ok(true)
}

impl Docker {
    pub(super) async fn make_snapshot(
        &self,
        id: &str,
        tag: &str,
        volumes: &[String],
        labels: &Labels,
    ) -> Result<String, EngineError> {
        let config = ContainerConfig {
            labels: Some(to_hash(labels)),
            ..Default::default()
        };
        let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));

        if volumes.is_empty() {
            let options = CommitContainerOptions {
                container: Some(id.to_owned()),
                repo: Some(repo.to_owned()),
                tag: Some(version.to_owned()),
                pause: false,
                ..Default::default()
            };
            let made = self
                .client()
                .commit_container(options, config)
                .await
                .map_err(api)?;
            // Podman's commit leaves the labels of `config` out (and reads a LABEL in
            // `changes` wrongly): a build adds them, as it does with volumes.
            let labelled = self
                .client()
                .inspect_image(&made.id)
                .await
                .map_err(api)?
                .config
                .and_then(|c| c.labels)
                .is_some_and(|have| labels.iter().all(|(k, v)| have.get(k) == Some(v)));
            if labelled {
                return Ok(made.id);
            }
            let dir = Scratch::new()?;
            return self
                .add_volumes(id, &made.id, tag, &[], labels, &dir.0)
                .await;
        }
        let options = CommitContainerOptions {
            container: Some(id.to_owned()),
            pause: false,
            ..Default::default()
        };
        let base = self
            .client()
            .commit_container(options, config)
            .await
            .map_err(api)?
            .id;
        let dir = Scratch::new()?;
        let built = self
            .add_volumes(id, &base, tag, volumes, labels, &dir.0)
            .await;
        if built.is_err() {
            // The commit is of no use without its volumes.
            let _ = self.remove_image_quietly(&base).await;
        }
        built
    }

    /// Makes image `tag` of `image`'s layers and configuration with `labels` added,
    /// without a container: a load of an archive holding the configuration alone
    /// (the engine has every layer it names, so it reads none). Docker does this in
    /// tens of ms where a commit on fuse-overlayfs walks the whole file system for
    /// seconds; an engine that wants the layers too (Podman) refuses, and the caller
    /// commits instead.
    pub(super) async fn relabel_image(
        &self,
        image: &str,
        tag: &str,
        labels: &Labels,
    ) -> Result<String, EngineError> {
        let found = self.client().inspect_image(image).await.map_err(api)?;
        let layers = found
            .root_fs
            .as_ref()
            .and_then(|r| r.layers.clone())
            .unwrap_or_default();
        if layers.is_empty() {
            return Err(EngineError::Api(format!("image {image} names no layers")));
        }
        let mut config = serde_json::to_value(found.config.clone().unwrap_or_default())
            .map_err(|e| EngineError::Api(e.to_string()))?;
        let mut all = config
            .get("Labels")
            .and_then(|l| serde_json::from_value::<Labels>(l.clone()).ok())
            .unwrap_or_default();
        all.extend(labels.clone());
        config["Labels"] = serde_json::json!(all);
        let document = serde_json::json!({
            "architecture": found.architecture,
            "os": found.os,
            "variant": found.variant,
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": layers },
            "created": found.created,
        });
        let document =
            serde_json::to_vec(&document).map_err(|e| EngineError::Api(e.to_string()))?;
        let digest = crate::digest::hex(&sha2::Sha256::digest(&document));
        let config_name = format!("{digest}.json");
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": (0..layers.len()).map(|i| format!("{i}/layer.tar")).collect::<Vec<_>>(),
        }]))
        .map_err(|e| EngineError::Api(e.to_string()))?;
        let mut archive = Vec::new();
        for (name, body) in [
            ("manifest.json", &manifest),
            (config_name.as_str(), &document),
        ] {
            archive.extend_from_slice(&header(name, body.len() as u64));
            archive.extend_from_slice(body);
            archive.resize(archive.len().div_ceil(512) * 512, 0);
        }
        archive.extend_from_slice(&[0u8; 1024]);
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut answers =
            self.client()
                .import_image(options, bollard::body_full(archive.into()), None);
        while let Some(answer) = answers.next().await {
            answer.map_err(api)?;
        }
        // What the engine made must be exactly that: the same layers, the labels.
        let made = self.client().inspect_image(tag).await.map_err(api)?;
        let same_layers = made.root_fs.and_then(|r| r.layers).as_ref() == Some(&layers);
        let labelled = made
            .config
            .and_then(|c| c.labels)
            .is_some_and(|have| labels.iter().all(|(k, v)| have.get(k) == Some(v)));
        let id = made.id.unwrap_or_default();
        if !same_layers || !labelled || id.is_empty() {
            let _ = self.remove_image_quietly(tag).await;
            return Err(EngineError::Api(format!(
                "loading a configuration for {tag} made another image"
            )));
        }
        Ok(id)
    }

    /// Builds `tag` from image `base` plus the content of `volumes` in container `id`,
    /// with `labels`.
    async fn add_volumes(
        &self,
        id: &str,
        base: &str,
        tag: &str,
        volumes: &[String],
        labels: &Labels,
        dir: &Path,
    ) -> Result<String, EngineError> {
        let io = |what: &str, e: std::io::Error| {
            EngineError::Api(format!("snapshot: {what} in {}: {e}", dir.display()))
        };
        let context = dir.join("context.tar");
        let mut out = tokio::fs::File::create(&context)
            .await
            .map_err(|e| io("creating the build context", e))?;
        // The labels again: Podman's commit leaves them out.
        let mut dockerfile = format!("FROM {base}\n{}\n", label_instruction(labels));
        let mut total = 0u64;
        for (i, volume) in volumes.iter().enumerate() {
            let name = format!("v{i}.tar");
            let part = dir.join(&name);
            let size = self.download(id, volume, &part, total).await?;
            let holds_the_directory = names_its_directory(&part)
                .await
                .map_err(|e| io("reading a volume's archive", e))?;
            total += size;
            append_header(&mut out, &name, size)
                .await
                .map_err(|e| io("writing the build context", e))?;
            let mut file = tokio::fs::File::open(&part)
                .await
                .map_err(|e| io("reading a volume's archive", e))?;
            tokio::io::copy(&mut file, &mut out)
                .await
                .map_err(|e| io("writing the build context", e))?;
            pad(&mut out, size)
                .await
                .map_err(|e| io("writing the build context", e))?;
            let _ = tokio::fs::remove_file(&part).await;
            // Docker's archive holds the volume's directory by its last name
            // (`data/…`): unpacked in its parent, it lands where it was. Podman's holds
            // the directory's content (`/`, `/x`): unpacked in the directory itself.
            let parent = if holds_the_directory {
                Path::new(volume)
                    .parent()
                    .map_or_else(|| "/".to_owned(), |p| p.display().to_string())
            } else {
                volume.clone()
            };
            let parent = format!("{}/", parent.trim_end_matches('/'));
            let add = serde_json::to_string(&[name.as_str(), parent.as_str()]).unwrap_or_default();
            dockerfile.push_str(&format!("ADD {add}\n"));
        }
        append_header(&mut out, "Dockerfile", dockerfile.len() as u64)
            .await
            .and(out.write_all(dockerfile.as_bytes()).await)
            .and(pad(&mut out, dockerfile.len() as u64).await)
            .and(out.write_all(&[0u8; 1024]).await)
            .and(out.flush().await)
            .map_err(|e| io("writing the build context", e))?;
        drop(out);
        let file = tokio::fs::File::open(&context)
            .await
            .map_err(|e| io("reading the build context", e))?;
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_owned()),
            q: true,
            rm: true,
            forcerm: true,
            // The labels come with the commit it starts from.
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let client = self.client();
        let mut progress = client.build_image(options, None, Some(body));
        while let Some(item) = progress.next().await {
            item.map_err(|e| EngineError::Api(format!("snapshot build: {}", api(e))))?;
        }
        match self.client().inspect_image(tag).await {
            Ok(found) => Ok(found.id.unwrap_or_default()),
            Err(e) => Err(api(e)),
        }
    }

    /// Saves the archive of `path` in container `id` to `to`; returns its size.
    /// `before` bytes of other volumes count towards [`SNAPSHOT_VOLUMES_CAP`].
    async fn download(
        &self,
        id: &str,
        path: &str,
        to: &Path,
        before: u64,
    ) -> Result<u64, EngineError> {
        let options = DownloadFromContainerOptions {
            path: path.to_owned(),
        };
        let client = self.client();
        let mut stream = client.download_from_container(id, Some(options));
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| EngineError::Api(format!("snapshot: {}: {e}", to.display())))?;
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(api)?;
            size += bytes.len() as u64;
            if before + size > SNAPSHOT_VOLUMES_CAP {
                return Err(EngineError::Api(format!(
                    "snapshot: the volumes hold more than {} GiB (at volume {path})",
                    SNAPSHOT_VOLUMES_CAP >> 30
                )));
            }
            file.write_all(&bytes)
                .await
                .map_err(|e| EngineError::Api(format!("snapshot: {}: {e}", to.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| EngineError::Api(format!("snapshot: {}: {e}", to.display())))?;
        Ok(size)
    }

    pub(super) async fn remove_image_quietly(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        match self.client().remove_image(id, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) => match api(e) {
                EngineError::Gone(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// A temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, EngineError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("clnrm-snapshot-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| EngineError::Api(format!("snapshot: creating {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ustar header of a regular file `name` (< 100 bytes) of `size` bytes.
fn header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o777_7777_7777 {
        octal(&mut h[124..136], size);
    } else {
        // Larger than 8 GiB: the base-256 form.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

async fn append_header(out: &mut tokio::fs::File, name: &str, size: u64) -> std::io::Result<()> {
    out.write_all(&header(name, size)).await
}

/// Zeros up to the next 512-byte block after `size` bytes of content.
async fn pad(out: &mut tokio::fs::File, size: u64) -> std::io::Result<()> {
    let rest = (512 - size % 512) % 512;
    out.write_all(&vec![0u8; rest as usize]).await
}

#[cfg(test)]
mod tests {
    use super::header;

    #[test]
    fn a_tar_header_is_what_tar_reads() {
        let h = header("Dockerfile", 1234);
        assert_eq!(&h[..10], b"Dockerfile");
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[257..262], b"ustar");
        // The checksum counts the checksum field as spaces.
        let mut copy = h;
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&b| u64::from(b)).sum();
        let field = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(field, 8).unwrap(), sum);
    }
}
