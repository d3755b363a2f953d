//! `dpy build`: the stages in order, for one target on one platform.
//!
//! target → recipe (flavor) → render → engine (gather, export) → distill → image
//! (buildroot, runtime) → tags. Each stage takes the previous stage's value; this module
//! only sequences them and keeps the rule that a failure tags nothing.

use std::collections::HashMap;
use std::time::Instant;

use crate::context::BuildContext;
use crate::distill::{self, Distilled};
use crate::engine::source::{self, SourceImage};
use crate::engine::{self, BuildSpec, Engine, Output, Progress, ProgressMode};
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::recipe::Recipe;
use crate::render;

/// Names the stdlib modules left out because they do not import in the source (comma-
/// separated), for `dpy test` to expect them absent.
pub const BROKEN_MODULES_LABEL: &str = "io.dpy.modules.broken";

/// One `(target, platform)` to build.
pub struct Job<'a> {
    pub recipe: &'a Recipe,
    pub platform: &'a Platform,
    pub repository: &'a str,
    /// Added to both tags when several platforms share one local image store.
    pub tag_suffix: Option<String>,
    pub no_cache: bool,
    pub progress: ProgressMode,
    pub distill: distill::Options,
}

/// A built pair of images, not yet tagged: `tag` names them.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub runtime: TaggedImage,
    pub buildroot: TaggedImage,
    pub source: SourceImage,
    pub python_version: String,
    pub os_name: String,
    pub site_packages: String,
    /// Stdlib extension modules left out: they do not import in the source either.
    pub broken_modules: Vec<String>,
    /// Where the -buildroot image's pip comes from (`source 24.0`, `apt 23.0.1`), if any.
    pub builder_pip: Option<String>,
    pub seconds: f64,
    pub warnings: Vec<String>,
    pub zip_entries: usize,
}

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

/// What the gather stage handed over for one platform: the exported tree, unpacked.
pub struct Gathered {
    pub source: SourceImage,
    pub context: BuildContext,
    /// Holds `export/` (layout.json, stdlib.json, root/, stubs/) until the distill is done.
    pub work: tempfile::TempDir,
    pub warnings: Vec<String>,
    pub progress: Progress,
    pub started: Instant,
}

impl Gathered {
    pub fn export_dir(&self) -> std::path::PathBuf {
        self.work.path().join("export")
    }
}

/// Gather, distill and build: the whole pipeline for one platform.
pub async fn run(engine: &Engine, job: Job<'_>) -> Result<Outcome> {
    let gathered = gather(engine, &job).await?;
    finish(engine, job, gathered).await
}

