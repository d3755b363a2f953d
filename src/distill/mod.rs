//! Distill: the gathered files become the runtime root.
//!
//! Input is what the gather stage exported (root/, stubs/) and the layout it reported.
//! Output is the root as one deterministic tar, plus figures. The steps, each in its own module:
//! the stdlib zip (`stdlib`), ensurepip's stub, accounts (`accounts`), /tmp, the
//! shared-library check (`elf`), debug info out (`strip`), the SBOM (`sbom`), the layer tar (`layer`), and the
//! debug variant's layer over it (`debug`).

pub mod accounts;
pub mod debug;
pub mod elf;
pub mod layer;
pub mod marshal;
pub mod sbom;
pub mod stdlib;
pub mod strip;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::recipe::Recipe;
use crate::tree::{self, Kind, Tree};

/// The distilled runtime root.
#[derive(Debug)]
pub struct Distilled {
    /// The SBOM the root carries at [`sbom::PATH`].
    pub sbom: String,
    /// The root as a tar, the runtime image's only layer.
    pub root_tar: layer::LayerFile,
    /// The debug image's layer over it, when the recipe makes the debug variant.
    pub debug: Option<debug::DebugLayer>,
    /// What stripping debug info removed (nothing, for a stripped source).
    pub stripped: strip::Stripped,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub zip_entries: usize,
    pub zip_bytes: u64,
    /// On disk in the stdlib directory: the modules a bare start imports, the index and
    /// the top-level names.
    pub startup_files: usize,
    pub startup_bytes: u64,
}

