//! The -buildroot image's base: the template's `builder` stage (the source plus a pip,
//! builder-pip.sh says how) built by BuildKit and pinned to the epoch, beside the
//! gather, since it needs nothing the gather finds. The images stage then lays dpy's own
//! layer over it (crate::images): that image is assembled, not built.
//!
//! Why the split: the -buildroot image is the source's hundreds of MB plus a little.
//! Built whole by BuildKit, it had to be saved whole after the distill, on the build's
//! critical path, only to pin the times of the few layers BuildKit added; now the save
//! and the pin happen while the gather runs, and what follows the distill is one load of
//! dpy's layer.

use std::collections::HashMap;
use std::time::Instant;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::pin::Pinned;
use crate::render;
use crate::stages::{Stage, StageTimes};

/// The pinned builder image of one platform, held until the -buildroot image is made.
#[derive(Debug, Clone)]
pub struct Builder {
    pub pinned: Pinned,
    pub hold: String,
    /// Its layers (the config's diff ids), bottom first: the source's, then the builder's.
    pub diff_ids: Vec<String>,
    /// Its BuildKit build (images) and its pin.
    pub times: StageTimes,
}

/// Builds the `builder` stage of `context` from `source` and pins it to the build's
/// epoch (the source's layers stay as they are).
pub async fn build(
    engine: &Engine,
    context: &BuildContext,
    platform: &str,
    source: &SourceImage,
    no_cache: bool,
    progress: &Progress,
) -> Result<Builder> {
    let mut times = StageTimes::new();
    let started = Instant::now();
    let built = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "builder",
            platform,
            output: Output::Image,
            no_cache,
            build_args: HashMap::new(),
            labels: HashMap::new(),
        },
        progress,
    )
    .await?;
    times.add(Stage::Images, started.elapsed());
    let id = built.image_id.expect("checked by build");
    let hold = built.hold.expect("an image build holds its image");
    let started = Instant::now();
    let epoch = Epoch::of(source.created);
    let pinned = match crate::pin::pin(engine, &id, &hold, &epoch, &source.layers).await {
        Ok(pinned) => pinned,
        Err(e) => {
            engine.release(&hold).await;
            return Err(e);
        }
    };
    times.add(Stage::Pin, started.elapsed());
    let diff_ids = match diff_ids(&pinned.config) {
        Ok(diff_ids) => diff_ids,
        Err(e) => {
            engine.release(&hold).await;
            return Err(e);
        }
    };
    progress.note(&format!(
        "builder: {} pinned ({} layers), {:.1}s",
        pinned.id,
        diff_ids.len(),
        times.get(Stage::Images).unwrap_or(0.0) + times.get(Stage::Pin).unwrap_or(0.0)
    ));
    Ok(Builder {
        pinned,
        hold,
        diff_ids,
        times,
    })
}

/// The diff ids a config names.
fn diff_ids(config: &[u8]) -> Result<Vec<String>> {
    let config: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| Error::Engine(format!("the builder image's config is not JSON: {e}")))?;
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| Error::Engine("the builder image's config names no layers".into()))
}
