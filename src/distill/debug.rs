//! The debug variant's layer: the tools the gather stage collected (`debug/` in the
//! export: busybox and its applet links, or the source's own shell and tools), their
//! libraries and the package records that now include them. The debug image is the
//! runtime image plus this one layer, so it shares the runtime's layer in a registry.

use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::Layout;

use super::{elf, layer, sbom};
use crate::tree::{Kind, Tree};

/// Where the gather stage puts the debug tools, in the export.
pub const DIR: &str = "debug";

/// The debug image's own layer and the SBOM of the whole debug image.
#[derive(Debug)]
pub struct DebugLayer {
    pub tar: layer::LayerFile,
    /// The runtime's packages and the tools' (the layer carries it at [`sbom::PATH`]).
    pub sbom: String,
}

/// Builds the debug layer over `root`, the distilled runtime root, which it changes:
/// call it once the runtime layer is archived. Every ELF file of the tools must load
/// from the runtime root plus the layer.
pub fn layer(
    export: &Tree,
    root: &Tree,
    layout: &Layout,
    libc: elf::Libc,
    mtime: u64,
    created: &str,
    out: &Path,
) -> Result<DebugLayer> {
    if export.kind(DIR) != Some(Kind::Dir) {
        return Err(Error::Distill(
            "the gather stage collected no debug tools (no debug/ in its export)".into(),
        ));
    }
    let tools = export.subtree(DIR)?;
    overlay(&tools, root)?;
    elf::check_closure(root, libc)?;
    let sbom = sbom::write(root, layout, created)?;
    sbom::write_into(&tools, &sbom)?;
    let tar = layer::write_root(&tools, &[], mtime, out)?;
    Ok(DebugLayer { tar, sbom })
}

/// Lays `upper` over `lower` as an image layer over another: files and links of
/// `upper` replace those of `lower` (a link is copied as a link, never followed);
/// directories that `lower` has (or reaches through a link of the same name) are
/// entered, not replaced. Modes come along as they are: the export's setuid bits were
/// already dropped when it was unpacked.
pub fn overlay(upper: &Tree, lower: &Tree) -> Result<()> {
    for walked in upper.walk("", &|_: &Path| false)? {
        let relative = walked.path.as_path();
        let below = lower.kind(relative);
        match walked.kind {
            Kind::Dir => {
                // In an image, a directory in the upper layer hides a link below it (a
                // merged-/usr root's /bin -> usr/bin): refused, not copied through the link.
                if below == Some(Kind::Link) {
                    return Err(Error::Distill(format!(
                        "the directory {} would hide the runtime root's link of that name",
                        relative.display()
                    )));
                }
                if below.is_none() {
                    lower.create_dir_all(relative)?;
                }
            }
            Kind::Link | Kind::File => {
                if below == Some(Kind::Dir) {
                    return Err(Error::Distill(format!(
                        "{} would replace a directory of the runtime root",
                        relative.display()
                    )));
                }
                if walked.kind == Kind::Link {
                    lower.symlink(upper.read_link(relative)?, relative)?;
                } else {
                    lower.copy_from(upper, relative, relative)?;
                }
            }
            Kind::Other => {
                return Err(Error::Distill(format!(
                    "the debug tools hold a device, fifo or socket ({})",
                    relative.display()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn an_overlay_replaces_files_and_links_and_enters_directories() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        let (l, u) = (lower.path(), upper.path());
        std::fs::create_dir_all(l.join("usr/bin")).unwrap();
        symlink("usr/bin", l.join("bin")).unwrap();
        std::fs::write(l.join("usr/bin/python3"), "py").unwrap();
        std::fs::write(l.join("usr/bin/status"), "old").unwrap();
        std::fs::create_dir_all(u.join("usr/bin")).unwrap();
        symlink("usr/bin", u.join("bin")).unwrap();
        std::fs::write(u.join("usr/bin/busybox"), "bb").unwrap();
        std::fs::write(u.join("usr/bin/status"), "new").unwrap();
        symlink("/usr/bin/busybox", u.join("usr/bin/ls")).unwrap();

        let open = |p: &Path| Tree::open(p).unwrap();
        overlay(&open(u), &open(l)).unwrap();
        let read = |p: &str| std::fs::read_to_string(l.join(p)).unwrap();
        assert_eq!(read("bin/python3"), "py");
        assert_eq!(read("usr/bin/busybox"), "bb");
        assert_eq!(read("usr/bin/status"), "new");
        assert_eq!(
            std::fs::read_link(l.join("usr/bin/ls")).unwrap(),
            Path::new("/usr/bin/busybox")
        );
        assert!(l.join("bin").is_symlink());

        // A real directory where the lower root has a link would hide the link.
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(upper.path().join("bin")).unwrap();
        assert!(overlay(&open(upper.path()), &open(l)).is_err());
    }

    /// A link in the root where the tools' file goes is replaced, not written through.
    #[test]
    fn an_overlay_writes_nothing_through_a_link_below() {
        let base = tempfile::tempdir().unwrap();
        let host = base.path().join("host");
        std::fs::write(&host, "host").unwrap();
        let (l, u) = (base.path().join("lower"), base.path().join("upper"));
        std::fs::create_dir_all(l.join("bin")).unwrap();
        std::fs::create_dir_all(u.join("bin")).unwrap();
        symlink(&host, l.join("bin/sh")).unwrap();
        std::fs::write(u.join("bin/sh"), "busybox").unwrap();
        overlay(&Tree::open(&u).unwrap(), &Tree::open(&l).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host");
        assert_eq!(
            std::fs::read_to_string(l.join("bin/sh")).unwrap(),
            "busybox"
        );
    }
}
