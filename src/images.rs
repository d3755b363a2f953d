//! The images stage: every image of one platform assembled by dpy (crate::assemble),
//! untagged: the runtime and -debug images from the distilled layers, the -buildroot
//! image from its base (crate::builder: the source, or a pinned builder) and one layer
//! of dpy's own; and the
//! tags that name them once every platform of the target has built (so a failure tags
//! nothing).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::assemble::Assembled;
use crate::builder::Builder;
use crate::context::BuildContext;
use crate::distill::layer::LayerFile;
use crate::engine::source::SourceImage;
use crate::engine::{Engine, Progress};
use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::image_config::RuntimeConfig;
use crate::labels as label;
use crate::layout::Layout;
use crate::platform::Platform;
use crate::recipe::Recipe;
use crate::runtime::{Variant, BUILD_ROOT};
use crate::stages::{Stage, StageTimes};

/// A built image and the tag it is to get.
#[derive(Debug, Clone)]
pub struct TaggedImage {
    pub variant: Variant,
    pub repository: String,
    pub tag: String,
    pub id: String,
    /// The reference that keeps the image alive until it is tagged (Engine::hold).
    pub hold: String,
}

impl TaggedImage {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// The images of one platform (`--variants`, in [`Variant`] order), built and held,
/// not yet tagged.
#[derive(Debug, Clone)]
pub struct Images(pub Vec<TaggedImage>);

impl Images {
    pub fn get(&self, variant: Variant) -> Option<&TaggedImage> {
        self.0.iter().find(|i| i.variant == variant)
    }

    pub fn iter(&self) -> impl Iterator<Item = &TaggedImage> {
        self.0.iter()
    }

