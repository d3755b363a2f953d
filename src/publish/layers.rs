//! Layers that dpy compresses itself, for `--compression zstd`.
//!
//! The engine pushes gzip only (Engine API 1.41 has no choice of compression), so for
//! zstd dpy saves the image from the engine (`engine::save`), reads it (`archive`),
//! compresses each layer here,
//! and pushes the blobs and an OCI manifest itself (`publish::push_zstd`). The config goes
//! to the registry byte for byte as the engine holds it, so a pulled image has the same
//! id as the built one.
//!
//! Reproducible: one fixed level, one thread, the content size in each frame's header,
//! and nothing else in the frame (no dictionary, no timestamps: zstd has none). The same
//! layer always gives the same blob and digest.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::archive::{SavedImage, SavedLayer};
use crate::error::Result;

/// The level every zstd layer is written at. 19 is zstd's highest without `--ultra`
/// (an 8 MiB window, which every decoder accepts). Measured on the runtime layer of
/// 3.13-slim-bookworm (33.6 MB): gzip -6 14.2 MB; zstd 3 14.2 MB, 9 13.2 MB, 16 12.6 MB,
/// 19 11.9 MB in 22 s. A layer is compressed once per machine: `push_zstd` remembers
/// the blob each layer gave and asks the registry for it before compressing again.
pub const ZSTD_LEVEL: i32 = 19;

pub const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A blob to push: its bytes and their digest.
pub struct Blob {
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(data: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&data),
            data,
        }
    }
}

/// An image as the engine saved it: its config, as the engine holds it, and its layers in
/// order.
pub struct Saved {
    image: SavedImage,
    pub config: Blob,
}

impl Saved {
    /// Reads the archive's manifest and config; `id` is the image's id, which the
    /// config's digest must be.
    pub fn open(archive: &Path, id: &str) -> Result<Saved> {
        let image = SavedImage::open(archive)?;
        let config = Blob::new(image.config.clone());
        if config.digest != id {
            return Err(image.broken(format!("its config is {}, not {id}", config.digest)));
        }
        Ok(Saved { image, config })
    }

    pub fn layers(&self) -> &[SavedLayer] {
        &self.image.layers
    }

    /// The layers `wanted` (indexes into `layers`), compressed, in one pass over the
    /// archive. Each layer's bytes must be its diff_id, or nothing is returned.
    pub fn compress(&self, wanted: &[usize]) -> Result<HashMap<usize, Blob>> {
        let layers = self.layers();
        let mut by_path: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in wanted {
            by_path.entry(&layers[i].path).or_default().push(i);
        }
        let mut done = HashMap::new();
        self.image.each_entry(|path, entry| {
            let Some(indexes) = by_path.remove(path) else {
                return Ok(());
            };
            let size = entry.size();
            let (diff_id, blob) = saved_layer(entry, size).map_err(|e| self.image.broken(e))?;
            for &i in &indexes {
                if layers[i].diff_id != diff_id {
                    return Err(self.image.broken(format!(
                        "{path} is {diff_id}, but the config says {}",
                        layers[i].diff_id
                    )));
                }
            }
            for &i in &indexes[1..] {
                done.insert(
                    i,
                    Blob {
                        digest: blob.digest.clone(),
                        data: blob.data.clone(),
                    },
                );
            }
            done.insert(indexes[0], blob);
            Ok(())
        })?;
        if let Some(path) = by_path.keys().next() {
            return Err(self.image.broken(format!("no {path}")));
        }
        Ok(done)
    }
}

/// Reads through to a hasher: the layer's digest comes from the same read as its
/// compression.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A layer as the archive holds it: a tar of `size` bytes, or a gzip'd or zstd'd one (an
/// engine whose store keeps layers compressed, as containerd's does, may save them so).
fn saved_layer(entry: impl Read, size: u64) -> io::Result<(String, Blob)> {
    let mut entry = io::BufReader::new(entry);
    let head = io::BufRead::fill_buf(&mut entry)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        zstd_layer(flate2::read::GzDecoder::new(entry), None)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd_layer(zstd::stream::read::Decoder::with_buffer(entry)?, None)
    } else {
        zstd_layer(entry, Some(size))
    }
}

