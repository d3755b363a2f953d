//! The runtime and -debug images, assembled by dpy: the layers the distill wrote and a
//! config from the plan (crate::image_config), loaded into the engine in one `docker
//! load` through the Engine API, already pinned to the epoch.
//!
//! Why not BuildKit: these images are `FROM scratch` plus layers dpy itself wrote, so a
//! BuildKit build only sent the layers over in the context, unpacked and re-archived
//! them, and wrote the wall clock into the result, which then had to be saved, rewritten
//! and loaded back. Assembled here, the layers are loaded byte for byte as the distill
//! wrote them, and the archive the engine reads is streamed from those files: no layer
//! or image is held in memory.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::distill::layer::LayerFile;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::tar_stream::{Chunks, Data, Entry};

/// One image of an archive: its config and its layers (bottom first).
pub struct Assembled<'a> {
    pub config: Vec<u8>,
    pub layers: Vec<Layer<'a>>,
    /// The tag that holds it (Engine::hold) until it is tagged.
    pub hold: String,
}

/// A layer of an assembled image.
#[derive(Debug, Clone)]
pub enum Layer<'a> {
    /// Written by dpy: it goes into the archive.
    File(&'a LayerFile),
    /// Already in the engine's store, by its diff id (the layers of a builder image the
    /// engine holds): left out of the archive, since Docker's load opens a layer's file
    /// only when its store lacks that layer.
    Present(String),
}

impl Layer<'_> {
    pub fn diff_id(&self) -> &str {
        match self {
            Layer::File(file) => &file.diff_id,
            Layer::Present(diff_id) => diff_id,
        }
    }
}

impl Assembled<'_> {
    /// The image id the engine gives it: the digest of its config.
    pub fn id(&self) -> String {
        format!("sha256:{:x}", Sha256::digest(&self.config))
    }
}