    /// The references, space-separated, as `dpy build` prints them.
    pub fn references(&self) -> String {
        self.iter()
            .map(TaggedImage::reference)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The images of one target on one platform: how they build and where they go.
pub struct ImageSpec<'a> {
    pub recipe: &'a Recipe,
    pub platform: Platform,
    pub repository: &'a str,
    /// Added to every tag when several platforms share one local image store.
    pub tag_suffix: Option<String>,
    /// The time every image carries everywhere: configs, history, and the file times
    /// of the layers it adds (crate::epoch).
    pub epoch: Epoch,
    /// The digest of what the images are made of (crate::inputs), for their label.
    pub inputs: String,
    /// The file times of the layers dpy writes: SOURCE_DATE_EPOCH, else 0, never later
    /// than the epoch.
    pub mtime: u64,
}

/// A tag with a platform's suffix, when it carries one (`3.12-alpine3.20-amd64`).
pub fn tag_with(tag: &str, suffix: Option<&str>) -> String {
    match suffix {
        Some(suffix) => format!("{tag}-{suffix}"),
        None => tag.to_string(),
    }
}

/// The layers the distill wrote: the runtime's, and the -debug image's over it.
pub struct RuntimeLayers<'a> {
    pub root: &'a LayerFile,
    pub debug: Option<&'a LayerFile>,
}

/// Makes each variant the recipe asks for, held and untagged, every time the epoch's:
/// the runtime and -debug images from `layers`, the -buildroot image from its pinned
/// `builder` (crate::builder) and a layer of dpy's own written into `work` (the helpers
/// of the rendered `context`, the root). All are assembled by dpy (crate::assemble). A
/// failure releases what was made. The time goes to `times`.
#[allow(clippy::too_many_arguments)]
pub async fn build(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    context: &BuildContext,
    layout: &Layout,
    layers: &RuntimeLayers<'_>,
    builder: Option<&Builder>,
    work: &Path,
    labels: &HashMap<String, String>,
    progress: &Progress,
    times: &mut StageTimes,
) -> Result<Images> {
    // Side by side: each is a load of its own layers.
    let runtime = async {
        let started = Instant::now();
        let assembled = assemble_runtime(engine, spec, layout, layers, labels).await;
        if let Ok(images) = &assembled {
            if !images.is_empty() {
                progress.note(&format!(
                    "images: {} assembled from the distilled layers ({:.1} MB) and loaded, {:.1}s",
                    Images(images.clone()).references(),
                    (layers.root.size + layers.debug.map_or(0, |d| d.size)) as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        let mut times = StageTimes::new();
        times.add(Stage::Images, started.elapsed());
        (assembled, times)
    };
    let buildroot = async {
        let started = Instant::now();
        let built = match builder {
            Some(builder) => assemble_buildroot(
                engine,
                spec,
                context,
                layout,
                layers.root,
                builder,
                work,
                labels,
            )
            .await
            .map(|(id, hold)| vec![tagged(spec, Variant::Buildroot, id, hold)]),
            None => Ok(Vec::new()),
        };
        if let Ok(built) = &built {
            if !built.is_empty() {
                progress.note(&format!(
                    "images: {} assembled over its builder and loaded, {:.1}s",
                    Images(built.clone()).references(),
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        let mut times = StageTimes::new();
        times.add(Stage::Images, started.elapsed());
        (built, times)
    };
    let ((runtime, runtime_times), (buildroot, buildroot_times)) =
        futures_util::future::join(runtime, buildroot).await;
    times.beside(&runtime_times);
    times.beside(&buildroot_times);
    match (runtime, buildroot) {
        (Ok(mut images), Ok(buildroot)) => {
            images.extend(buildroot);
            images.sort_by_key(|image| image.variant);
            Ok(Images(images))
        }
        (runtime, buildroot) => {
            let mut first = None;
            for result in [runtime, buildroot] {
                match result {
                    Ok(images) => discard(engine, &Images(images)).await,
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            Err(first.expect("one failed"))
        }
    }
}

/// The image of `variant` as it is to be tagged.
fn tagged(spec: &ImageSpec<'_>, variant: Variant, id: String, hold: String) -> TaggedImage {
    TaggedImage {
        variant,
        repository: spec.repository.to_string(),
        tag: tag_with(
            &spec.recipe.target.tag_of(variant),
            spec.tag_suffix.as_deref(),
        ),
        id,
        hold,
    }
}

/// The runtime and -debug images the recipe asks for, in one load: the config from the
/// layout (crate::image_config), the epoch's times, the layers as the distill wrote them.
async fn assemble_runtime(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    layout: &Layout,
    layers: &RuntimeLayers<'_>,
    labels: &HashMap<String, String>,
) -> Result<Vec<TaggedImage>> {
    let wanted: Vec<Variant> = [Variant::Runtime, Variant::Debug]
        .into_iter()
        .filter(|&v| spec.recipe.makes(v))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let config = RuntimeConfig::of(layout)?;
    let session = crate::engine::build::session_id();
    let mut images = Vec::new();
    for &variant in &wanted {
        let mut layers_of = vec![(layers.root, ROOT_STEP)];
        if variant == Variant::Debug {
            let debug = layers.debug.ok_or_else(|| {
                Error::Distill("the distill made no debug layer for the -debug image".into())
            })?;
            layers_of.push((debug, DEBUG_STEP));
        }
        let mut labels = labels.clone();
        labels.insert(crate::labels::VARIANT.to_string(), variant.to_string());
        let steps: Vec<(&str, &str)> = layers_of
            .iter()
            .map(|(layer, step)| (layer.diff_id.as_str(), *step))
            .collect();
        images.push(Assembled {
            config: config.image(&spec.platform, &labels, &spec.epoch, &steps),
            layers: layers_of
                .iter()
                .map(|(layer, _)| crate::assemble::Layer::File(layer))
                .collect(),
            hold: engine.hold(&session, &variant.to_string()),
        });
    }
    match crate::assemble::load(engine, &images).await {
        Ok(ids) => Ok(wanted
            .into_iter()
            .zip(ids)
            .zip(images)
            .map(|((variant, id), image)| tagged(spec, variant, id, image.hold))
            .collect()),
        Err(e) => {
            for image in &images {
                engine.release(&image.hold).await;
            }
            Err(e)
        }
    }
}

/// What each layer's history entry says made it.
const ROOT_STEP: &str = "dpy: the distilled runtime root";
const DEBUG_STEP: &str = "dpy: the debug tools over the runtime root";

/// The -buildroot image: its pinned builder's layers (in the engine already) and one
/// layer of dpy's: the context's helpers (dpy/) in /opt/dpy, the runtime root in
/// $BUILD_ROOT, an empty $BUILD_ROOT_DIFF. Its config is the builder's with what
/// image_config::buildroot sets. An engine that wants every layer in the archive (not
/// Docker's own image store) gets the builder's from a save.
#[allow(clippy::too_many_arguments)]
async fn assemble_buildroot(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    context: &BuildContext,
    layout: &Layout,
    root: &LayerFile,
    builder: &Builder,
    work: &Path,
    labels: &HashMap<String, String>,
) -> Result<Held> {
    // Where its pip comes from, for users (and chroot-pip's messages): written by dpy
    // from the checked answer, whether the builder is an image of its own or the source.
    let pip = builder.pip.json();
    let helpers: Vec<(String, u32, &[u8])> = context
        .files()
        .filter_map(|(path, file)| {
            let inside = path.strip_prefix("dpy/")?;
            Some((format!("opt/dpy/{inside}"), file.mode, file.data.as_slice()))
        })
        .chain([(
            "opt/dpy/builder-pip.json".to_string(),
            0o644,
            pip.as_bytes(),
        )])
        .collect();
    let build_root = BUILD_ROOT.trim_start_matches('/');
    let layer = crate::distill::layer::write_buildroot(
        root,
        build_root,
        &helpers,
        &[&format!("{build_root}-diff")],
        spec.mtime,
        &work.join("buildroot.tar"),
    )?;
    let mut labels = labels.clone();
    labels.insert(
        crate::labels::VARIANT.to_string(),
        Variant::Buildroot.to_string(),
    );
    let config = crate::image_config::buildroot(
        &builder.config,
        layout,
        &labels,
        &spec.epoch,
        &layer.diff_id,
    )?;
    let hold = engine.hold(&crate::engine::build::session_id(), "buildroot");
    let present = builder
        .diff_ids
        .iter()
        .map(|id| crate::assemble::Layer::Present(id.clone()));
    let image = Assembled {
        config: config.clone(),
        layers: present
            .chain([crate::assemble::Layer::File(&layer)])
            .collect(),
        hold: hold.clone(),
    };
    let loaded = match crate::assemble::load(engine, std::slice::from_ref(&image)).await {
        Ok(ids) => Ok(ids),
        Err(_) => {
            // Another image store: the builder's layers go in the archive too.
            let saved = crate::assemble::saved_layers(engine, &builder.id, work).await?;
            let image = Assembled {
                layers: saved
                    .iter()
                    .map(crate::assemble::Layer::File)
                    .chain([crate::assemble::Layer::File(&layer)])
                    .collect(),
                ..image
            };
            crate::assemble::load(engine, std::slice::from_ref(&image)).await
        }
    };
    match loaded {
        Ok(mut ids) => Ok((ids.remove(0), hold)),
        Err(e) => {
            engine.release(&hold).await;
            Err(e)
        }
    }
}

/// An image id and the hold tag that keeps it until it is tagged.
type Held = (String, String);

/// Tags every image. Callers tag only once every platform of a target has built, so a
/// failure anywhere leaves no tag behind.
pub async fn tag(engine: &Engine, images: &Images) -> Result<()> {
    for image in images.iter() {
        engine.tag(&image.id, &image.repository, &image.tag).await?;
    }
    for image in images.iter() {
        engine.release(&image.hold).await;
    }
    Ok(())
}

/// Removes images that will not be tagged (unless a tag of someone else's names them).
pub async fn discard(engine: &Engine, images: &Images) {
    for image in images.iter() {
        engine.release(&image.hold).await;
    }
}

/// The labels of every image: the flavor's, the OCI ones, and dpy's own.
pub fn labels(
    recipe: &Recipe,
    source: &SourceImage,
    layout: &Layout,
    epoch: &Epoch,
    inputs: &str,
) -> HashMap<String, String> {
    let created = epoch.rfc3339();
    let mut labels: HashMap<String, String> = recipe.flavor.labels.clone().into_iter().collect();
    labels.extend([
        (label::BASE_NAME.into(), source.name.clone()),
        (label::BASE_DIGEST.into(), source.digest.clone()),
        (label::CREATED.into(), created),
        (label::VERSION.into(), recipe.target.tag()),
        (label::PYTHON_VERSION.into(), layout.python.version.clone()),
        (
            label::OS_VERSION.into(),
            format!(
                "{} {}",
                layout.os.id.as_deref().unwrap_or("unknown"),
                layout.os.version_id.as_deref().unwrap_or("")
            )
            .trim()
            .to_string(),
        ),
        (label::PROFILE.into(), recipe.profile.name.clone()),
        (label::INPUTS.into(), inputs.to_string()),
        (label::STDLIB_ZIP.into(), layout.python.stdlib_zip.clone()),
        (label::SHELL.into(), recipe.shell.name().to_string()),
    ]);
    let broken = layout.broken_modules();
    if !broken.is_empty() {
        labels.insert(label::BROKEN_MODULES.into(), broken.join(","));
    }
    labels
}
