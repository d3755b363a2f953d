//! Images whose bytes depend on their inputs, not on the clock.
//!
//! BuildKit writes the wall clock into every image config it exports (`created` and each
//! history entry) and into the files COPY and RUN make, so two builds of the same inputs
//! got two image ids, and every scheduled rebuild moved every digest. The engine's
//! built-in BuildKit (20.10) ignores SOURCE_DATE_EPOCH, so dpy pins the times itself, the
//! same way on old and new engines: it takes the image BuildKit made (`docker save`
//! through the Engine API), writes every time of its config as the build's epoch, clamps
//! the file times of the layers the build added, and loads the result back (`docker
//! load`). The source's layers go back as they came.
//!
//! Only the -buildroot's builder (crate::builder) needs it: it is the one image a RUN
//! step makes. Every image dpy tags is assembled from layers dpy wrote (crate::assemble),
//! with the epoch's times from the start.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::archive::{self, SavedImage};
use crate::engine::Engine;
use crate::epoch::Epoch;
use crate::error::{Error, Result};

/// An image pinned to the epoch: its id and its config as the engine holds it (the
/// bytes whose digest is the id), for an image assembled over it.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub id: String,
    pub config: Vec<u8>,
}

/// Pins every time in the config of the image `id` (held by the tag `hold`) to `epoch`,
/// and the file times of the layers not in `kept` (the source's): the image is saved,
/// rewritten and loaded back under the same hold tag. Returns the new image; the old
/// one, now untagged, is removed.
///
/// The saved image goes through files, never whole into memory: a builder image is a
/// few hundred MB, and `--jobs` multiplies whatever one build holds.
pub async fn pin(
    engine: &Engine,
    id: &str,
    hold: &str,
    epoch: &Epoch,
    kept: &[String],
) -> Result<Pinned> {
    // A build BuildKit answered from its cache makes the image it made last time, and
    // that image's pinned form is in the engine already: no save and load for it.
    let key = pin_key(engine, id, epoch, kept).await;
    if let Some(pinned) = key.as_deref().and_then(pinned_before) {
        if pinned == id
            || engine.docker().inspect_image(&pinned).await.is_ok()
            || restore(engine, &pinned, hold).await
        {
            engine.hold_existing(&pinned, hold).await?;
            if pinned != id {
                engine.remove_if_untagged(id).await;
            }
            let config = crate::engine::config::of(engine, &pinned).await?;
            return Ok(Pinned { id: pinned, config });
        }
    }
    let pinned = save_rewrite_load(engine, id, hold, epoch, kept).await?;
    if let Some(key) = key {
        remember_pinned(&key, &pinned);
    }
    Ok(pinned)
}

/// Loads the pinned image `id` again from its remembered config alone, when the engine
/// still has its layers (an image made over it keeps them, after the pinned image itself
/// went with its hold): no save. False when either is missing.
async fn restore(engine: &Engine, id: &str, hold: &str) -> bool {
    let Some(config) = crate::engine::config::recall(id) else {
        return false;
    };
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&config) else {
        return false;
    };
    let Some(diff_ids) = parsed["rootfs"]["diff_ids"].as_array() else {
        return false;
    };
    let image = crate::assemble::Assembled {
        layers: diff_ids
            .iter()
            .filter_map(|d| d.as_str())
            .map(|d| crate::assemble::Layer::Present(d.to_string()))
            .collect(),
        config,
        hold: hold.to_string(),
    };
    // The id is checked against the config's digest by the load.
    crate::assemble::load(engine, std::slice::from_ref(&image))
        .await
        .is_ok_and(|ids| ids.first().map(String::as_str) == Some(id))
}

/// What the pinned form of the image `id` depends on, as the engine tells it without a
/// save: its config but for the times, its layers, its history's steps, and the
/// pinning's own inputs. Two images with one key pin to one image.
async fn pin_key(engine: &Engine, id: &str, epoch: &Epoch, kept: &[String]) -> Option<String> {
    let image = engine.docker().inspect_image(id).await.ok()?;
    let history = engine.docker().image_history(id).await.ok()?;
    let key = serde_json::json!({
        "dpy": env!("CARGO_PKG_VERSION"),
        "config": image.config,
        "layers": image.root_fs.and_then(|r| r.layers),
        "platform": [image.os, image.architecture, image.variant],
        "steps": history.iter().map(|h| &h.created_by).collect::<Vec<_>>(),
        "epoch": epoch.rfc3339(),
        "kept": kept,
    });
    Some(format!(
        "{:x}",
        Sha256::digest(serde_json::to_vec(&key).ok()?)
    ))
}

/// Pinned ids are remembered under the user's cache, one small file per key (and each
/// pinned image's config under its id, by engine::config).
const PINNED: &str = "pinned";