/// Loads `images` in one archive; each layer goes once, however many images share it.
/// Returns their ids, checked against what the engine says it holds under each hold.
///
/// An image the engine holds already (an immediate rebuild) is only tagged with its
/// hold: its id is the digest of its config, which names every layer's digest, so the
/// same id is the same image.
pub async fn load(engine: &Engine, images: &[Assembled<'_>]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for image in images {
        let id = image.id();
        if engine.docker().inspect_image(&id).await.is_ok() {
            engine.hold_existing(&id, &image.hold).await?;
        } else {
            missing.push(image);
        }
    }
    if !missing.is_empty() {
        let what = missing
            .iter()
            .map(|i| i.hold.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        crate::engine::save::load(engine, archive(&missing), &what).await?;
    }
    let mut ids = Vec::new();
    for image in images {
        let id = image.id();
        let held = engine
            .docker()
            .inspect_image(&image.hold)
            .await
            .map_err(|e| Error::engine(&format!("inspecting {}", image.hold), e))?;
        if held.id.as_deref() != Some(id.as_str()) {
            return Err(Error::Engine(format!(
                "the engine loaded {} as {}, not as {id}; its image store rewrote the config: run `dpy doctor`",
                image.hold,
                held.id.unwrap_or_default()
            )));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The layers of the image `image` as files under `dir` (from a save), bottom first:
/// for an engine whose load wants every layer in the archive.
pub async fn saved_layers(engine: &Engine, image: &str, dir: &Path) -> Result<Vec<LayerFile>> {
    let saved_path = dir.join("saved.tar");
    crate::engine::save::save(engine, image, &saved_path).await?;
    let saved = crate::archive::SavedImage::open(&saved_path)?;
    let mut files: Vec<Option<LayerFile>> = vec![None; saved.layers.len()];
    saved.each_entry(|path, entry| {
        let Some(at) = saved.layers.iter().position(|l| l.path == path) else {
            return Ok(());
        };
        let out = dir.join(format!("layer-{at}.tar"));
        let mut file = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
        let size = std::io::copy(entry, &mut file).map_err(|e| Error::io(&out, e))?;
        files[at] = Some(LayerFile {
            path: out,
            diff_id: saved.layers[at].diff_id.clone(),
            size,
        });
        Ok(())
    })?;
    let _ = std::fs::remove_file(&saved_path);
    files
        .into_iter()
        .map(|f| f.ok_or_else(|| saved.broken("a layer manifest.json names is not in it")))
        .collect()
}

/// The archive `docker load` reads (each layer as `<hex>/layer.tar`, each config,
/// manifest.json), as a stream: the layers come from their files as it is read.
fn archive(images: &[&Assembled<'_>]) -> Chunks {
    let mut entries: Vec<Entry> = Vec::new();
    let mut manifest = Vec::new();
    let file = |name: String, data: Data| Entry {
        name,
        mode: 0o644,
        data,
    };
    for image in images {
        let config_name = format!("{}.json", image.id().trim_start_matches("sha256:"));
        let mut paths = Vec::new();
        for layer in &image.layers {
            let path = format!(
                "{}/layer.tar",
                layer.diff_id().trim_start_matches("sha256:")
            );
            if let Layer::File(layer) = layer {
                if !entries.iter().any(|e| e.name == path) {
                    entries.push(file(
                        path.clone(),
                        Data::File(layer.path.clone(), layer.size),
                    ));
                }
            }
            paths.push(path);
        }
        entries.push(file(
            config_name.clone(),
            Data::Bytes(image.config.clone().into()),
        ));
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": [image.hold],
            "Layers": paths,
        }));
    }
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    entries.push(file("manifest.json".into(), Data::Bytes(manifest.into())));
    crate::tar_stream::archive(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn layer(dir: &std::path::Path, name: &str, data: &[u8]) -> LayerFile {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        LayerFile {
            path,
            diff_id: format!("sha256:{:x}", Sha256::digest(data)),
            size: data.len() as u64,
        }
    }

    /// The streamed archive is a tar `tar` reads whole, each layer dpy wrote once (a
    /// layer the engine holds is named, not sent), and its manifest names what `docker
    /// load` needs.
    #[tokio::test]
    async fn the_archive_holds_each_layer_once_and_a_manifest_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = layer(dir.path(), "root.tar", &[1; 1000]);
        let debug = layer(dir.path(), "debug.tar", b"debug");
        let images = [
            Assembled {
                config: b"{\"a\":1}".to_vec(),
                layers: vec![Layer::Present("sha256:0b".into()), Layer::File(&root)],
                hold: "dpy-hold/x:runtime".into(),
            },
            Assembled {
                config: b"{\"a\":2}".to_vec(),
                layers: vec![Layer::File(&root), Layer::File(&debug)],
                hold: "dpy-hold/x:debug".into(),
            },
        ];
        let bytes = crate::tar_stream::collect(archive(&[&images[0], &images[1]]))
            .await
            .unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut entries = Vec::new();
        for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            entries.push((entry.path().unwrap().display().to_string(), data));
        }
        let hex = |l: &LayerFile| l.diff_id.trim_start_matches("sha256:").to_string();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        let (runtime_config, debug_config) = (
            format!("{}.json", images[0].id().trim_start_matches("sha256:")),
            format!("{}.json", images[1].id().trim_start_matches("sha256:")),
        );
        assert_eq!(
            names,
            [
                format!("{}/layer.tar", hex(&root)).as_str(),
                runtime_config.as_str(),
                format!("{}/layer.tar", hex(&debug)).as_str(),
                debug_config.as_str(),
                "manifest.json"
            ]
        );
        assert_eq!(entries[0].1, vec![1; 1000]);
        assert_eq!(entries[2].1, b"debug");
        let manifest: serde_json::Value = serde_json::from_slice(&entries[4].1).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!([
                {"Config": runtime_config, "RepoTags": ["dpy-hold/x:runtime"],
                 "Layers": ["0b/layer.tar", format!("{}/layer.tar", hex(&root))]},
                {"Config": debug_config, "RepoTags": ["dpy-hold/x:debug"],
                 "Layers": [format!("{}/layer.tar", hex(&root)), format!("{}/layer.tar", hex(&debug))]},
            ])
        );
    }
}
