//! The image archive: what `docker save` writes and `docker load` reads. manifest.json
//! names the image's config and its layers in order, and the config's `rootfs.diff_ids`
//! gives each layer's uncompressed digest. Engines lay the files out two ways
//! (`<id>.json` and `<layer>/layer.tar`, or the OCI layout's `blobs/sha256/<digest>`),
//! so only manifest.json says which file is which: nothing here goes by a file's name.
//!
//! `pin` rewrites a saved image and `publish::layers` compresses its layers; both read
//! the archive through here. A leaf: `engine::save` writes the file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The most a file that says what the image is (manifest.json, the config) may hold.
const SMALL: u64 = 16 << 20;

/// One layer: where the archive holds it, and its uncompressed digest (its diff_id).
#[derive(Debug, Clone)]
pub struct SavedLayer {
    pub path: String,
    pub diff_id: String,
}

/// A saved image: the archive of exactly one image.
#[derive(Debug)]
pub struct SavedImage {
    path: PathBuf,
    /// Where the config sits in the archive.
    pub config_name: String,
    /// The config, byte for byte as the engine wrote it: its digest is the image's id.
    pub config: Vec<u8>,
    pub layers: Vec<SavedLayer>,
}

/// An entry of the archive as it streams past.
pub type Entry<'a> = tar::Entry<'a, BufReader<File>>;

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default, skip_deserializing)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

impl SavedImage {
    /// Reads what the archive at `path` is: its manifest, config and layer list, checked
    /// to agree with each other.
    pub fn open(path: &Path) -> Result<SavedImage> {
        let broken = |what: &dyn std::fmt::Display| broken(path, what);
        let manifest =
            read_small(path, "manifest.json")?.ok_or_else(|| broken(&"no manifest.json"))?;
        let manifest: Vec<ManifestEntry> =
            serde_json::from_slice(&manifest).map_err(|e| broken(&e))?;
        let [manifest] = <[ManifestEntry; 1]>::try_from(manifest)
            .map_err(|m| broken(&format!("{} images, not one", m.len())))?;
        let config = read_small(path, &manifest.config)?.ok_or_else(|| {
            broken(&format!(
                "no {}, the config manifest.json names",
                manifest.config
            ))
        })?;
        let parsed: serde_json::Value = serde_json::from_slice(&config).map_err(|e| broken(&e))?;
        let diff_ids: Vec<String> = parsed["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != manifest.layers.len() {
            return Err(broken(&format!(
                "manifest.json names {} layers but the config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        Ok(SavedImage {
            path: path.to_path_buf(),
            config_name: manifest.config,
            config,
            layers: manifest
                .layers
                .into_iter()
                .zip(diff_ids)
                .map(|(path, diff_id)| SavedLayer { path, diff_id })
                .collect(),
        })
    }

    /// Each entry of the archive in order, with its path, in one pass; an entry `each`
    /// does not read is skipped over.
    pub fn each_entry(&self, each: impl FnMut(&str, &mut Entry<'_>) -> Result<()>) -> Result<()> {
        each_entry(&self.path, each)
    }

    /// The error for an archive that is not what it should be.
    pub fn broken(&self, what: impl std::fmt::Display) -> Error {
        broken(&self.path, &what)
    }
}

/// manifest.json for an archive of one image, tagged `tag`: what `docker load` reads.
pub fn manifest(config_name: &str, tag: &str, layers: &[String]) -> Vec<u8> {
    serde_json::to_vec(&[ManifestEntry {
        config: config_name.to_string(),
        repo_tags: vec![tag.to_string()],
        layers: layers.to_vec(),
    }])
    .expect("a manifest serializes")
}

fn broken(path: &Path, what: &dyn std::fmt::Display) -> Error {
    Error::Engine(format!(
        "the saved image {} is not readable: {what}",
        path.display()
    ))
}

fn each_entry(path: &Path, mut each: impl FnMut(&str, &mut Entry<'_>) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    for entry in archive.entries_with_seek().map_err(|e| broken(path, &e))? {
        let mut entry = entry.map_err(|e| broken(path, &e))?;
        let name = entry
            .path()
            .map_err(|e| broken(path, &e))?
            .to_string_lossy()
            .into_owned();
        each(&name, &mut entry)?;
    }
    Ok(())
}

/// The file `name` of the archive, whole, when it is there and small.
fn read_small(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    each_entry(path, |entry_name, entry| {
        if found.is_none() && entry_name == name {
            if entry.size() > SMALL {
                return Err(broken(path, &format!("{name} is {} bytes", entry.size())));
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| broken(path, &e))?;
            found = Some(data);
        }
        Ok(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `files` (path, bytes), written to a file of its own.
    fn archive(files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saved.tar");
        let mut out = tar::Builder::new(File::create(&path).unwrap());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            out.append_data(&mut header, name, data.as_slice()).unwrap();
        }
        out.finish().unwrap();
        (dir, path)
    }

    fn config(diff_ids: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"rootfs": {"diff_ids": diff_ids}})).unwrap()
    }

    #[test]
    fn the_oci_layout_is_read_by_what_manifest_json_names_not_by_file_names() {
        // Engines from 25 on: the config is a blob with no .json in its name.
        let manifest = manifest("blobs/sha256/c0", "t:1", &["blobs/sha256/l0".into()]);
        let (_dir, path) = archive(&[
            ("blobs/sha256/l0", b"layer".to_vec()),
            ("blobs/sha256/c0", config(&["sha256:l0"])),
            ("index.json", b"{}".to_vec()),
            ("manifest.json", manifest),
        ]);
        let image = SavedImage::open(&path).unwrap();
        assert_eq!(image.config_name, "blobs/sha256/c0");
        assert_eq!(image.config, config(&["sha256:l0"]));
        assert_eq!(image.layers.len(), 1);
        assert_eq!(
            (
                image.layers[0].path.as_str(),
                image.layers[0].diff_id.as_str()
            ),
            ("blobs/sha256/l0", "sha256:l0")
        );
        let mut seen = Vec::new();
        image
            .each_entry(|path, _| {
                seen.push(path.to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                "blobs/sha256/l0",
                "blobs/sha256/c0",
                "index.json",
                "manifest.json"
            ]
        );
    }

    #[test]
    fn an_archive_that_disagrees_with_itself_is_refused_saying_how() {
        let refused = |files: &[(&str, Vec<u8>)]| {
            let (_dir, path) = archive(files);
            let error = SavedImage::open(&path).unwrap_err().to_string();
            assert!(error.contains("is not readable: "), "{error}");
            error
        };
        let one = manifest("c.json", "t:1", &["l/layer.tar".into()]);
        assert!(refused(&[("c.json", config(&[]))]).ends_with("no manifest.json"));
        assert!(refused(&[("manifest.json", one.clone())])
            .ends_with("no c.json, the config manifest.json names"));
        assert!(refused(&[("c.json", config(&[])), ("manifest.json", one)])
            .ends_with("manifest.json names 1 layers but the config 0 diff_ids"));
        let two = serde_json::to_vec(&serde_json::json!([
            {"Config": "c.json", "Layers": []},
            {"Config": "c.json", "Layers": []}
        ]))
        .unwrap();
        assert!(refused(&[("c.json", config(&[])), ("manifest.json", two)])
            .ends_with("2 images, not one"));
    }
}
