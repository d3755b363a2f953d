//! What the source image's own interpreter says about itself.
//!
//! The gather stage writes layout.json (templates/context/dpy_gather); everything after
//! it follows these answers instead of assuming /usr/local or /usr.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::target::Family;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PythonLayout {
    pub version: String,
    pub major: u32,
    pub minor: u32,
    /// The real interpreter binary.
    pub executable: String,
    /// The stable name the image runs, e.g. /usr/local/bin/python3.
    pub entrypoint: String,
    pub prefix: String,
    pub exec_prefix: String,
    pub stdlib: String,
    pub platstdlib: String,
    /// The site-packages directory the runtime imports third-party packages from.
    pub purelib: String,
    pub lib_dynload: String,
    /// The zip entry getpath puts on sys.path (`pythonXY.zip`). dpy writes no file there:
    /// it names the stdlib zip beside it.
    pub zip_path: String,
    /// The zip that holds the whole stdlib, beside `zip_path`; every module's code names
    /// its path in it.
    pub stdlib_zip: String,
    /// The file getpath needs to find the prefix.
    pub landmark: String,
    #[serde(default)]
    pub ldlibrary: Option<String>,
    #[serde(default)]
    pub libdir: Option<String>,
    #[serde(default)]
    pub ext_suffix: Option<String>,
    #[serde(default)]
    pub multiarch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SslLayout {
    #[serde(default)]
    pub cafile: Option<String>,
    #[serde(default)]
    pub capath: Option<String>,
    #[serde(default)]
    pub openssl_cafile: Option<String>,
    #[serde(default)]
    pub openssl_capath: Option<String>,
    #[serde(default)]
    pub openssl_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsLayout {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub pretty_name: Option<String>,
    /// "alpine", "debian" or "other".
    pub family: String,
    pub libc: String,
    pub machine: String,
}

/// The pip that chroot-pip runs in the -buildroot image: the source's own, or the one
/// the builder stage added (templates/context/builder-pip.sh writes builder-pip.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuilderPip {
    /// `source`, `apt`, `apk`, `pypi`, or `none` when nothing answered.
    pub origin: String,
    #[serde(default)]
    pub version: String,
}

impl BuilderPip {
    pub fn load(export_dir: &Path) -> Result<Self> {
        let path = export_dir.join("builder-pip.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Distill(format!(
                "{}: the builder stage wrote an unreadable answer: {e}",
                path.display()
            ))
        })
    }

    /// `apt 23.0.1`, or None when the builder has no pip.
    pub fn describe(&self) -> Option<String> {
        (self.origin != "none").then(|| format!("{} {}", self.origin, self.version))
    }
}

/// A stdlib extension module left out of the runtime because it does not import in the
/// source either: a library it needs is not in the source image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokenModule {
    pub module: String,
    /// Its file in lib-dynload.
    pub file: String,
    /// The first library found missing.
    pub missing: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Library {
    pub soname: String,
    pub path: String,
}

/// The debug variant's tools (templates/context/dpy_gather/debug.py).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DebugTools {
    /// `busybox`, or `source`: the source's own shell and tools.
    pub tools: String,
    #[serde(default)]
    pub busybox: Option<String>,
    /// How many applet links the layer adds.
    #[serde(default)]
    pub linked: usize,
    /// Tools the source lacks (the `source` kind only).
    #[serde(default)]
    pub missing: Vec<String>,
    /// Packages whose records the layer adds.
    #[serde(default)]
    pub packages: Vec<String>,
}

impl DebugTools {
    /// One line for the build's progress.
    pub fn describe(&self) -> String {
        let what = match (&self.busybox, self.tools.as_str()) {
            (Some(path), "busybox") => format!("busybox ({path}) and {} applet links", self.linked),
            _ => "the source's own shell and tools".to_string(),
        };
        match self.packages.is_empty() {
            true => format!("debug layer: {what}"),
            false => format!(
                "debug layer: {what}; packages recorded: {}",
                self.packages.join(", ")
            ),
        }
    }
}

/// layout.json as a typed value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    pub python: PythonLayout,
    pub ssl: SslLayout,
    pub os: OsLayout,
    pub loader: String,
    #[serde(default)]
    pub dash: Option<String>,
    /// What the gather stage collected for the debug variant, when it was asked to.
    #[serde(default)]
    pub debug: Option<DebugTools>,
    #[serde(default)]
    pub ldconfig: Option<String>,
    #[serde(default)]
    pub package_db: Option<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub libraries: Vec<Library>,
    #[serde(default)]
    pub stripped: Vec<String>,
    /// Modules the profile leaves out that get a stub naming it.
    #[serde(default)]
    pub announced: Vec<String>,
    #[serde(default)]
    pub broken: Vec<BrokenModule>,
    /// Stdlib-relative directories that are not the stdlib (lib-dynload, site-packages):
    /// the gather stage decides them, and the distill leaves them out of the zip.
    #[serde(default)]
    pub stdlib_keep_out: Vec<String>,
    /// The locale a bare C locale is coerced to, carried as files (glibc), if any.
    #[serde(default)]
    pub locale: Option<String>,
    /// Stdlib-relative `.pyc` names that a start plus the hot imports load.
    #[serde(default)]
    pub hot: Vec<String>,
    /// What stays on disk in the stdlib directory besides the zip: the names a bare start
    /// imports (gather.py's find_startup_modules).
    #[serde(default)]
    pub startup: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Layout {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|e| {
            Error::Distill(format!(
                "{}: the gather stage wrote an unreadable layout: {e}",
                path.display()
            ))
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The family the source image really is, if dpy knows it.
    pub fn family(&self) -> Option<Family> {
        match self.os.family.as_str() {
            "alpine" => Some(Family::Alpine),
            "debian" => Some(Family::Debian),
            _ => None,
        }
    }

    /// e.g. "Debian GNU/Linux 12 (bookworm)", or the id and version.
    pub fn os_name(&self) -> String {
        self.os.pretty_name.clone().unwrap_or_else(|| {
            format!(
                "{} {}",
                self.os.id.as_deref().unwrap_or("unknown"),
                self.os.version_id.as_deref().unwrap_or("")
            )
        })
    }

    /// The names of the modules left out because they do not import in the source.
    pub fn broken_modules(&self) -> Vec<String> {
        self.broken.iter().map(|b| b.module.clone()).collect()
    }

    /// The directory the interpreter's entrypoint lives in, put first on PATH.
    pub fn bin_dir(&self) -> &str {
        self.python
            .entrypoint
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or("/usr/bin")
    }
}
