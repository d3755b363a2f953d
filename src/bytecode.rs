//! Compile once: stdlib bytecode made on the native platform, shared with emulated ones.
//!
//! A `.pyc` depends on the interpreter's magic number, the source bytes and the file
//! name recorded in it, never on the CPU. Byte-compiling the stdlib is the slowest part
//! of the gather stage, and under qemu it is several times slower still. So an emulated
//! platform's gather copies its sources (with a digest of each, stdlib.json); every
//! source identical to the native one takes the native `.pyc`. The few that differ are
//! mostly named after the platform (`_sysconfigdata__aarch64-linux-gnu.py`): the
//! emulated gather compiles those itself (two files, a fraction of a second under
//! qemu), since the native platform has them in no form. Any other that differs is
//! compiled natively in one small build, by the native source's interpreter of the
//! same magic number.

use std::path::PathBuf;
use std::time::Instant;

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::engine::{self, BuildSpec, Engine, Output, Progress};
use crate::error::{Error, Result};
use crate::gather::Gathered;
use crate::layout::Layout;
use crate::unpack::Bounds;
// stdlib.json, read and checked: its names are joined onto directories below.
use crate::stdlib_json::{manifest, Manifest};
use crate::tree::{Kind, Tree};

/// What sharing did for one platform.
#[derive(Debug, Clone)]
pub struct Shared {
    pub reused: usize,
    /// Compiled by the platform's own gather: the modules named after it.
    pub compiled_there: usize,
    pub compiled_natively: usize,
    /// How long the native platform took to compile the whole stdlib.
    pub native_compile_seconds: f64,
}

/// What emulated platforms take from the native one once its gather is done: its
/// bytecode, copied out of its export (the native distill, which goes on meanwhile,
/// removes from there what it zips), and what a compile on the native platform needs.
pub struct Native {
    manifest: Manifest,
    /// The native `.pyc` of each source stdlib.json lists, at its stdlib-relative name.
    stdlib: Tree,
    layout: Layout,
    source: SourceImage,
    platform: String,
    bounds: Bounds,
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
            source: gathered.source.clone(),
            platform: platform.to_string(),
            bounds: gathered.bounds,
            _dir: dir,
        })
    }

    /// The native platform, as BuildKit names it.
    pub fn platform(&self) -> &str {
        &self.platform
    }
}

/// Whether `native`'s bytecode can stand for `other`'s: same magic number, and the same
/// file names recorded in the code objects.
pub fn compatible(native: &Native, other: &Gathered) -> Result<bool> {
    let (a, b) = (&native.manifest, manifest(other)?);
    Ok(a.compiled
        && a.magic == b.magic
        && a.zip_path == b.zip_path
        && a.stdlib == b.stdlib
        && a.on_disk == b.on_disk)
}

