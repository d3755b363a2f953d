//! Compile once: stdlib bytecode made on the native platform, shared with emulated ones.
//!
//! A `.pyc` depends on the interpreter's magic number, the source bytes and the file
//! name recorded in it, never on the CPU. Byte-compiling the stdlib is the slowest part
//! of the gather stage, and under qemu it is several times slower still. So an emulated
//! platform's gather only digests its sources (stdlib.json) and writes none of them; every
//! source identical to the native one takes the native `.pyc`. The few that differ are
//! named after the platform (`_sysconfigdata__aarch64-linux-gnu.py`): the emulated
//! gather compiles those itself (two files, a fraction of a second under qemu), since
//! the native platform has them in no form. A stdlib that differs in anything else
//! (another release, a patched module) is gathered again, compiling under emulation:
//! slow, and right.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::gather::Gathered;
use crate::layout::Layout;
// stdlib.json, read and checked: its names are joined onto directories below.
use crate::stdlib_json::{manifest, Manifest};
use crate::tree::{Kind, Tree};

/// What sharing did for one platform.
#[derive(Debug, Clone)]
pub struct Shared {
    pub reused: usize,
    /// Compiled by the platform's own gather: the modules named after it.
    pub compiled_there: usize,
    /// How long the native platform took to compile the whole stdlib.
    pub native_compile_seconds: f64,
}

/// What emulated platforms take from the native one once its gather is done: its
/// bytecode, copied out of its export (the native distill, which goes on meanwhile,
/// removes from there what it zips), and the answers the sharing reads.
pub struct Native {
    manifest: Manifest,
    /// The native `.pyc` of each source stdlib.json lists, at its stdlib-relative name.
    stdlib: Tree,
    layout: Layout,
    platform: String,
    _dir: tempfile::TempDir,
}

impl Native {
    /// The native platform's (`platform`) bytecode and answers, from its gathered tree.
    pub fn of(gathered: &Gathered, platform: &str) -> Result<Native> {
        let manifest = manifest(gathered)?;
        let dir = tempfile::Builder::new()
            .prefix("dpy-native-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let stdlib = Tree::create(&dir.path().join("stdlib"))?;
        if manifest.compiled {
            let compiled = stdlib_of(gathered, &manifest.stdlib)?;
            for relative in manifest.files.keys() {
                let pyc = pyc_name(relative);
                if compiled.kind(&pyc) == Some(Kind::File) {
                    stdlib.copy_from(&compiled, &pyc, &pyc)?;
                }
            }
        }
        Ok(Native {
            manifest,
            stdlib,
            layout: gathered.layout.clone(),
            platform: platform.to_string(),
            _dir: dir,
        })
    }

    /// Whether the native bytecode holds the `.pyc` of the stdlib source `relative` whose
    /// SHA-256 is `digest`: that very source, compiled.
    fn has(&self, relative: &str, digest: &str) -> bool {
        self.manifest.files.get(relative).map(String::as_str) == Some(digest)
            && self.stdlib.kind(pyc_name(relative)) == Some(Kind::File)
    }

    /// The native platform, as BuildKit names it.
    pub fn platform(&self) -> &str {
        &self.platform
    }
}

/// Fills `other`'s stdlib with `native`'s bytecode when it can stand for `other`'s: the
/// same magic number and file names recorded in the code objects, and for every module
/// either the native `.pyc` of the very same source (by SHA-256) or one its own gather
/// compiled (a module named after the platform, which the native one has in no form).
/// None, with nothing written, when it cannot: an emulated gather writes no sources, so
/// the platform is then gathered again, compiling.
pub fn share(native: &Native, other: &mut Gathered) -> Result<Option<Shared>> {
    let (mine, theirs) = (&native.manifest, manifest(other)?);
    if !(mine.compiled
        && mine.magic == theirs.magic
        && mine.zip_path == theirs.zip_path
        && mine.stdlib == theirs.stdlib
        && mine.on_disk == theirs.on_disk)
    {
        return Ok(None);
    }
    // Both stdlibs are reached through handles: the native copy, and the other's
    // resolved inside its root (stdlib.json's names come from the source's code, like
    // everything exported).
    let stdlib = stdlib_of(other, &theirs.stdlib)?;
    let compiled_there = |relative: &str| stdlib.kind(pyc_name(relative)) == Some(Kind::File);
    // Each key is a plain relative `.py` path: stdlib_json checked it when it was read.
    if !theirs
        .files
        .iter()
        .all(|(relative, digest)| native.has(relative, digest) || compiled_there(relative))
    {
        return Ok(None);
    }
    let mut reused = 0;
    for (relative, digest) in &theirs.files {
        if native.has(relative, digest) {
            let pyc = pyc_name(relative);
            stdlib.copy_from(&native.stdlib, &pyc, &pyc)?;
            reused += 1;
        }
        // A source the gather left anyway would go into the zip beside its bytecode.
        if stdlib.kind(relative).is_some() {
            stdlib.remove_file(relative)?;
        }
    }
    share_hot_list(native, other);
    Ok(Some(Shared {
        reused,
        compiled_there: theirs.files.len() - reused,
        native_compile_seconds: mine.seconds,
    }))
}

/// The stored entries of the zip, and the start-up files, go with the bytecode: the gather stage of an emulated
/// platform does not list them (it would import dozens of modules under qemu), and the
/// stdlibs are the same but for the modules named after the platform.
fn share_hot_list(native: &Native, other: &mut Gathered) {
    if !other.layout.hot.is_empty() {
        return;
    }
    // Platform-specific modules carry the multiarch triplet in their names
    // (_sysconfigdata__x86_64-linux-gnu): name the other platform's own.
    let (from, to) = (
        native.layout.python.multiarch.clone().unwrap_or_default(),
        other.layout.python.multiarch.clone().unwrap_or_default(),
    );
    let rename = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .map(|name| {
                if from.is_empty() || to.is_empty() {
                    name.clone()
                } else {
                    name.replace(&from, &to)
                }
            })
            .collect()
    };
    other.layout.hot = rename(&native.layout.hot);
    // So does the list of start-up files.
    other.layout.startup = rename(&native.layout.startup);
}

/// The stdlib directory of `gathered`'s root, as a handle.
fn stdlib_of(gathered: &Gathered, stdlib: &str) -> Result<Tree> {
    let root = gathered.export.subtree("root")?;
    let found = root.resolve(stdlib).ok_or_else(|| {
        Error::SourceUnfit(format!(
            "stdlib.json of {} names a stdlib ({stdlib}) that is not in its root",
            gathered.source.name
        ))
    })?;
    root.subtree(found)
}

fn pyc_name(relative: &str) -> PathBuf {
    PathBuf::from(format!("{}.pyc", relative.trim_end_matches(".py")))
}

/// Seconds since `started`, for the figures printed after sharing.
pub fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
