//! The last stage of one platform: the gathered tree distilled into the runtime root and
//! its layers (crate::distill), and the images made from them (crate::images), untagged. Every
//! platform of a target finishes on its own, as soon as its tree is ready; if one fails,
//! the others' images go once all are done ([`settle`]).

use std::time::Instant;

use crate::context::BuildContext;
use crate::distill;
use crate::engine::source::SourceImage;
use crate::engine::Engine;
use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::gather::Gathered;
use crate::images::{self, Images};
use crate::plan::{Plan, TargetPlan};
use crate::stages::{Stage, StageTimes};

/// A built pair of images of one platform, not yet tagged, and what the records say.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub images: Images,
    pub source: SourceImage,
    pub python_version: String,
    pub os_name: String,
    pub site_packages: String,
    /// Stdlib extension modules left out: they do not import in the source either.
    pub broken_modules: Vec<String>,
    /// Where the -buildroot image's pip comes from (`source 24.0`, `apt 23.0.1`), if any.
    pub builder_pip: Option<String>,
    /// The runtime image's SBOM (SPDX JSON), as it carries it.
    pub sbom: String,
    /// The debug image's SBOM: the runtime's packages and what the debug layer adds.
    pub debug_sbom: Option<String>,
    /// Debug sections removed from the source's ELF files.
    pub stripped: distill::strip::Stripped,
    /// The build's epoch (RFC 3339).
    pub epoch: String,
    pub seconds: f64,
    /// This platform's distill, images and pin.
    pub stages: StageTimes,
}

impl Outcome {
    /// The SBOM of the image of `variant`: the runtime's, the debug image's; a
    /// -buildroot image has none of its own.
    pub fn sbom_of(&self, variant: crate::runtime::Variant) -> Option<&String> {
        use crate::runtime::Variant;
        match variant {
            Variant::Runtime => Some(&self.sbom),
            Variant::Debug => self.debug_sbom.as_ref(),
            Variant::Buildroot => None,
        }
    }
}

/// One platform's images (the platform at `i` of `target`), untagged.
pub async fn finish_platform(
    plan: &Plan,
    target: &TargetPlan<'_>,
    i: usize,
    context: BuildContext,
    gathered: Gathered,
    inputs: &str,
) -> Result<Outcome> {
    let p = &target.platforms[i];
    let epoch = Epoch::of(gathered.source.created);
    let spec = images::ImageSpec {
        recipe: &p.recipe,
        platform: p.platform.clone(),
        repository: &plan.repository,
        tag_suffix: p.tag_suffix.clone(),
        inputs: inputs.to_string(),
        mtime: layer_mtime(&epoch),
        epoch,
    };
    finish(p.engine(), spec, context, gathered)
        .await
        .map_err(|e| target.on(i, e))
}

/// Every platform's outcome, once all are done: on a failure, the images the other
/// platforms made are removed and the failure of the platform at `first` (the native
/// one, whose failure the emulated ones wait on), else the first in order, is returned.
pub async fn settle(
    target: &TargetPlan<'_>,
    results: Vec<Result<Outcome>>,
    first: Option<usize>,
) -> Result<Vec<Outcome>> {
    if results.iter().all(Result::is_ok) {
        return Ok(results.into_iter().flatten().collect());
    }
    for (p, result) in target.platforms.iter().zip(&results) {
        if let Ok(outcome) = result {
            images::discard(p.engine(), &outcome.images).await;
        }
    }
    let mut errors: Vec<(usize, Error)> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| (i, e)))
        .collect();
    let pick = errors
        .iter()
        .position(|(i, _)| Some(*i) == first)
        .unwrap_or(0);
    Err(errors.swap_remove(pick).1)
}

/// The file times of the layers dpy writes: SOURCE_DATE_EPOCH, else 0 (not the source's
/// date: the layers' bytes do not move when only the source's date does); never later
/// than the epoch, which every time of the images is.
fn layer_mtime(epoch: &Epoch) -> u64 {
    crate::epoch::source_date_epoch()
        .map_or(0, |s| s.max(0) as u64)
        .min(epoch.seconds())
}