/// Fills `other`'s stdlib (copied as sources) with bytecode: the native `.pyc` where the
/// source is identical (by SHA-256); where it is not, its own gather's for a module named
/// after the platform, else one compiled natively.
pub async fn share(
    engine: &Engine,
    native: &Native,
    other: &mut Gathered,
    no_cache: bool,
) -> Result<Shared> {
    let (mine, theirs) = (&native.manifest, manifest(other)?);
    // Both stdlibs are reached through handles: the native copy, and the other's
    // resolved inside its root (stdlib.json's names come from the source's code, like
    // everything exported).
    let native_stdlib = &native.stdlib;
    let stdlib = stdlib_of(other, &theirs.stdlib)?;

    let (mut reused, mut compiled_there) = (0, 0);
    let mut differing: Vec<String> = Vec::new();
    // Each key is a plain relative `.py` path: stdlib_json checked it when it was read.
    for (relative, digest) in &theirs.files {
        let pyc = pyc_name(relative);
        if mine.files.get(relative) == Some(digest) && native_stdlib.kind(&pyc) == Some(Kind::File)
        {
            stdlib.copy_from(native_stdlib, &pyc, &pyc)?;
            stdlib.remove_file(relative)?;
            reused += 1;
        } else if stdlib.kind(&pyc) == Some(Kind::File) && stdlib.kind(relative).is_none() {
            // Its own gather compiled it: a module named after the platform, which the
            // native one has in no form (dpy_gather's gather_stdlib).
            compiled_there += 1;
        } else {
            differing.push(relative.clone());
        }
    }
    if !differing.is_empty() {
        let out = other.work.path().join("shared-bytecode.tar");
        compile_natively(
            engine,
            native,
            &theirs,
            &stdlib,
            &differing,
            &out,
            &other.progress,
            no_cache,
        )
        .await?;
    }
    share_hot_list(native, other);
    Ok(Shared {
        reused,
        compiled_there,
        compiled_natively: differing.len(),
        native_compile_seconds: mine.seconds,
    })
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

/// Compiles `relatives` (sources in `stdlib`) with the native source image's interpreter,
/// through a small BuildKit build whose result comes back as a tar (at `out`); its
/// progress is shown as the other platform's (`progress`), whose stdlib it completes.
#[allow(clippy::too_many_arguments)]
async fn compile_natively(
    engine: &Engine,
    native: &Native,
    theirs: &Manifest,
    stdlib: &Tree,
    relatives: &[String],
    out: &std::path::Path,
    progress: &Progress,
    no_cache: bool,
) -> Result<()> {
    let mut context = BuildContext::new();
    for relative in relatives {
        let data = stdlib.read(relative)?;
        context.add(format!("src/{relative}"), 0o644, data);
    }
    context.add("compile.py", 0o644, COMPILE);
    // The gather stage's own package, for its compile_stdlib_file.
    for (path, body) in crate::render::VERBATIM {
        if path.starts_with(crate::render::GATHER_PACKAGE) {
            context.add(*path, 0o644, *body);
        }
    }
    context.add(
        "Dockerfile",
        0o644,
        format!(
            "FROM {source} AS compile\nCOPY src/ /dpy-src/\nCOPY compile.py /dpy-compile/\nCOPY {package} /dpy-compile/dpy_gather/\n\
             RUN {run}\n\
             FROM scratch\nCOPY --from=compile /dpy-pyc/ /\n",
            source = native.source.pinned,
            package = crate::render::GATHER_PACKAGE,
            // The exec form is JSON: each value from the source's answers is encoded as
            // a JSON string, so no quote or newline in one can add an instruction.
            run = serde_json::json!([
                native.layout.python.executable,
                "/dpy-compile/compile.py",
                "/dpy-src",
                "/dpy-pyc",
                theirs.stdlib,
                theirs.zip_path,
                theirs.on_disk.join(","),
            ]),
        ),
    );
    engine::build(
        engine,
        BuildSpec {
            context: &context,
            dockerfile: "Dockerfile",
            target: "",
            platform: &native.platform,
            output: Output::Tar(out.to_path_buf()),
            no_cache,
            build_args: Default::default(),
            labels: Default::default(),
        },
        progress,
    )
    .await?;
    // Written by the native source's own interpreter: unpacked with the same checks as
    // every export.
    let file = std::fs::File::open(out).map_err(|e| Error::io(out, e))?;
    crate::unpack::unpack(
        std::io::BufReader::new(file),
        stdlib,
        native.bounds,
        &native.source.name,
    )?;
    let _ = std::fs::remove_file(out);
    for relative in relatives {
        if stdlib.kind(pyc_name(relative)) != Some(Kind::File) {
            return Err(Error::Distill(format!(
                "{relative} was not compiled on the native platform"
            )));
        }
        stdlib.remove_file(relative)?;
    }
    Ok(())
}

/// Run by the native interpreter: the gather stage's own compile function.
const COMPILE: &str = r#"import os, sys
from dpy_gather.compile import compile_stdlib_file, recorded_name
src, out, stdlib, zip_path, on_disk = sys.argv[1:6]
on_disk = [name for name in on_disk.split(",") if name]
for current, _, files in os.walk(src):
    for name in files:
        source = os.path.join(current, name)
        relative = os.path.relpath(source, src)
        target = os.path.join(out, relative[:-3] + ".pyc")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        compile_stdlib_file(source, target, recorded_name(relative, stdlib, zip_path, on_disk), relative)
"#;

/// Seconds since `started`, for the figures printed after sharing.
pub fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
