//! An image's config byte for byte as the engine holds it: the bytes whose SHA-256 is
//! the image id. An image assembled over another (the -buildroot over its builder or its
//! source) starts from them, so the base's history, environment and labels stay as the
//! engine has them.
//!
//! The Engine API gives these bytes only inside a `docker save`, which writes every
//! layer of the image first: seconds of the engine's CPU and hundreds of MB on its disk
//! for a few KB. So they are taken, in this order, from:
//! 1. dpy's cache, where every config it read or wrote is remembered under its id;
//! 2. the engine's own image store, when the engine runs on this machine and its data
//!    root can be read (Docker's `image/<driver>/imagedb/content/sha256/<id>`);
//! 3. a save.
//!
//! Whatever the place, the bytes count only if their digest is the id: a cache or a
//! store that answers wrongly costs a save, never a wrong config.

use sha2::{Digest, Sha256};

use super::Engine;
use crate::error::{Error, Result};

/// The config of the image `id` (`sha256:<hex>`).
pub async fn of(engine: &Engine, id: &str) -> Result<Vec<u8>> {
    let hex = hex_of(id)?;
    if let Some(config) = recall(id) {
        return Ok(config);
    }
    let config = match from_store(engine, hex).await {
        Some(config) => config,
        None => saved(engine, id).await?,
    };
    remember(id, &config);
    Ok(config)
}

/// Remembers `config` as the config of the image `id`, when it is (best effort: a cache
/// that cannot be written only costs a later build a save).
pub fn remember(id: &str, config: &[u8]) {
    let (Ok(hex), Ok(text)) = (hex_of(id), std::str::from_utf8(config)) else {
        return;
    };
    if digest_is(config, hex) {
        crate::cache::remember(CACHE, hex, text);
    }
}

/// The config remembered for the image `id`, if its digest is the id.
pub fn recall(id: &str) -> Option<Vec<u8>> {
    let hex = hex_of(id).ok()?;
    let config = crate::cache::recall(CACHE, hex)?;
    digest_is(config.as_bytes(), hex).then(|| config.into_bytes())
}

/// Where configs are remembered, one small file per image id.
const CACHE: &str = "pinned-config";

/// The most a config file read from the engine's store may hold: configs are KBs.
const MAX_CONFIG: u64 = 16 << 20;

fn hex_of(id: &str) -> Result<&str> {
    id.strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Error::Engine(format!("{id} is not an image id")))
}

fn digest_is(bytes: &[u8], hex: &str) -> bool {
    format!("{:x}", Sha256::digest(bytes)).eq_ignore_ascii_case(hex)
}

/// The config from the engine's image store on this machine; None when the engine is
/// elsewhere, keeps its images otherwise (the containerd image store), or the store
/// cannot be read (dpy not root for a rootful engine).
async fn from_store(engine: &Engine, hex: &str) -> Option<Vec<u8>> {
    if !engine.is_local() {
        return None;
    }
    let info = engine.docker().info().await.ok()?;
    let root = std::path::PathBuf::from(info.docker_root_dir?);
    let driver = info.driver?;
    // A storage driver's name is one word (overlay2, btrfs, vfs).
    if driver.is_empty() || !driver.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let path = root
        .join("image")
        .join(driver)
        .join("imagedb/content/sha256")
        .join(hex);
    let read = tokio::task::spawn_blocking(move || -> Option<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    });
    let bytes = read.await.ok()??;
    digest_is(&bytes, hex).then_some(bytes)
}

/// The config from a save of the image, which holds it whole.
async fn saved(engine: &Engine, id: &str) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join("saved.tar");
    super::save::save(engine, id, &path).await?;
    let config = tokio::task::spawn_blocking(move || {
        crate::archive::SavedImage::open(&path).map(|image| image.config)
    })
    .await
    .map_err(|e| Error::Engine(format!("reading the save of {id}: {e}")))??;
    if digest_is(&config, hex_of(id)?) {
        Ok(config)
    } else {
        Err(Error::Engine(format!(
            "the engine's save of {id} holds a config of another digest"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_sha256_id_names_a_config() {
        let hex = "a".repeat(64);
        assert_eq!(hex_of(&format!("sha256:{hex}")).unwrap(), hex);
        for bad in [
            hex.clone(),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}/../x", "a".repeat(58)),
            format!("sha512:{hex}"),
            format!("sha256:{}g", "a".repeat(63)),
        ] {
            assert!(hex_of(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_count_only_when_their_digest_is_the_id() {
        let config = br#"{"architecture":"amd64"}"#;
        let hex = format!("{:x}", Sha256::digest(config));
        assert!(digest_is(config, &hex));
        assert!(digest_is(config, &hex.to_uppercase()));
        assert!(!digest_is(b"{}", &hex));
    }
}
