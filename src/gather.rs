//! The gather stage: the source image's own interpreter describes its layout and
//! gathers the raw runtime root (templates/context/dpy_gather); BuildKit exports the
//! result to dpy as a tar, which is unpacked here and its layout read, once.
//!
//! What comes back was written by the source's own code, so it is untrusted data: the
//! tar is bounded while it arrives, unpacked entry by entry through `unpack`, and handed
//! on as a `tree::Tree`, a directory handle that no later stage can leave.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::render;
use crate::tree::Tree;
use crate::unpack::{self, Bounds, Unpacked};

/// What the gather stage handed over for one platform: the exported tree, unpacked, and
/// the layout its interpreter reported.
pub struct Gathered {
    pub source: SourceImage,
    pub layout: Layout,
    /// The export (layout.json, stdlib.json, root/, stubs/), reached only through this
    /// handle.
    pub export: Tree,
    /// Holds the export's directory until the distill is done.
    pub work: tempfile::TempDir,
    /// The -buildroot image's base, built and pinned beside the gather (crate::builder);
    /// none when the -buildroot image is not asked for.
    pub builder: Option<crate::builder::Builder>,
    /// `DPY-WARN` lines the gather step printed (none when BuildKit took it from cache).
    pub warnings: Vec<String>,
    pub progress: Progress,
    pub started: Instant,
}

/// Runs the gather stage of `context` for `platform`, from `source` (resolved by the
/// caller, which also records its digest among the build's inputs).
pub async fn gather(
    engine: &Engine,
    source: SourceImage,
    context: &BuildContext,
    platform: &str,
    bounds: Bounds,
    no_cache: bool,
    progress: Progress,
) -> Result<Gathered> {
    let started = Instant::now();
    progress.note(&format!("source {} ({})", source.name, source.digest));

    let work = tempfile::Builder::new()
        .prefix("dpy-build-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let Exported {
        tree: export,
        built,
        unpacked,
        unpack_time,
    } = exported(
        engine,
        context,
        "export",
        platform,
        no_cache,
        bounds,
        &source.name,
        &progress,
        work.path(),
    )
    .await?;
    // scripts/bench reads this line: what checking the export costs a build.
    progress.note(&format!(
        "unpacked: {} export entries ({:.1} MB), each checked, {:.1}s",
        unpacked.entries,
        unpacked.bytes as f64 / 1e6,
        unpack_time.as_secs_f64()
    ));
    if !unpacked.privileged.is_empty() {
        progress.warn(&format!(
            "the source's export marked {} file(s) setuid or setgid ({}); the runtime root has them without those bits: it runs as nonroot and has no use for a way back to root",
            unpacked.privileged.len(),
            unpacked.privileged.join(", ")
        ));
    }
    let layout = Layout::parse(&crate::layout::answer(&export, "layout.json")?)
        .map_err(|e| e.prefixed(&source.name))?;
    Ok(Gathered {
        source,
        layout,
        export,
        work,
        builder: None,
        warnings: built.warnings,
        progress,
        started,
    })
}

/// What the stage `target` of `context` leaves (the source's code wrote it, all of it),
/// built for `platform` and exported as a tar into `work`, bounded while it arrives,
/// then unpacked entry by entry into `work`/`target`.
#[allow(clippy::too_many_arguments)]
pub async fn exported(
    engine: &Engine,
    context: &BuildContext,
    target: &str,
    platform: &str,
    no_cache: bool,
    bounds: Bounds,
    source: &str,
    progress: &Progress,
    work: &Path,
) -> Result<Exported> {
    let tar = work.join(format!("{target}.tar"));
    let build = engine::build(
        engine,
        BuildSpec {
            context,
            dockerfile: render::BUILDROOT_DOCKERFILE,
            target,
            platform,
            output: Output::Tar(tar.clone()),
            no_cache,
            build_args: HashMap::new(),
            labels: HashMap::new(),
        },
        progress,
    );
    // The tar is bounded while it arrives, not only once it is whole: a source that
    // writes without end would otherwise fill the disk first.
    let built = tokio::select! {
        built = build => built?,
        over = outgrows(&tar, bounds) => return Err(over.prefixed(source)),
    };
    let tree = Tree::create(&work.join(target))?;
    let t = Instant::now();
    let source = source.to_string();
    let (tree, unpacked) = crate::offload::run(move || {
        let file = std::fs::File::open(&tar).map_err(|e| Error::io(&tar, e))?;
        let unpacked = unpack::unpack(std::io::BufReader::new(file), &tree, bounds, &source)?;
        let _ = std::fs::remove_file(&tar);
        Ok((tree, unpacked))
    })
    .await?;
    Ok(Exported {
        tree,
        built,
        unpacked,
        unpack_time: t.elapsed(),
    })
}

/// A stage's files, exported and unpacked ([`exported`]).
pub struct Exported {
    pub tree: Tree,
    pub built: engine::Built,
    /// What the unpacking counted and dropped.
    pub unpacked: Unpacked,
    pub unpack_time: std::time::Duration,
}

/// Resolves once the tar at `path` is larger than an export within `bounds` can be
/// (its data plus a header and padding for each entry); never while it is smaller.
async fn outgrows(path: &Path, bounds: Bounds) -> Error {
    let most = bounds
        .bytes
        .saturating_add(bounds.entries.saturating_mul(1024))
        .saturating_add(1 << 20);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > most {
            return Error::SourceUnfit(format!(
                "the export is past {most} bytes and still growing; a gather stage writes far less, so dpy stopped the build (raise {} if the source really is that large)",
                unpack::MAX_BYTES_ENV
            ));
        }
    }
}
