//! The debug variant's layer: the tools the gather stage collected (`debug/` in the
//! export: busybox and its applet links, or the source's own shell and tools), their
//! libraries and the package records that now include them. The debug image is the
//! runtime image plus this one layer, so it shares the runtime's layer in a registry.

use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::Layout;

use super::{elf, layer, rootfs, sbom};

/// Where the gather stage puts the debug tools, in the export.
pub const DIR: &str = "debug";

/// The debug image's own layer and the SBOM of the whole debug image.
#[derive(Debug)]
pub struct DebugLayer {
    pub tar: Vec<u8>,
    /// The runtime's packages and the tools' (the layer carries it at [`sbom::PATH`]).
    pub sbom: String,
}

/// Builds the debug layer over `root`, the distilled runtime root, which it changes:
/// call it once the runtime layer is archived. Every ELF file of the tools must load
/// from the runtime root plus the layer.
pub fn layer(
    export: &Path,
    root: &Path,
    layout: &Layout,
    libc: elf::Libc,
    mtime: u64,
    created: &str,
) -> Result<DebugLayer> {
    let tools = export.join(DIR);
    if !tools.is_dir() {
        return Err(Error::Distill(
            "the gather stage collected no debug tools (no debug/ in its export)".into(),
        ));
    }
    rootfs::overlay(&tools, root)?;
    elf::check_closure(root, libc)?;
    let sbom = sbom::write(root, layout, created)?;
    let inside = rootfs::join(&tools, sbom::PATH);
    if let Some(dir) = inside.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::write(&inside, &sbom).map_err(|e| Error::io(&inside, e))?;
    let tar = layer::tar_root(&tools, &[], mtime)?;
    Ok(DebugLayer { tar, sbom })
}
