//! `--if-changed`: a target whose inputs (crate::inputs) equal those the last build of
//! its tag recorded is not built again. The last build is asked where it went: the
//! metadata file and the engine for a local build, the registry for a pushed one.

use crate::engine::Engine;
use crate::error::Result;
use crate::inputs::{Inputs, Previous};
use crate::plan::{Plan, TargetPlan};
use crate::summary;

/// `Some(Unchanged)` when the target need not be built: asked for, and the last build of
/// its tag was made of the same inputs (`digest`, theirs) and pushed in the same
/// compression. Otherwise None, after saying what moved when there was a last build.
pub async fn unchanged(
    plan: &Plan,
    target: &TargetPlan<'_>,
    inputs: &Inputs,
    digest: &str,
) -> Result<Option<summary::Done>> {
    if !plan.if_changed {
        return Ok(None);
    }
    // The first image made stands for the target (the runtime image by default).
    let first = target.target.tag_of(plan.variants[0]);
    let platform = &target.platforms[0];
    let previous = match &plan.destination {
        None => {
            let tag = crate::images::tag_with(&first, platform.tag_suffix.as_deref());
            let reference = format!("{}:{tag}", plan.repository);
            match recorded(&plan.metadata_file, &reference) {
                Some(p) if engine_has(platform.engine(), &reference, &p.digest).await => Some(p),
                _ => None,
            }
        }
        Some((destination, credentials)) => {
            crate::publish::recorded_inputs(destination, &first, credentials).await?
        }
    };
    match previous {
        Some(previous) if previous.is(digest, plan.compression) => {
            println!(
                "{}:{first} unchanged ({})",
                plan.repository, previous.digest
            );
            Ok(Some(summary::Done::Unchanged(previous.digest)))
        }
        Some(previous) => {
            target.progress(plan.progress, 0).note(&format!(
                "rebuilding: {}",
                crate::inputs::what_moved(&previous, inputs, plan.compression)
            ));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Whether the engine still holds `reference` as the image `id` (a recorded build whose
/// image was removed since is built again).
async fn engine_has(engine: &Engine, reference: &str, id: &str) -> bool {
    engine
        .docker()
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id)
        .is_some_and(|found| found == id)
}

/// The newest record of `reference` in the metadata file, if it has inputs.
fn recorded(path: &std::path::Path, reference: &str) -> Option<Previous> {
    let file = crate::metadata::load(path).ok()?;
    file.images
        .iter()
        .rev()
        .find(|r| r.reference == reference)
        .and_then(|r| {
            Some(Previous {
                inputs: r.inputs.clone()?,
                digest: r.digest.clone(),
                source_digest: Some(r.source_digest.clone()),
                compression: None,
            })
        })
}