/// Distills an exported gather tree (`export`, reached only through its handle) in
/// place, and writes its layers into the directory `layers` (dpy's own, not the
/// export's); every file of the layer gets `mtime`, and the SBOM says it was made at
/// `created` (the build's epoch).
pub fn distill(
    export: &Tree,
    layout: &Layout,
    recipe: &Recipe,
    mtime: u64,
    created: &str,
    layers: &Path,
) -> Result<Distilled> {
    let root = export.subtree("root")?;
    let py = &layout.python;
    // Where an in-container directory of the layout is in the export: resolved inside
    // the root, never on the host.
    let locate = |what: &str, path: &str| -> Result<PathBuf> {
        root.resolve(path)
            .map(|found| Path::new("root").join(found))
            .ok_or_else(|| {
                Error::SourceUnfit(format!(
                    "the layout's {what} {path} is not in the gathered root"
                ))
            })
    };
    let place = |what: &str, path: &str| -> Result<PathBuf> {
        root.place(path)
            .map(|found| Path::new("root").join(found))
            .ok_or_else(|| {
                Error::SourceUnfit(format!(
                    "the layout's {what} {path} is not in a directory of the gathered root"
                ))
            })
    };

    // 1. The stdlib zip, with ensurepip's stub in place of the real package.
    let stdlib = locate("stdlib", &py.stdlib)?;
    // What is not the stdlib is the gather stage's decision; what stays on disk is
    // images/zip.toml's.
    let keep_out: Vec<PathBuf> = layout
        .stdlib_keep_out
        .iter()
        .chain(&recipe.zip.on_disk)
        .map(PathBuf::from)
        .collect();
    let mut entries = stdlib::Entries::collect(export, &root, &stdlib, &keep_out)?;
    for name in export.names("stubs") {
        let stub = Path::new("stubs").join(&name);
        match export.kind(&stub) {
            Some(Kind::Dir) => entries.overlay(export, &stub, &name)?,
            Some(Kind::File) => entries.insert(&name, &stub),
            _ => {
                return Err(Error::Distill(format!(
                    "{} is neither a file nor a directory; the stubs are dpy's own files",
                    export.show(&stub)
                )))
            }
        }
    }
    if entries.is_empty() {
        return Err(Error::Distill(format!(
            "the gather stage found no stdlib under {}",
            py.stdlib
        )));
    }
    // The whole stdlib in the stdlib zip; what a bare start imports stays on disk in the
    // stdlib directory too, with the stdlib zip's index (images/zip.toml says why).
    if layout.startup.is_empty() {
        return Err(Error::Distill(
            "the gather stage listed no modules a bare start imports".into(),
        ));
    }
    let stdlib_zip = place("stdlib zip", &py.stdlib_zip)?;
    let hot: std::collections::BTreeSet<String> = layout.hot.iter().cloned().collect();
    let zip_bytes = entries.write(export, &stdlib_zip, &hot)?;
    let index = stdlib::index(export, &stdlib_zip, &py.stdlib_zip, py.zip_implicit_dirs)?;
    let startup: std::collections::BTreeSet<String> = layout.startup.iter().cloned().collect();
    let landmark = place("landmark", &py.landmark)?;
    let on_disk: std::collections::BTreeSet<PathBuf> = startup
        .iter()
        .map(|name| stdlib.join(name))
        .chain([landmark.clone()])
        .collect();
    let zipped: Vec<PathBuf> = entries
        .paths()
        .filter(|p| p.starts_with(&stdlib) && !on_disk.contains(*p))
        .map(Path::to_path_buf)
        .collect();
    for path in &zipped {
        export.remove_file(path)?;
    }
    let (startup_files, startup_bytes) = stdlib::write_startup(
        export,
        &entries.subset(&startup),
        &stdlib,
        &index,
        &stdlib::tops(&entries),
    )?;
    remove_empty_dirs(export, &stdlib)?;
    if export.kind(&landmark).is_none() {
        return Err(Error::Distill(format!(
            "the prefix landmark {} is missing: the interpreter would not find its prefix",
            py.landmark
        )));
    }
    for dir in [&py.purelib, &py.lib_dynload] {
        root.create_dir_all(tree::inside(dir))?;
    }

    // 2. Accounts and the directories every process expects.
    accounts::write(&root)?;
    root.create_dir_all("tmp")?;
    root.chmod("tmp", 0o1777)?;

    // 3. Every ELF file must load from this root alone.
    let libc = if layout.os.libc == "musl" {
        elf::Libc::Musl
    } else {
        elf::Libc::Glibc
    };
    elf::check_closure(&root, libc)?;

    // 3b. Debug info out (distill::strip); the debug variant's layer keeps the originals.
    let keep_symbols = recipe.makes(crate::runtime::Variant::Debug);
    let stripped = strip::strip_root(&root, |relative, original| {
        if !keep_symbols {
            return Ok(());
        }
        let to = Path::new(debug::DIR).join(relative);
        if let Some(dir) = to.parent() {
            export.create_dir_all(dir)?;
        }
        export.write(&to, root.mode(relative)?, original)
    })?;
    match (recipe.shell, root.exists("/bin/sh")) {
        (crate::runtime::Shell::Dash, false) => {
            return Err(Error::Distill(
                "the runtime root has no /bin/sh: the gather stage found no dash".into(),
            ))
        }
        (crate::runtime::Shell::None, true) => {
            return Err(Error::Distill(
                "the runtime root has a /bin/sh although --shell none asked for no shell".into(),
            ))
        }
        _ => {}
    }

    // 4. What the root carries, for scanners.
    let sbom = sbom::write(&root, layout, created)?;

    // 5. One deterministic layer.
    let root_tar = layer::write_root(
        &root,
        &[crate::runtime::HOME],
        mtime,
        &layers.join("root.tar"),
    )?;

    // 6. The debug variant's tools over it, as a layer of their own.
    let debug = if recipe.makes(crate::runtime::Variant::Debug) {
        Some(debug::layer(
            export,
            &root,
            layout,
            libc,
            mtime,
            created,
            &layers.join("debug.tar"),
        )?)
    } else {
        None
    };
    Ok(Distilled {
        sbom,
        root_tar,
        debug,
        stripped,
        stats: Stats {
            zip_entries: entries.len(),
            zip_bytes,
            startup_files,
            startup_bytes,
        },
    })
}

/// Removes the empty directories under `dir`, deepest first.
fn remove_empty_dirs(export: &Tree, dir: &Path) -> Result<()> {
    for walked in export.walk(dir, &|_: &Path| false)?.iter().rev() {
        if walked.kind == Kind::Dir {
            // Fails harmlessly when not empty.
            export.remove_empty_dir(&walked.path);
        }
    }
    Ok(())
}