fn pinned_before(key: &str) -> Option<String> {
    let id = crate::cache::recall(PINNED, key)?;
    id.starts_with("sha256:").then_some(id)
}

/// Best effort: a cache that cannot be written only costs the next build a save.
fn remember_pinned(key: &str, pinned: &Pinned) {
    crate::cache::remember(PINNED, key, &pinned.id);
    crate::engine::config::remember(&pinned.id, &pinned.config);
}

/// The pinning itself: save, rewrite, load. The rewritten archive leaves out the kept
/// layers, which the engine holds already (the image was just built on them): Docker's
/// `load` opens a layer's file only when its store lacks that layer, so the source's
/// hundreds of MB are neither copied nor unpacked again. An engine that wants every
/// layer in the archive (another image store) gets a whole one.
async fn save_rewrite_load(
    engine: &Engine,
    id: &str,
    hold: &str,
    epoch: &Epoch,
    kept: &[String],
) -> Result<Pinned> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let saved = dir.path().join("saved.tar");
    let pinned = dir.path().join("pinned.tar");
    crate::engine::save::save(engine, id, &saved).await?;
    let mut without_kept = !kept.is_empty();
    loop {
        let (new_id, config) = {
            let (saved, pinned, hold, epoch, kept) = (
                saved.clone(),
                pinned.clone(),
                hold.to_string(),
                *epoch,
                kept.to_vec(),
            );
            tokio::task::spawn_blocking(move || {
                rewrite(&saved, &pinned, &hold, &epoch, &kept, without_kept)
            })
            .await
            .map_err(|e| Error::Engine(format!("rewriting {id}: {e}")))??
        };
        if new_id == id {
            return Ok(Pinned { id: new_id, config });
        }
        match load(engine, &pinned, hold).await {
            Ok(()) => {
                engine.remove_if_untagged(id).await;
                return Ok(Pinned { id: new_id, config });
            }
            Err(_) if without_kept => without_kept = false,
            Err(e) => return Err(e),
        }
    }
}

/// `docker load` of the archive at `path`, streamed from the file.
async fn load(engine: &Engine, path: &Path, hold: &str) -> Result<()> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let chunks = Box::pin(tokio_util::io::ReaderStream::new(file));
    crate::engine::save::load(engine, chunks, hold).await
}

/// Writes to `out` the saved image archive `saved` with its config's times pinned, the
/// file times of its layers not in `kept` clamped, and `tag` as its only tag; returns
/// the id of the image it holds (the digest of the new config) and that config. With `without_kept`,
/// the kept layers' files are left out (manifest.json still names them).
fn rewrite(
    saved: &Path,
    out: &Path,
    tag: &str,
    epoch: &Epoch,
    kept: &[String],
    without_kept: bool,
) -> Result<(String, Vec<u8>)> {
    let image = SavedImage::open(saved)?;
    let mut config: Value = serde_json::from_slice(&image.config).map_err(|e| image.broken(e))?;
    // The layers the image added to its base: their file times get clamped.
    let added: HashSet<&str> = image
        .layers
        .iter()
        .filter(|layer| !kept.contains(&layer.diff_id))
        .map(|layer| layer.path.as_str())
        .collect();
    let left_out: HashSet<&str> = image
        .layers
        .iter()
        .filter(|layer| without_kept && kept.contains(&layer.diff_id))
        .map(|layer| layer.path.as_str())
        .collect();

    // The archive file by file: each added layer clamped through a file of its own, the
    // rest as it came; the old config, tags and OCI index dropped (docker load then
    // reads manifest.json, the one place that names the new config).
    let dropped = [
        image.config_name.as_str(),
        "manifest.json",
        "repositories",
        "index.json",
        "oci-layout",
    ];
    let work = out.with_extension("layer");
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    // Layer path → (its new path, its new diff id), for the layers clamping changed.
    let mut renamed: HashMap<String, (String, String)> = HashMap::new();
    let mut written: HashSet<String> = HashSet::new();
    image.each_entry(|path, entry| {
        if dropped.contains(&path) || left_out.contains(path) || !written.insert(path.to_string()) {
            return Ok(());
        }
        let mut header = entry.header().clone();
        if !added.contains(path) {
            return builder
                .append_data(&mut header, path, entry)
                .map_err(|e| Error::io(out, e));
        }
        let clamped = clamp_layer(entry, &work, epoch.seconds()).map_err(|e| image.broken(e))?;
        let mut layer = std::fs::File::open(&work).map_err(|e| Error::io(&work, e))?;
        let new_path = match &clamped {
            // An OCI-layout archive names blobs by their digest: the name moves with it.
            Some(digest) if path.starts_with("blobs/sha256/") => {
                format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
            }
            _ => path.to_string(),
        };
        if let Some(digest) = clamped {
            renamed.insert(path.to_string(), (new_path.clone(), digest));
        }
        header.set_size(layer.metadata().map_err(|e| Error::io(&work, e))?.len());
        builder
            .append_data(&mut header, &new_path, &mut layer)
            .map_err(|e| Error::io(out, e))
    })?;
    let _ = std::fs::remove_file(&work);
    let (layer_paths, diff_ids): (Vec<String>, Vec<String>) = image
        .layers
        .iter()
        .map(|layer| match renamed.get(&layer.path) {
            Some((new_path, digest)) => (new_path.clone(), digest.clone()),
            None => (layer.path.clone(), layer.diff_id.clone()),
        })
        .unzip();
    config["rootfs"]["diff_ids"] = serde_json::json!(diff_ids);

    pin_config(&mut config, epoch);
    let config_bytes = serde_json::to_vec(&config).expect("a config serializes");
    let digest = format!("{:x}", Sha256::digest(&config_bytes));
    // Where the config sits: `<digest>.json` (docker-archive) or `blobs/sha256/<digest>`.
    let new_config_name = match image.config_name.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{digest}"),
        None => format!("{digest}.json"),
    };
    let manifest = archive::manifest(&new_config_name, tag, &layer_paths);
    for (path, data) in [
        (new_config_name.as_str(), config_bytes.as_slice()),
        ("manifest.json", manifest.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, path, data)
            .map_err(|e| Error::io(out, e))?;
    }
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::io(out, e))?;
    Ok((format!("sha256:{digest}"), config_bytes))
}