/// Resolves the source and runs the gather stage, whose files are exported to dpy.
pub async fn gather(engine: &Engine, job: &Job<'_>) -> Result<Gathered> {
    let started = Instant::now();
    let recipe = job.recipe;
    let platform = job.platform.to_string();
    let progress = Progress::new(job.progress, format!("{} {platform}", recipe.target));

    let source = source::resolve(engine, &recipe.source_image, &platform).await?;
    progress.note(&format!("source {} ({})", source.name, source.digest));

    let context = render::render_context(recipe)?;
    let work = tempfile::Builder::new()
        .prefix("dpy-build-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let export_tar = work.path().join("export.tar");
    let built = engine::build(
        engine,
        BuildSpec {
            context: &context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "export",
            platform: &platform,
            output: Output::Tar(export_tar.clone()),
            no_cache: job.no_cache,
            build_args: HashMap::new(),
            labels: HashMap::new(),
        },
        &progress,
    )
    .await?;
    unpack(&export_tar, &work.path().join("export"))?;
    let _ = std::fs::remove_file(&export_tar);
    Ok(Gathered {
        source,
        context,
        work,
        warnings: built.warnings,
        progress,
        started,
    })
}

/// Distills a gathered tree and builds both images (untagged).
pub async fn finish(engine: &Engine, job: Job<'_>, gathered: Gathered) -> Result<Outcome> {
    let Gathered {
        source,
        mut context,
        work,
        warnings: gathered_warnings,
        progress,
        started,
    } = gathered;
    let recipe = job.recipe;
    let export_dir = work.path().join("export");
    let t = Instant::now();
    let distilled = distill::distill(&export_dir, recipe, job.distill)?;
    let builder_pip = crate::layout::BuilderPip::load(&export_dir)?.describe();
    if builder_pip.is_none() {
        progress.warn(
            "the -buildroot image has no pip: the source has none, and neither a package repository nor PyPI answered; chroot-pip says how to add one",
        );
    }
    progress.note(&format!(
        "distilled: {} stdlib entries in {} ({:.1} MB), root {:.1} MB, {:.1}s",
        distilled.stats.zip_entries,
        distilled
            .layout
            .python
            .zip_path
            .rsplit('/')
            .next()
            .unwrap_or_default(),
        distilled.stats.zip_bytes as f64 / 1e6,
        distilled.root_tar.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    drop(work);
    // A cached gather step prints nothing: its warnings come from layout.json instead.
    for warning in &distilled.layout.warnings {
        if !gathered_warnings.contains(warning) {
            progress.warn(warning);
        }
    }

    let runtime_dockerfile = render::render_runtime(recipe, &distilled.layout)?;
    context.add(render::RUNTIME_DOCKERFILE, 0o644, runtime_dockerfile);
    context.add(render::ROOT_TAR, 0o644, distilled.root_tar.clone());

    let labels = labels(recipe, &source, &distilled, job.distill.mtime);
    let images = build_images(engine, &job, &context, &distilled, &labels, &progress).await?;

    let suffix = job
        .tag_suffix
        .as_deref()
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    let runtime = TaggedImage {
        repository: job.repository.to_string(),
        tag: format!("{}{suffix}", recipe.target.tag()),
        id: images.0 .0,
        hold: images.0 .1,
    };
    let buildroot = TaggedImage {
        repository: job.repository.to_string(),
        tag: format!("{}{suffix}", recipe.target.buildroot_tag()),
        id: images.1 .0,
        hold: images.1 .1,
    };
    let mut warnings = gathered_warnings;
    warnings.extend(distilled.layout.warnings.iter().cloned());
    warnings.dedup();
    Ok(Outcome {
        python_version: distilled.layout.python.version.clone(),
        os_name: distilled.layout.os_name(),
        site_packages: distilled.layout.python.purelib.clone(),
        broken_modules: distilled.layout.broken_modules(),
        builder_pip,
        zip_entries: distilled.stats.zip_entries,
        runtime,
        buildroot,
        source,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    })
}

/// Tags both images of an outcome. Callers tag only once every platform of a target has
/// built, so a failure anywhere leaves no tag behind.
pub async fn tag(engine: &Engine, outcome: &Outcome) -> Result<()> {
    for image in [&outcome.buildroot, &outcome.runtime] {
        engine.tag(&image.id, &image.repository, &image.tag).await?;
    }
    for image in [&outcome.buildroot, &outcome.runtime] {
        engine.release(&image.hold).await;
    }
    Ok(())
}

/// Removes the images of an outcome that will not be tagged (unless a tag of someone
/// else's names the same image).
pub async fn discard(engine: &Engine, outcome: &Outcome) {
    for image in [&outcome.runtime, &outcome.buildroot] {
        engine.release(&image.hold).await;
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

/// Builds the runtime and the -buildroot image, held; returns (runtime, buildroot).
async fn build_images(
    engine: &Engine,
    job: &Job<'_>,
    context: &BuildContext,
    distilled: &Distilled,
    labels: &HashMap<String, String>,
    progress: &Progress,
) -> Result<(Held, Held)> {
    let platform = job.platform.to_string();
    let build_args: HashMap<String, String> = [
        (
            "DPY_PYTHON_VERSION".to_string(),
            distilled.layout.python.version.clone(),
        ),
        (
            "DPY_SITE_PACKAGES".to_string(),
            distilled.layout.python.purelib.clone(),
        ),
    ]
    .into();
    let buildroot = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "buildroot",
            platform: &platform,
            output: Output::Image,
            no_cache: job.no_cache,
            build_args,
            labels: labels.clone(),
        },
        progress,
    )
    .await?;
    let buildroot = held(buildroot);
    let runtime = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::RUNTIME_DOCKERFILE,
            target: "runtime",
            platform: &platform,
            output: Output::Image,
            no_cache: job.no_cache,
            build_args: HashMap::new(),
            labels: labels.clone(),
        },
        progress,
    )
    .await;
    match runtime {
        Ok(built) => Ok((held(built), buildroot)),
        Err(e) => {
            engine.release(&buildroot.1).await;
            Err(e)
        }
    }
}

fn labels(
    recipe: &Recipe,
    source: &SourceImage,
    distilled: &Distilled,
    mtime: u64,
) -> HashMap<String, String> {
    let created = time::OffsetDateTime::from_unix_timestamp(mtime as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let layout = &distilled.layout;
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
    ]);
    let broken = layout.broken_modules();
    if !broken.is_empty() {
        labels.insert(BROKEN_MODULES_LABEL.into(), broken.join(","));
    }
    labels
}

fn unpack(tar_path: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let file = std::fs::File::open(tar_path).map_err(|e| Error::io(tar_path, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| Error::Distill(format!("unpacking the gathered files: {e}")))
}
