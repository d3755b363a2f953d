//! The images stage: the -buildroot and runtime images of one platform, built untagged
//! from the rendered context plus the distilled root, and the tags that name them once
//! every platform of the target has built (so a failure tags nothing).

use std::collections::HashMap;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::epoch::{self, Epoch};
use crate::error::Result;
use crate::layout::Layout;
use crate::recipe::Recipe;
use crate::render;

/// Names the stdlib modules left out because they do not import in the source (comma-
/// separated), for `dpy test` to expect them absent.
pub const BROKEN_MODULES_LABEL: &str = "io.dpy.modules.broken";

/// A built image and the tag it is to get.
#[derive(Debug, Clone)]
pub struct TaggedImage {
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

/// The two images of one platform, built and held, not yet tagged.
#[derive(Debug, Clone)]
pub struct Images {
    pub runtime: TaggedImage,
    pub buildroot: TaggedImage,
}

/// The images of one target on one platform: how they build and where they go.
pub struct ImageSpec<'a> {
    pub recipe: &'a Recipe,
    pub platform: String,
    pub no_cache: bool,
    pub repository: &'a str,
    /// Added to both tags when several platforms share one local image store.
    pub tag_suffix: Option<String>,
    /// The time both images carry everywhere: configs, history, and the file times of
    /// the layers they add (crate::epoch).
    pub epoch: Epoch,
    /// The digest of what the images are made of (crate::inputs), for their label.
    pub inputs: String,
    /// The source image's layers: the -buildroot image keeps them byte for byte.
    pub source_layers: Vec<String>,
}

/// Builds the -buildroot image, then the runtime image, both held and untagged. The
/// context is the rendered one plus the runtime Dockerfile and root.tar.
pub async fn build(
    engine: &Engine,
    spec: &ImageSpec<'_>,
    context: &BuildContext,
    layout: &Layout,
    labels: &HashMap<String, String>,
    progress: &Progress,
) -> Result<Images> {
    let build_args: HashMap<String, String> = [
        (
            "DPY_PYTHON_VERSION".to_string(),
            layout.python.version.clone(),
        ),
        (
            "DPY_SITE_PACKAGES".to_string(),
            layout.python.purelib.clone(),
        ),
    ]
    .into();
    let buildroot = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "buildroot",
            platform: &spec.platform,
            output: Output::Image,
            no_cache: spec.no_cache,
            build_args,
            labels: labels.clone(),
        },
        progress,
    )
    .await?;
    // BuildKit writes the wall clock into configs and into the files COPY and RUN make;
    // both images get the epoch instead, so the same inputs give the same image ids.
    let buildroot = held(buildroot);
    let buildroot = match epoch::pin(
        engine,
        &buildroot.0,
        &buildroot.1,
        &spec.epoch,
        &spec.source_layers,
    )
    .await
    {
        Ok(pinned) => (pinned, buildroot.1),
        Err(e) => {
            engine.release(&buildroot.1).await;
            return Err(e);
        }
    };
    let runtime = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::RUNTIME_DOCKERFILE,
            target: "runtime",
            platform: &spec.platform,
            output: Output::Image,
            no_cache: spec.no_cache,
            build_args: HashMap::new(),
            labels: labels.clone(),
        },
        progress,
    )
    .await;
    let runtime = match runtime {
        Ok(built) => {
            let (id, hold) = held(built);
            match epoch::pin(engine, &id, &hold, &spec.epoch, &[]).await {
                Ok(pinned) => (pinned, hold),
                Err(e) => {
                    engine.release(&hold).await;
                    engine.release(&buildroot.1).await;
                    return Err(e);
                }
            }
        }
        Err(e) => {
            engine.release(&buildroot.1).await;
            return Err(e);
        }
    };
    let suffix = spec
        .tag_suffix
        .as_deref()
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    let named = |tag: String, (id, hold): Held| TaggedImage {
        repository: spec.repository.to_string(),
        tag: format!("{tag}{suffix}"),
        id,
        hold,
    };
    Ok(Images {
        runtime: named(spec.recipe.target.tag(), runtime),
        buildroot: named(spec.recipe.target.buildroot_tag(), buildroot),
    })
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

/// Tags both images. Callers tag only once every platform of a target has built, so a
/// failure anywhere leaves no tag behind.
pub async fn tag(engine: &Engine, images: &Images) -> Result<()> {
    for image in [&images.buildroot, &images.runtime] {
        engine.tag(&image.id, &image.repository, &image.tag).await?;
    }
    for image in [&images.buildroot, &images.runtime] {
        engine.release(&image.hold).await;
    }
    Ok(())
}

/// Removes images that will not be tagged (unless a tag of someone else's names them).
pub async fn discard(engine: &Engine, images: &Images) {
    for image in [&images.runtime, &images.buildroot] {
        engine.release(&image.hold).await;
    }
}

/// The labels of both images: the flavor's, the OCI ones, and dpy's own.
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
        (
            "org.opencontainers.image.base.name".into(),
            source.name.clone(),
        ),
        (
            "org.opencontainers.image.base.digest".into(),
            source.digest.clone(),
        ),
        ("org.opencontainers.image.created".into(), created),
        (
            "org.opencontainers.image.version".into(),
            recipe.target.tag(),
        ),
        (
            "io.dpy.python.version".into(),
            layout.python.version.clone(),
        ),
        (
            "io.dpy.os.version".into(),
            format!(
                "{} {}",
                layout.os.id.as_deref().unwrap_or("unknown"),
                layout.os.version_id.as_deref().unwrap_or("")
            )
            .trim()
            .to_string(),
        ),
        ("io.dpy.profile".into(), recipe.profile.name.clone()),
        (crate::inputs::LABEL.into(), inputs.to_string()),
        (
            crate::runtime::SHELL_LABEL.into(),
            recipe.shell.name().to_string(),
        ),
    ]);
    let broken = layout.broken_modules();
    if !broken.is_empty() {
        labels.insert(BROKEN_MODULES_LABEL.into(), broken.join(","));
    }
    labels
}