/// One layer (a tar, of `size` bytes when known) compressed: its uncompressed digest and
/// the blob.
pub fn zstd_layer(layer: impl Read, size: Option<u64>) -> io::Result<(String, Blob)> {
    let mut reader = Hashing {
        inner: layer,
        hasher: Sha256::new(),
    };
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    encoder.set_pledged_src_size(size)?;
    let copied = io::copy(&mut reader, &mut encoder)?;
    if size.is_some_and(|size| copied != size) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{copied} bytes of {size:?}"),
        ));
    }
    let data = encoder.finish()?;
    Ok((
        format!("sha256:{:x}", reader.hasher.finalize()),
        Blob::new(data),
    ))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A saved image in the engine's legacy layout: two layers, the second twice (an
    /// engine lists an identical layer once per use).
    fn archive(dir: &Path, tamper: bool) -> (PathBuf, String) {
        archive_with(dir, tamper, false)
    }

    fn gzipped(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, data).unwrap();
        gz.finish().unwrap()
    }

    /// `gzip`: the first layer saved gzip'd, and the second zstd'd, as a compressed store
    /// may save them.
    fn archive_with(dir: &Path, tamper: bool, gzip: bool) -> (PathBuf, String) {
        let layer = |name: &str| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            let body = format!("{name}\n").repeat(1000);
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
            b.into_inner().unwrap()
        };
        let (a, b) = (layer("a"), layer("b"));
        let diff = |l: &[u8]| sha256(l);
        let config = serde_json::to_vec(&serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [diff(&a), diff(&b), diff(&b)]}
        }))
        .unwrap();
        let id = sha256(&config);
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{}.json", &id[7..]),
            "Layers": ["a/layer.tar", "b/layer.tar", "b/layer.tar"],
        }]))
        .unwrap();
        let path = dir.join("saved.tar");
        let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            out.append_data(&mut h, name, data).unwrap();
        };
        add("a/layer.tar", &if gzip { gzipped(&a) } else { a.clone() });
        let b_saved = match (tamper, gzip) {
            (true, _) => a.clone(),
            (false, true) => zstd::encode_all(b.as_slice(), 3).unwrap(),
            (false, false) => b.clone(),
        };
        add("b/layer.tar", &b_saved);
        add(&format!("{}.json", &id[7..]), &config);
        add("manifest.json", &manifest);
        out.finish().unwrap();
        (path, id)
    }

    #[test]
    fn layers_compress_to_the_same_blob_every_time_and_decompress_to_their_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = archive(dir.path(), false);
        let saved = Saved::open(&path, &id).unwrap();
        assert_eq!(saved.config.digest, id);
        let first = saved.compress(&[0, 1, 2]).unwrap();
        let again = saved.compress(&[0, 1, 2]).unwrap();
        for i in 0..3 {
            assert_eq!(first[&i].digest, again[&i].digest);
            assert_eq!(first[&i].digest, sha256(&first[&i].data));
            let plain = zstd::decode_all(first[&i].data.as_slice()).unwrap();
            assert_eq!(sha256(&plain), saved.layers()[i].diff_id);
            assert!(first[&i].data.len() < plain.len() / 10);
        }
        assert_eq!(first[&1].digest, first[&2].digest);
        // Only what is asked is compressed.
        assert_eq!(saved.compress(&[1]).unwrap().len(), 1);
    }

    #[test]
    fn a_compressed_saved_layer_is_compressed_from_its_tar() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = archive_with(dir.path(), false, true);
        let saved = Saved::open(&path, &id).unwrap();
        let blobs = saved.compress(&[0, 1]).unwrap();
        for i in [0, 1] {
            let plain = zstd::decode_all(blobs[&i].data.as_slice()).unwrap();
            assert_eq!(sha256(&plain), saved.layers()[i].diff_id);
        }
    }

    #[test]
    fn a_layer_that_is_not_its_diff_id_or_a_foreign_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = archive(dir.path(), true);
        let saved = Saved::open(&path, &id).unwrap();
        let error = saved.compress(&[1]).err().unwrap().to_string();
        assert!(error.contains("b/layer.tar is sha256:"), "{error}");
        let error = Saved::open(&path, "sha256:0000").err().unwrap().to_string();
        assert!(error.contains("not sha256:0000"), "{error}");
    }
}
