//! `docker save` of one image into a file: its config and its layers as the engine
//! stores them (uncompressed tars), for a push that compresses them itself.

use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;

use super::Engine;
use crate::error::{Error, Result};

/// Writes the engine's archive of `image` (an id or reference) to `path`.
///
/// Both archive layouts an engine may write are read by `publish::layers`: the legacy
/// one (`<id>/layer.tar`, engines before 25) and the OCI one (`blobs/sha256/…`); each
/// has a `manifest.json` naming the config and the layers in order.
pub async fn save(engine: &Engine, image: &str, path: &Path) -> Result<()> {
    let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut stream = engine.docker().export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::engine(&format!("saving {image}"), e))?;
        file.write_all(&chunk).map_err(|e| Error::io(path, e))?;
    }
    file.sync_all().map_err(|e| Error::io(path, e))
}
