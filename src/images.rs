//! The images stage: the -buildroot and runtime images of one platform, built untagged
//! from the rendered context plus the distilled root, and the tags that name them once
//! every platform of the target has built (so a failure tags nothing).

use std::collections::HashMap;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::epoch::Epoch;
use crate::error::Result;
use crate::labels as label;
use crate::layout::Layout;
use crate::recipe::Recipe;
use crate::render;
use crate::runtime::Variant;

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
    pub platform: String,
    pub no_cache: bool,
    pub repository: &'a str,
    /// Added to every tag when several platforms share one local image store.
    pub tag_suffix: Option<String>,
    /// The time every image carries everywhere: configs, history, and the file times
    /// of the layers it adds (crate::epoch).
    pub epoch: Epoch,
    /// The digest of what the images are made of (crate::inputs), for their label.
    pub inputs: String,
    /// The source image's layers: the -buildroot image keeps them byte for byte.
    pub source_layers: Vec<String>,
}

/// A tag with a platform's suffix, when it carries one (`3.12-alpine3.20-amd64`).
pub fn tag_with(tag: &str, suffix: Option<&str>) -> String {
    match suffix {
        Some(suffix) => format!("{tag}-{suffix}"),
        None => tag.to_string(),
    }
}

/// How one variant builds: which Dockerfile, which stage of it, what it keeps.
fn stage(variant: Variant) -> (&'static str, &'static str) {
    match variant {
        Variant::Buildroot => (render::BUILDROOT_DOCKERFILE, "buildroot"),
        Variant::Runtime => (render::RUNTIME_DOCKERFILE, "runtime"),
        // The runtime stage plus debug.tar: its first layer is the runtime's.
        Variant::Debug => (render::RUNTIME_DOCKERFILE, "debug"),
    }
}

/// Builds each variant the recipe asks for, held and untagged. The context is the
/// rendered one plus the runtime Dockerfile, root.tar and (for debug) debug.tar. A
/// failure releases what was built.
pub async fn build(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    context: &BuildContext,
    layout: &Layout,
    labels: &HashMap<String, String>,
    progress: &Progress,
) -> Result<Images> {
    let mut built = Images(Vec::new());
    for &variant in &spec.recipe.variants {
        match build_one(engine, spec, variant, context, layout, labels, progress).await {
            Ok((id, hold)) => built.0.push(TaggedImage {
                variant,
                repository: spec.repository.to_string(),
                tag: tag_with(
                    &spec.recipe.target.tag_of(variant),
                    spec.tag_suffix.as_deref(),
                ),
                id,
                hold,
            }),
            Err(e) => {
                discard(engine, &built).await;
                return Err(e);
            }
        }
    }
    Ok(built)
}

/// One variant's image, built, held and pinned to the epoch.
async fn build_one(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    variant: Variant,
    context: &BuildContext,
    layout: &Layout,
    labels: &HashMap<String, String>,
    progress: &Progress,
) -> Result<Held> {
    let (dockerfile, target) = stage(variant);
    let build_args: HashMap<String, String> = match variant {
        Variant::Buildroot => [
            (
                "DPY_PYTHON_VERSION".to_string(),
                layout.python.version.clone(),
            ),
            (
                "DPY_SITE_PACKAGES".to_string(),
                layout.python.purelib.clone(),
            ),
        ]
        .into(),
        _ => HashMap::new(),
    };
    let mut labels = labels.clone();
    labels.insert(crate::labels::VARIANT.to_string(), variant.to_string());
    let built = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile,
            target,
            platform: &spec.platform,
            output: Output::Image,
            no_cache: spec.no_cache,
            build_args,
            labels,
        },
        progress,
    )
    .await?;
    // BuildKit writes the wall clock into configs and into the files COPY and RUN make;
    // every image gets the epoch instead, so the same inputs give the same image ids.
    let (id, hold) = held(built);
    // The -buildroot image keeps the source's layers as they are.
    let kept: &[String] = match variant {
        Variant::Buildroot => &spec.source_layers,
        _ => &[],
    };
    match crate::pin::pin(engine, &id, &hold, &spec.epoch, kept).await {
        Ok(pinned) => Ok((pinned, hold)),
        Err(e) => {
            engine.release(&hold).await;
            Err(e)
        }
    }
}

/// An image id and the hold tag that keeps it until it is tagged.
type Held = (String, String);

/// What an image build returns, as a held image (engine::build checked both are there).
fn held(built: engine::Built) -> Held {
    (
        built.image_id.expect("checked by build"),
        built.hold.expect("an image build holds its image"),
    )
}

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
