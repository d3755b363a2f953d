//! The gather stage: the source image's own interpreter describes its layout and
//! gathers the raw runtime root (templates/context/dpy_gather); BuildKit exports the
//! result to dpy as a tar, which is unpacked here and its layout read, once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::render;

/// What the gather stage handed over for one platform: the exported tree, unpacked, and
/// the layout its interpreter reported.
pub struct Gathered {
    pub source: SourceImage,
    pub layout: Layout,
    /// Holds `export/` (layout.json, stdlib.json, root/, stubs/) until the distill is done.
    pub work: tempfile::TempDir,
    /// `DPY-WARN` lines the gather step printed (none when BuildKit took it from cache).
    pub warnings: Vec<String>,
    pub progress: Progress,
    pub started: Instant,
}

impl Gathered {
    pub fn export_dir(&self) -> PathBuf {
        self.work.path().join("export")
    }
}

/// Runs the gather stage of `context` for `platform`, from `source` (resolved by the
/// caller, which also records its digest among the build's inputs).
pub async fn gather(
    engine: &Engine,
    source: SourceImage,
    context: &BuildContext,
    platform: &str,
    no_cache: bool,
    progress: Progress,
) -> Result<Gathered> {
    let started = Instant::now();
    progress.note(&format!("source {} ({})", source.name, source.digest));

    let work = tempfile::Builder::new()
        .prefix("dpy-build-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let export_tar = work.path().join("export.tar");
    let built = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target: "export",
            platform,
            output: Output::Tar(export_tar.clone()),
            no_cache,
            build_args: HashMap::new(),
            labels: HashMap::new(),
        },
        &progress,
    )
    .await?;
    let export_dir = work.path().join("export");
    unpack(&export_tar, &export_dir)?;
    let _ = std::fs::remove_file(&export_tar);
    let layout = Layout::load(&export_dir.join("layout.json"))?;
    Ok(Gathered {
        source,
        layout,
        work,
        warnings: built.warnings,
        progress,
        started,
    })
}

fn unpack(tar_path: &Path, dir: &Path) -> Result<()> {
    let file = std::fs::File::open(tar_path).map_err(|e| Error::io(tar_path, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| Error::Distill(format!("unpacking the gathered files: {e}")))
}