/// Distills one platform's gathered tree and makes its images (untagged).
async fn finish(
    engine: &Engine,
    spec: images::ImageSpec<'_>,
    context: BuildContext,
    gathered: Gathered,
) -> Result<Outcome> {
    let recipe = spec.recipe;
    let Gathered {
        source,
        layout,
        export,
        work,
        builder,
        warnings,
        progress,
        started,
    } = gathered;
    let mut times = StageTimes::new();
    let t = Instant::now();
    let mtime = spec.mtime;
    // The layers go to files of dpy's own, not into the export.
    let layers = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let (export, distilled) = {
        let (layout, recipe) = (layout.clone(), recipe.clone());
        let (created, into) = (spec.epoch.rfc3339(), layers.path().to_path_buf());
        crate::offload::run(move || {
            let distilled = distill::distill(&export, &layout, &recipe, mtime, &created, &into);
            Ok((export, distilled))
        })
        .await?
    };
    let distilled = distilled.map_err(|e| e.prefixed(&source.name))?;
    times.add(Stage::Distill, t.elapsed());
    let file_name = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
    progress.note(&format!(
        "distilled: {} stdlib entries in {} ({:.1} MB), {} start-up files in {} ({:.1} MB), root {:.1} MB, {:.1}s",
        distilled.stats.zip_entries,
        file_name(&layout.python.stdlib_zip),
        distilled.stats.zip_bytes as f64 / 1e6,
        distilled.stats.startup_files,
        layout.python.stdlib,
        distilled.stats.startup_bytes as f64 / 1e6,
        distilled.root_tar.size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    if !distilled.stripped.files.is_empty() {
        progress.note(&format!(
            "debug info: {:.1} MB of debug sections removed from {} ELF files{}",
            distilled.stripped.bytes as f64 / 1e6,
            distilled.stripped.files.len(),
            if distilled.debug.is_some() {
                " (the -debug image keeps them)"
            } else {
                ""
            }
        ));
    }
    if let (Some(_), Some(tools)) = (&distilled.debug, &layout.debug) {
        progress.note(&tools.describe());
    }
    let builder_pip = builder.as_ref().and_then(|b| b.pip.describe());
    drop(export);
    drop(work);
    // A cached gather step prints nothing: its warnings come from layout.json instead.
    for warning in &layout.warnings {
        if !warnings.contains(warning) {
            progress.warn(warning);
        }
    }
    if builder.is_some() && builder_pip.is_none() {
        progress.warn(
            "the -buildroot image has no pip: the source has none, and neither a package repository nor PyPI answered; chroot-pip says how to add one",
        );
    }

    let labels = images::labels(recipe, &source, &layout, &spec.epoch, &spec.inputs);
    let runtime_layers = images::RuntimeLayers {
        root: &distilled.root_tar,
        debug: distilled.debug.as_ref().map(|d| &d.tar),
    };
    let built = images::build(
        engine,
        &spec,
        &context,
        &layout,
        &runtime_layers,
        builder.as_ref(),
        layers.path(),
        &labels,
        &progress,
        &mut times,
    )
    .await;
    // The builder image was only the -buildroot's base: its layers stay with it.
    if let Some(builder) = &builder {
        builder.release(engine).await;
        times.beside(&builder.times);
    }
    let built = built?;
    // Loaded: the layer files go.
    drop(layers);
    Ok(Outcome {
        images: built,
        python_version: layout.python.version.clone(),
        os_name: layout.os_name(),
        site_packages: layout.python.purelib.clone(),
        broken_modules: layout.broken_modules(),
        builder_pip,
        sbom: distilled.sbom,
        debug_sbom: distilled.debug.map(|d| d.sbom),
        stripped: distilled.stripped.clone(),
        epoch: spec.epoch.rfc3339(),
        source,
        seconds: started.elapsed().as_secs_f64(),
        stages: times,
    })
}