/// Copies a layer into `work` (uncompressed) and clamps its file times there; returns
/// its new diff id when a time changed, None when the layer is as it was.
fn clamp_layer(layer: &mut impl Read, work: &Path, epoch: u64) -> std::io::Result<Option<String>> {
    let mut head = [0u8; 2];
    let mut reader = std::io::BufReader::new(layer);
    {
        use std::io::BufRead;
        let available = reader.fill_buf()?;
        head[..available.len().min(2)].copy_from_slice(&available[..available.len().min(2)]);
    }
    {
        let mut file = std::fs::File::create(work)?;
        if head == [0x1f, 0x8b] {
            // A gzip'd layer (an OCI-layout save) is clamped uncompressed, which docker
            // load takes as well.
            std::io::copy(&mut flate2::read::GzDecoder::new(reader), &mut file)?;
        } else {
            std::io::copy(&mut reader, &mut file)?;
        }
    }
    let patches = clamp_times(&mut std::fs::File::open(work)?, epoch)?;
    if patches.is_empty() {
        return Ok(None);
    }
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(work)?;
        for (at, header) in &patches {
            file.write_all_at(header, *at)?;
        }
    }
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(work)?, &mut hasher)?;
    Ok(Some(format!("sha256:{:x}", hasher.finalize())))
}

/// The headers of a layer whose file time is later than `epoch`, each with that time
/// set to `epoch`: (offset, the new 512-byte header). Only those headers change (in
/// place, with their checksums): names, modes, contents and order stay byte for byte,
/// so a layer with nothing to clamp keeps its diff id. BuildKit writes the wall clock
/// into what COPY and RUN create, and the engine's 20.10 BuildKit cannot be told
/// otherwise.
fn clamp_times(layer: &mut impl Read, epoch: u64) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    let mut patches = Vec::new();
    let mut archive = tar::Archive::new(std::io::BufReader::new(layer));
    // Raw: long-name and PAX entries come as they are, each with its own header.
    for entry in archive.entries()?.raw(true) {
        let entry = entry?;
        if entry.header().mtime()? <= epoch {
            continue;
        }
        let mut header = entry.header().clone();
        header.set_mtime(epoch);
        header.set_cksum();
        patches.push((entry.raw_header_position(), header.as_bytes().to_vec()));
    }
    Ok(patches)
}

