//! The -buildroot image's base, made beside the gather since it needs nothing the gather
//! finds: the source itself when it has its own pip, else the template's `builder` stage
//! (the source plus a pip, builder-pip.sh says how) built by BuildKit and pinned to the
//! epoch. The images stage then lays dpy's own layer over it (crate::images): that image
//! is assembled, not built. Under emulation the gather's own answer comes first
//! ([`the_source`]; crate::pipeline says why), and [`build`] runs only without a pip.
//!
//! Why the split: the -buildroot image is the source's hundreds of MB plus a little.
//! Built whole by BuildKit, it had to be saved whole after the distill, on the build's
//! critical path, only to pin the times of the few layers BuildKit added. Now a source
//! with a pip (the official images) needs no builder image at all, only its config
//! (engine::config: no save where the engine's store is readable); a source without one
//! gets its builder saved and pinned while the gather runs. Either way what follows the
//! distill is one load of dpy's layer.

use std::collections::HashMap;
use std::time::Instant;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::layout::BuilderPip;
use crate::render;
use crate::stages::{Stage, StageTimes};
use crate::unpack::Bounds;

/// What the `builder-answer` stage may hold: one file of a few bytes.
const ANSWER_BOUNDS: Bounds = Bounds {
    bytes: 64 << 10,
    entries: 8,
};

/// The -buildroot image's base for one platform, held until the -buildroot image is made.
#[derive(Debug, Clone)]
pub struct Builder {
    /// Where its pip comes from (builder-pip.sh's answer).
    pub pip: BuilderPip,
    /// The image: the source itself when it has its own pip, else a builder image of its
    /// own (the source plus a pip), pinned to the epoch.
    pub id: String,
    /// Its config as the engine holds it (the bytes whose digest is `id`).
    pub config: Vec<u8>,
    /// Its layers (the config's diff ids), bottom first: the source's, then the builder's.
    pub diff_ids: Vec<String>,
    /// The tag holding a builder image of its own; none when the base is the source.
    pub hold: Option<String>,
    /// Its BuildKit builds (images) and its pin.
    pub times: StageTimes,
}

impl Builder {
    /// Lets go of a builder image of its own (the source is the user's).
    pub async fn release(&self, engine: &Engine) {
        if let Some(hold) = &self.hold {
            engine.release(hold).await;
        }
    }
}

/// The -buildroot image's base from `source`: first builder-pip.sh's answer (the
/// `builder-answer` stage, a few bytes); a source with its own pip is the base itself,
/// with no image of dpy's and nothing to pin; otherwise the `builder` stage is built as
/// an image and pinned to the build's epoch (the source's layers stay as they are).
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
    let pip = answer(engine, context, platform, source, no_cache, progress).await?;
    if pip.origin == "source" {
        return the_source(engine, source, pip.version, started, progress).await;
    }
    // Its steps ran for the answer moments ago (uncached when asked): BuildKit has them,
    // and running builder-pip.sh again would fetch a pip a second time.
    let built = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "builder",
            platform,
            output: Output::Image,
            no_cache: false,
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
        pip,
        id: pinned.id,
        config: pinned.config,
        diff_ids,
        hold: Some(hold),
        times,
    })
}

/// The base once the gather has answered (an emulated platform): the source itself when
/// the gather found its own pip (`pip`, layout.json's), else [`build`].
pub async fn after_gather(
    engine: &Engine,
    context: &BuildContext,
    platform: &str,
    source: &SourceImage,
    pip: Option<String>,
    no_cache: bool,
    progress: &Progress,
) -> Result<Builder> {
    match pip {
        Some(version) => the_source(engine, source, version, Instant::now(), progress).await,
        None => build(engine, context, platform, source, no_cache, progress).await,
    }
}

/// The -buildroot image's base when the source has its own pip (`version`), as
/// builder-pip.sh or the gather (dpy_gather's `own_pip`) found: the source itself, with
/// no image of dpy's and nothing to pin. `started`: when the asking began.
async fn the_source(
    engine: &Engine,
    source: &SourceImage,
    version: String,
    started: Instant,
    progress: &Progress,
) -> Result<Builder> {
    let mut times = StageTimes::new();
    let config = crate::engine::config::of(engine, &source.id).await?;
    times.add(Stage::Images, started.elapsed());
    progress.note(&format!(
        "builder: the source itself (its own pip {version}), {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(Builder {
        pip: BuilderPip {
            origin: "source".into(),
            version,
        },
        id: source.id.clone(),
        config,
        diff_ids: source.layers.clone(),
        hold: None,
        times,
    })
}

/// builder-pip.sh's answer: the `builder-answer` stage, exported and read like every
/// answer of the source's code (bounded, unpacked through a handle, its shape checked).
async fn answer(
    engine: &Engine,
    context: &BuildContext,
    platform: &str,
    source: &SourceImage,
    no_cache: bool,
    progress: &Progress,
) -> Result<BuilderPip> {
    let work = tempfile::Builder::new()
        .prefix("dpy-builder-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let exported = crate::gather::exported(
        engine,
        context,
        "builder-answer",
        platform,
        no_cache,
        ANSWER_BOUNDS,
        &source.name,
        progress,
        work.path(),
    )
    .await?;
    BuilderPip::load(&exported.tree).map_err(|e| e.prefixed(&source.name))
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
