//! `docker save` of one image into a file: its config and its layers as the engine
//! stores them. `pin` rewrites such a file and `publish` compresses its layers; both
//! read it through `archive`, which knows both layouts an engine may write. And `docker
//! load` of an archive streamed to the engine (`pin`, `assemble`).

use futures_util::StreamExt;
use std::path::Path;
use tokio::io::AsyncWriteExt;

use super::Engine;
use crate::error::{Error, Result};

/// Writes the engine's archive of `image` (an id or reference) to `path`.
pub async fn save(engine: &Engine, image: &str, path: &Path) -> Result<()> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let mut stream = engine.docker().export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::engine(&format!("saving {image}"), e))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(path, e))?;
    }
    // Written out before the file is read (by another handle, on a blocking thread).
    file.flush().await.map_err(|e| Error::io(path, e))
}

/// Loads the archive `chunks` (`docker load`); `what` names it in errors.
pub async fn load(engine: &Engine, chunks: crate::tar_stream::Chunks, what: &str) -> Result<()> {
    let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
        .quiet(true)
        .build();
    let body = bollard::body_try_stream(chunks);
    let mut answer = engine.docker().import_image(options, body, None);
    while let Some(item) = answer.next().await {
        let info = item.map_err(|e| Error::engine(&format!("loading {what}"), e))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::Engine(format!("loading {what}: {message}")));
        }
    }
    Ok(())
}