/// Every time of an image config: `created` and each history entry's.
fn pin_config(config: &mut Value, epoch: &Epoch) {
    let at = Value::String(epoch.rfc3339());
    if let Some(object) = config.as_object_mut() {
        object.insert("created".into(), at.clone());
    }
    if let Some(history) = config.get_mut("history").and_then(Value::as_array_mut) {
        for entry in history {
            if let Some(entry) = entry.as_object_mut() {
                entry.insert("created".into(), at.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rewrite` over bytes: the saved archive in, the rewritten one and its id out.
    fn rewrite_bytes(
        saved: &[u8],
        tag: &str,
        epoch: &Epoch,
        kept: &[String],
    ) -> Result<(Vec<u8>, String)> {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.tar"), dir.path().join("out.tar"));
        std::fs::write(&input, saved).unwrap();
        let (id, _) = rewrite(&input, &output, tag, epoch, kept, false)?;
        Ok((std::fs::read(&output).unwrap(), id))
    }

    /// A layer as the engine saves it: files `a` and `b` made at `mtime`.
    fn layer(mtime: u64) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        for (path, data) in [("a", b"one".as_slice()), ("b", b"two".as_slice())] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_cksum();
            out.append_data(&mut header, path, data).unwrap();
        }
        out.into_inner().unwrap()
    }

    fn diff_id(layer: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(layer))
    }

    /// A saved image: a base layer (made at 1000) and a layer made at `built`.
    fn saved(created: &str, built: u64) -> Vec<u8> {
        let (base, added) = (layer(1000), layer(built));
        let config = serde_json::json!({
            "architecture": "amd64",
            "created": created,
            "history": [{"created": created, "created_by": "ADD root.tar / # buildkit"}],
            "rootfs": {"type": "layers", "diff_ids": [diff_id(&base), diff_id(&added)]}
        });
        let manifest = serde_json::json!([{
            "Config": "abc.json", "RepoTags": ["dpy-hold/x:runtime"],
            "Layers": ["l0/layer.tar", "l1/layer.tar"]
        }]);
        let mut out = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("l0/layer.tar", base),
            ("l1/layer.tar", added),
            ("abc.json", serde_json::to_vec(&config).unwrap()),
            ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
            ("repositories", b"{}".to_vec()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_cksum();
            out.append_data(&mut header, path, data.as_slice()).unwrap();
        }
        out.into_inner().unwrap()
    }

    /// (path, bytes) of every file of an archive.
    fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(archive);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((path, data));
        }
        out
    }

    #[test]
    fn files_made_after_the_epoch_get_the_epoch_and_the_base_stays_as_it_was() {
        let epoch = Epoch::at(5000);
        let kept = [diff_id(&layer(1000))];
        let (a, id_a) =
            rewrite_bytes(&saved("2026-01-01T10:00:00Z", 9000), "t:1", &epoch, &kept).unwrap();
        let (_, id_b) =
            rewrite_bytes(&saved("2026-01-02T10:00:00Z", 9999), "t:1", &epoch, &kept).unwrap();
        assert_eq!(id_a, id_b);
        let files = files(&a);
        let read = |name: &str| files.iter().find(|(p, _)| p == name).unwrap().1.clone();
        assert_eq!(read("l0/layer.tar"), layer(1000));
        assert_eq!(read("l1/layer.tar"), layer(5000));
        let config_name = files
            .iter()
            .find(|(p, _)| p.ends_with(".json") && p != "manifest.json")
            .unwrap();
        let config: Value = serde_json::from_slice(&config_name.1).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([diff_id(&layer(1000)), diff_id(&layer(5000))])
        );
        // Nothing later than the epoch: the layer keeps its bytes.
        assert!(clamp_times(&mut layer(5000).as_slice(), 5000)
            .unwrap()
            .is_empty());
        // Not kept: the base is clamped too.
        let (b, _) = rewrite_bytes(
            &saved("2026-01-01T10:00:00Z", 9000),
            "t:1",
            &Epoch::at(500),
            &[],
        )
        .unwrap();
        let files_b = super::tests::files(&b);
        assert_eq!(
            files_b.iter().find(|(p, _)| p == "l0/layer.tar").unwrap().1,
            layer(500)
        );
    }

    #[test]
    fn two_builds_at_two_times_give_one_image_id() {
        let epoch = Epoch::at(1_700_000_000);
        let (a, id_a) =
            rewrite_bytes(&saved("2026-01-01T10:00:00.1Z", 1), "t:1", &epoch, &[]).unwrap();
        let (_, id_b) =
            rewrite_bytes(&saved("2026-02-02T11:11:11.2Z", 1), "t:1", &epoch, &[]).unwrap();
        assert_eq!(id_a, id_b);
        let mut archive = tar::Archive::new(a.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            if path.ends_with(".json") && path != "manifest.json" {
                let config: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(config["created"], "2023-11-14T22:13:20Z");
                assert_eq!(config["history"][0]["created"], "2023-11-14T22:13:20Z");
                assert_eq!(
                    format!("sha256:{:x}", Sha256::digest(data.as_bytes())),
                    id_a
                );
            }
            if path == "manifest.json" {
                let manifest: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["t:1"]));
                assert_eq!(
                    manifest[0]["Layers"],
                    serde_json::json!(["l0/layer.tar", "l1/layer.tar"])
                );
            }
            names.push(path);
        }
        assert!(names.contains(&"l1/layer.tar".to_string()));
        assert!(!names.contains(&"abc.json".to_string()));
        assert!(!names.contains(&"repositories".to_string()));
    }
}
