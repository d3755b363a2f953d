//! What the source image's own interpreter says about itself.
//!
//! The gather stage writes layout.json (templates/context/dpy_gather); everything after
//! it follows these answers instead of assuming /usr/local or /usr.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shape;
use crate::target::Family;
use crate::tree::Tree;

/// Where the builder's pip can come from (templates/context/builder-pip.sh).
const PIP_ORIGINS: &[&str] = &["source", "apt", "apk", "pypi", "none"];

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
    /// Whether the interpreter's zipimport lists a zip's implicit directories (`a/` for
    /// `a/b.pyc`, CPython 3.14 and later), as dpy_gather's probe found by asking it: the
    /// stdlib zip's index lists them too.
    #[serde(default)]
    pub zip_implicit_dirs: bool,
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
    /// builder-pip.json, read through the export's handle like every answer of the
    /// source's code.
    pub fn load(export: &crate::tree::Tree) -> Result<Self> {
        Self::parse(&answer(export, "builder-pip.json")?)
    }

    /// builder-pip.json's text, read and checked: its origin is a word dpy knows and its
    /// version a short word, since both reach the metadata and the terminal. The builder
    /// stage runs the source's own code, which can write anything here.
    pub fn parse(text: &str) -> Result<Self> {
        shape::answer(
            text,
            "source image's builder stage",
            "builder-pip.json",
            Self::check,
        )
    }

    /// Whether every field has its shape (`shape`); the reason names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        shape::field("origin", &self.origin, |v| shape::one_of(v, PIP_ORIGINS))?;
        // `none` has no version; pip's own are words (`24.0`, `25.1.dev0`).
        if !self.version.is_empty() {
            shape::field("version", &self.version, shape::word)?;
        }
        Ok(())
    }

    /// The answer as builder-pip.sh writes it: `{"origin": "apt", "version": "23.0.1"}`.
    pub fn json(&self) -> String {
        let quoted = |v: &str| serde_json::to_string(v).expect("a string serializes");
        format!(
            "{{\"origin\": {}, \"version\": {}}}\n",
            quoted(&self.origin),
            quoted(&self.version)
        )
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
    /// The version of the source's own pip (dpy_gather's `own_pip`: builder-pip.sh's
    /// first question, asked by the gather), if it has one.
    #[serde(default)]
    pub pip: Option<String>,
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
    /// layout.json's text, read and checked ([`Layout::check`]). A refusal says "the
    /// source image's gather stage" (the caller knows the image's name and may add it),
    /// names the field, and exits 12: the source is unfit, and nothing has been built
    /// from it yet.
    pub fn parse(text: &str) -> Result<Self> {
        shape::answer(
            text,
            "source image's gather stage",
            "layout.json",
            Self::check,
        )
    }

    /// Whether every field of the layout has the shape the gather stage gives it
    /// (`shape`): paths absolute or relative and plain, names single, versions, words
    /// and texts of their own grammars, lists bounded. The reason names the field
    /// (`python.stdlib`, `libraries[3].path`).
    pub fn check(&self) -> std::result::Result<(), String> {
        use shape::{field, list};
        let p = &self.python;
        let (major, minor) = field("python.version", &p.version, shape::python_version)?;
        if (major, minor) != (p.major, p.minor) {
            return Err(format!(
                "python.major and python.minor ({}.{}) are not those of python.version {}",
                p.major,
                p.minor,
                shape::show(&p.version)
            ));
        }
        field("python.entrypoint", &p.entrypoint, shape::entrypoint)?;
        for (name, value) in [
            ("python.prefix", &p.prefix),
            ("python.exec_prefix", &p.exec_prefix),
        ] {
            field(name, value, shape::absolute_path_or_root)?;
        }
        for (name, value) in self.absolute_paths() {
            if let Some(value) = value {
                field(name, value, shape::absolute_path)?;
            }
        }
        // sysconfig answers "" for a variable a build leaves unset.
        let set = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
        if let Some(v) = set(&p.ldlibrary) {
            field("python.ldlibrary", &v, shape::file_name)?;
        }
        if let Some(v) = set(&p.ext_suffix) {
            field("python.ext_suffix", &v, shape::file_name)?;
        }
        if let Some(v) = set(&p.multiarch) {
            field("python.multiarch", &v, shape::word)?;
        }
        if let Some(v) = &self.ssl.openssl_version {
            field("ssl.openssl_version", v, shape::text)?;
        }
        if let Some(v) = &self.pip {
            field("pip", v, shape::word)?;
        }

        // os-release may leave any of these empty; the id and version id reach labels and
        // package URLs, so they are words.
        let os = &self.os;
        for (name, value) in [("os.id", &os.id), ("os.version_id", &os.version_id)] {
            if let Some(v) = set(value) {
                field(name, &v, shape::word)?;
            }
        }
        if let Some(v) = &os.pretty_name {
            field("os.pretty_name", v, shape::text)?;
        }
        field("os.family", &os.family, |v| {
            shape::one_of(v, &["alpine", "debian", "other"])
        })?;
        field("os.libc", &os.libc, |v| {
            // `unknown`: the probe could not tell (no loader, no glibc version), and the
            // distill then checks the root as glibc's, as it always has.
            shape::one_of(v, &["glibc", "musl", "unknown"])
        })?;
        field("os.machine", &os.machine, shape::word)?;

        if let Some(v) = &self.package_db {
            field("package_db", v, |v| shape::one_of(v, &["dpkg", "apk"]))?;
        }
        list("packages", &self.packages, shape::word)?;
        if let Some(debug) = &self.debug {
            field("debug.tools", &debug.tools, |v| {
                shape::one_of(v, &["busybox", "source"])
            })?;
            list("debug.missing", &debug.missing, shape::file_name)?;
            list("debug.packages", &debug.packages, shape::word)?;
        }
        shape::bounded(self.libraries.len(), shape::MAX_ENTRIES)
            .map_err(|why| format!("libraries: {why}"))?;
        for (i, library) in self.libraries.iter().enumerate() {
            field(
                format_args!("libraries[{i}].soname"),
                &library.soname,
                shape::needed_library,
            )?;
        }
        list("stripped", &self.stripped, shape::file_name)?;
        list("announced", &self.announced, shape::module_name)?;
        shape::bounded(self.broken.len(), shape::MAX_ENTRIES)
            .map_err(|why| format!("broken: {why}"))?;
        for (i, broken) in self.broken.iter().enumerate() {
            field(
                format_args!("broken[{i}].module"),
                &broken.module,
                shape::module_name,
            )?;
            field(
                format_args!("broken[{i}].file"),
                &broken.file,
                shape::file_name,
            )?;
            field(
                format_args!("broken[{i}].missing"),
                &broken.missing,
                shape::needed_library,
            )?;
        }
        if let Some(v) = &self.locale {
            field("locale", v, shape::word)?;
        }
        let relative = |v: &str| shape::relative_path(v).map(drop);
        list("stdlib_keep_out", &self.stdlib_keep_out, relative)?;
        list("hot", &self.hot, |v| {
            relative(v)?;
            match v.ends_with(".pyc") {
                true => Ok(()),
                false => Err("it is not a .pyc name".into()),
            }
        })?;
        list("startup", &self.startup, relative)?;

        // Free text, made safe where it is printed: bounded only.
        shape::bounded(self.warnings.len(), shape::MAX_WARNINGS)
            .map_err(|why| format!("warnings: {why}"))?;
        for (i, warning) in self.warnings.iter().enumerate() {
            shape::free_text(warning, shape::MAX_WARNING_BYTES)
                .map_err(|why| format!("warnings[{i}]: {why}"))?;
        }
        Ok(())
    }

    /// Every absolute path of the layout but the prefixes, by field, `None` where an
    /// optional one is absent.
    fn absolute_paths(&self) -> Vec<(String, Option<&str>)> {
        let p = &self.python;
        let ssl = &self.ssl;
        let mut paths: Vec<(String, Option<&str>)> = vec![
            ("python.executable".into(), Some(p.executable.as_str())),
            ("python.stdlib".into(), Some(p.stdlib.as_str())),
            ("python.platstdlib".into(), Some(p.platstdlib.as_str())),
            ("python.purelib".into(), Some(p.purelib.as_str())),
            ("python.lib_dynload".into(), Some(p.lib_dynload.as_str())),
            ("python.zip_path".into(), Some(p.zip_path.as_str())),
            ("python.stdlib_zip".into(), Some(p.stdlib_zip.as_str())),
            ("python.landmark".into(), Some(p.landmark.as_str())),
            (
                "python.libdir".into(),
                p.libdir.as_deref().filter(|v| !v.is_empty()),
            ),
            ("ssl.cafile".into(), ssl.cafile.as_deref()),
            ("ssl.capath".into(), ssl.capath.as_deref()),
            ("ssl.openssl_cafile".into(), ssl.openssl_cafile.as_deref()),
            ("ssl.openssl_capath".into(), ssl.openssl_capath.as_deref()),
            ("loader".into(), Some(self.loader.as_str())),
            ("dash".into(), self.dash.as_deref()),
            ("ldconfig".into(), self.ldconfig.as_deref()),
            (
                "debug.busybox".into(),
                self.debug.as_ref().and_then(|d| d.busybox.as_deref()),
            ),
        ];
        paths.extend(
            self.libraries
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("libraries[{i}].path"), Some(l.path.as_str()))),
        );
        paths
    }

    /// Every path of a checked layout as it is joined under a directory: the absolute
    /// ones without their leading `/` (under the root), the stdlib-relative ones as they
    /// are (under the stdlib). The property tests hold each to plain names.
    #[cfg(test)]
    fn paths(&self) -> Vec<std::path::PathBuf> {
        let p = &self.python;
        let absolute = [
            p.prefix.as_str(),
            p.exec_prefix.as_str(),
            p.entrypoint.as_str(),
        ]
        .into_iter()
        .chain(self.absolute_paths().into_iter().filter_map(|(_, v)| v))
        .map(|v| shape::absolute_path_or_root(v).expect("a checked layout"));
        let relative = self
            .stdlib_keep_out
            .iter()
            .chain(&self.hot)
            .chain(&self.startup)
            .chain(&self.stripped)
            .map(|v| shape::relative_path(v).expect("a checked layout"));
        absolute.chain(relative).collect()
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

/// The gather stage's answer `name` (layout.json, stdlib.json, builder-pip.json), a
/// regular file at the export's top of at most `shape::MAX_ANSWER_BYTES`: each is read
/// whole, and an ordinary one is a few hundred KB.
pub fn answer(export: &Tree, name: &str) -> Result<String> {
    let file = export.open_file(name)?;
    let most = crate::shape::MAX_ANSWER_BYTES;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, most + 1), &mut text).map_err(
        |e| Error::SourceUnfit(format!("{}: not readable text: {e}", export.show(name))),
    )?;
    if text.len() as u64 > most {
        return Err(Error::SourceUnfit(format!(
            "{} is larger than {most} bytes; the gather stage writes far less",
            export.show(name)
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use std::path::Component;
    use std::path::Path;

    const ALPINE: &str = include_str!("../tests/fixtures/layout-official-alpine.json");

    /// Every field, as dpy_gather writes it for a Debian image built from Debian's own
    /// packages (the test bed's stand-in), with the debug variant.
    fn debian() -> Value {
        json!({
            "python": {
                "version": "3.11.2", "major": 3, "minor": 11,
                "executable": "/usr/bin/python3.11", "entrypoint": "/usr/bin/python3",
                "links": {"/usr/bin/python3": "python3.11"},
                "prefix": "/usr", "exec_prefix": "/usr",
                "stdlib": "/usr/lib/python3.11", "platstdlib": "/usr/lib/python3.11",
                "purelib": "/usr/local/lib/python3.11/dist-packages",
                "lib_dynload": "/usr/lib/python3.11/lib-dynload",
                "zip_path": "/usr/lib/python311.zip",
                "stdlib_zip": "/usr/lib/python311-stdlib.zip",
                "landmark": "/usr/lib/python3.11/os.pyc",
                "ldlibrary": "libpython3.11.so", "libdir": "/usr/lib/x86_64-linux-gnu",
                "instsoname": "libpython3.11.so.1.0",
                "ext_suffix": ".cpython-311-x86_64-linux-gnu.so",
                "soabi": "cpython-311-x86_64-linux-gnu",
                "multiarch": "x86_64-linux-gnu", "platlibdir": "lib"
            },
            "ssl": {
                "cafile": null, "capath": "/usr/lib/ssl/certs",
                "openssl_cafile": "/usr/lib/ssl/cert.pem",
                "openssl_capath": "/usr/lib/ssl/certs",
                "openssl_version": "OpenSSL 3.0.15 3 Sep 2024"
            },
            "os": {
                "id": "debian", "version_id": "12",
                "pretty_name": "Debian GNU/Linux 12 (bookworm)",
                "family": "debian", "libc": "glibc", "machine": "x86_64"
            },
            "loader": "/lib64/ld-linux-x86-64.so.2",
            "dash": "/usr/bin/dash",
            "pip": "23.0.1",
            "debug": {
                "tools": "busybox", "busybox": "/bin/busybox", "linked": 212,
                "missing": [], "packages": ["busybox"]
            },
            "ldconfig": "/sbin/ldconfig",
            "package_db": "dpkg",
            "packages": ["ca-certificates", "dash", "libc6", "libssl3", "libstdc++6", "python3.11-minimal"],
            "libraries": [
                {"soname": "libssl.so.3", "path": "/lib/x86_64-linux-gnu/libssl.so.3"},
                {"soname": "libz.so.1", "path": "/lib/x86_64-linux-gnu/libz.so.1"}
            ],
            "locale": "C.UTF-8",
            "hot": ["_dpy_zipimport.pyc", "json/decoder.pyc", "_sysconfigdata__x86_64-linux-gnu.pyc"],
            "startup": ["_dpy_zipimport.pyc", "encodings/__init__.pyc", "encodings/utf_8.pyc", "os.pyc"],
            "stripped": ["_tkinter.cpython-311-x86_64-linux-gnu.so", "idlelib", "tkinter", "turtle.py"],
            "announced": ["tkinter", "turtle"],
            "broken": [{"module": "_tkinter", "file": "_tkinter.cpython-311-x86_64-linux-gnu.so", "missing": "libtk8.6.so"}],
            "stdlib_keep_out": ["dist-packages", "lib-dynload", "site-packages"],
            "warnings": ["the stdlib module _tkinter is left out: it does not import in the source either (libtk8.6.so, needed by _tkinter.cpython-311-x86_64-linux-gnu.so, is not in the source image)"]
        })
    }

    fn parse(value: &Value) -> Result<Layout> {
        Layout::parse(&value.to_string())
    }

    fn refused(value: &Value) -> String {
        let e = parse(value).expect_err("refused");
        assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT, "{e}");
        let message = e.to_string();
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{message}"
        );
        assert!(
            message.starts_with("the source image's gather stage wrote a layout.json"),
            "{message}"
        );
        message
    }

    fn with(mut value: Value, pointer: &str, new: Value) -> Value {
        *value
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = new;
        value
    }

    fn all_plain(layout: &Layout) {
        let dir = Path::new("/export/root");
        for path in layout.paths() {
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            assert!(dir.join(&path).starts_with(dir), "{path:?}");
        }
    }

    #[test]
    fn real_layouts_pass() {
        let alpine = Layout::parse(ALPINE).unwrap();
        assert_eq!(alpine.os_name(), "Alpine Linux v3.20");
        let bookworm = parse(&debian()).unwrap();
        assert_eq!(bookworm.bin_dir(), "/usr/bin");
        all_plain(&bookworm);
        // The official images' own, and other releases.
        let official = with(
            debian(),
            "/python/executable",
            json!("/usr/local/bin/python3.12"),
        );
        let official = with(official, "/python/version", json!("3.12.4"));
        let official = with(official, "/python/minor", json!(12));
        parse(&official).unwrap();
        for (version, minor) in [
            ("3.13.0", 13),
            ("3.13.0rc1", 13),
            ("3.14.0a1+", 14),
            ("3.9.19", 9),
        ] {
            let v = with(debian(), "/python/version", json!(version));
            parse(&with(v, "/python/minor", json!(minor))).unwrap();
        }
        let purelib = with(
            debian(),
            "/python/purelib",
            json!("/usr/lib/python3/dist-packages"),
        );
        parse(&purelib).unwrap();
        // What os-release, sysconfig or the probes leave unset.
        let mut sparse = debian();
        for pointer in [
            "/os/version_id",
            "/os/pretty_name",
            "/dash",
            "/pip",
            "/debug",
            "/ldconfig",
            "/locale",
            "/package_db",
            "/python/multiarch",
            "/ssl/capath",
            "/ssl/openssl_version",
        ] {
            sparse = with(sparse, pointer, Value::Null);
        }
        let sparse = with(sparse, "/python/ext_suffix", json!(""));
        parse(&sparse).unwrap();
        parse(&with(debian(), "/python/prefix", json!("/"))).unwrap();
        parse(&with(debian(), "/ssl/capath", json!("/etc/ssl/certs/"))).unwrap();
    }

    /// The refusals the hostile test bed's images provoke, each naming its field.
    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "/python/stdlib",
                json!("/../../../some/host/dir"),
                "python.stdlib \"/../../../some/host/dir\": it has a `..` name in it",
            ),
            (
                "/python/entrypoint",
                json!("/usr/local/bin/python3\"]\nRUN id\n#"),
                "python.entrypoint ",
            ),
            (
                "/python/entrypoint",
                json!("/x LD_PRELOAD=/tmp/evil.so/python3"),
                "python.entrypoint ",
            ),
            (
                "/python/stdlib_zip",
                json!("usr/lib/python312-stdlib.zip"),
                "python.stdlib_zip ",
            ),
            (
                "/python/version",
                json!("3.12.4\nRUN id"),
                "python.version ",
            ),
            (
                "/python/minor",
                json!(13),
                "python.major and python.minor (3.13) are not those of python.version \"3.11.2\"",
            ),
            ("/os/id", json!("alpine&distro=evil"), "os.id "),
            (
                "/os/pretty_name",
                json!("Alpine \u{1b}]0;owned\u{7}"),
                "os.pretty_name ",
            ),
            (
                "/os/family",
                json!("ubuntu"),
                "os.family \"ubuntu\": it is not one of alpine, debian, other",
            ),
            ("/os/libc", json!("uclibc"), "os.libc "),
            ("/loader", json!("/lib/../../etc/shadow"), "loader "),
            ("/dash", json!("/usr/bin//dash"), "dash "),
            ("/pip", json!("23.0.1\nRUN id"), "pip "),
            (
                "/libraries/1/path",
                json!("/lib/x86_64-linux-gnu/../../../../etc/passwd"),
                "libraries[1].path ",
            ),
            (
                "/libraries/0/soname",
                json!("../libssl.so.3"),
                "libraries[0].soname ",
            ),
            (
                "/hot/1",
                json!("/etc/passwd.pyc"),
                "hot[1] \"/etc/passwd.pyc\": it is absolute",
            ),
            (
                "/hot/0",
                json!("json/decoder.py"),
                "hot[0] \"json/decoder.py\": it is not a .pyc name",
            ),
            ("/startup/2", json!("../../x.pyc"), "startup[2] "),
            ("/stdlib_keep_out/0", json!(".."), "stdlib_keep_out[0] "),
            ("/stripped/3", json!("a/b"), "stripped[3] "),
            ("/announced/0", json!("os; import evil"), "announced[0] "),
            ("/broken/0/module", json!("_tk\ninter"), "broken[0].module "),
            (
                "/broken/0/missing",
                json!("../libtk.so"),
                "broken[0].missing ",
            ),
            ("/locale", json!("../../etc"), "locale "),
            ("/debug/busybox", json!("busybox"), "debug.busybox "),
            ("/debug/tools", json!("all"), "debug.tools "),
            ("/packages/0", json!("ca certificates"), "packages[0] "),
            ("/package_db", json!("rpm"), "package_db "),
            (
                "/ssl/openssl_version",
                json!("OpenSSL\r3"),
                "ssl.openssl_version ",
            ),
            (
                "/warnings/0",
                json!("w".repeat(shape::MAX_WARNING_BYTES + 1)),
                "warnings[0]: ",
            ),
        ];
        for (pointer, value, named) in cases {
            let message = refused(&with(debian(), pointer, value.clone()));
            assert!(message.contains(named), "{pointer}: {message}");
            assert!(
                message.ends_with("build from an unaltered source image"),
                "{message}"
            );
        }
        let many = json!(vec!["a"; shape::MAX_ENTRIES + 1]);
        assert!(
            refused(&with(debian(), "/packages", many)).contains("packages: it has 100001 entries")
        );
        let warnings = json!(vec!["w"; shape::MAX_WARNINGS + 1]);
        assert!(refused(&with(debian(), "/warnings", warnings)).contains("warnings: "));
        // A warning is free text: its characters are made safe where it is printed.
        parse(&with(
            debian(),
            "/warnings/0",
            json!("\u{1b}[2J line\nbreak"),
        ))
        .unwrap();
        // Not JSON, or not the gather stage's JSON.
        for text in ["", "{", "[]", "{\"python\": 1}", "\u{1b}[2J"] {
            let e = Layout::parse(text).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn builder_pip_is_checked() {
        for text in [
            r#"{"origin": "source", "version": "24.0"}"#,
            r#"{"origin": "apt", "version": "23.0.1"}"#,
            r#"{"origin": "pypi", "version": "25.1.dev0"}"#,
            r#"{"origin": "none", "version": ""}"#,
            r#"{"origin": "none"}"#,
        ] {
            let pip = BuilderPip::parse(text).unwrap();
            // What dpy writes into the -buildroot reads back the same, in the form
            // builder-pip.sh writes.
            assert_eq!(BuilderPip::parse(&pip.json()).unwrap(), pip);
            if text.contains("version") {
                assert_eq!(pip.json(), format!("{text}\n"));
            }
        }
        for text in [
            r#"{"origin": "evil", "version": "24.0"}"#,
            r#"{"origin": "apt", "version": "23.0.1\n\u001b[2J"}"#,
            r#"{"origin": "apt", "version": "23 0"}"#,
            r#"{"origin": 1}"#,
            "",
        ] {
            let e = BuilderPip::parse(text).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
            let message = e.to_string();
            assert!(
                message.starts_with("the source image's builder stage"),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }

    /// What a hostile interpreter could write into a string field: path-like pieces,
    /// the characters that matter to a Dockerfile, a shell or a terminal, and anything.
    fn hostile_string() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "",
            "/",
            "//",
            ".",
            "..",
            "usr",
            "lib",
            "python3.12",
            "x.pyc",
            "x.py",
            "\n",
            "\r",
            "\"",
            "'",
            "\\",
            "\0",
            " ",
            "$",
            ":",
            "`",
            "é",
            "\u{202e}",
            "\u{1b}[2J",
            "]",
            "RUN id",
        ]);
        // Paths made of names, plain or not, absolute or relative.
        let name = prop::sample::select(vec![
            "",
            ".",
            "..",
            "usr",
            "lib",
            "python3.12",
            "x.pyc",
            "a b",
            "é",
            "\n",
        ]);
        let path =
            (any::<bool>(), prop::collection::vec(name, 1..6)).prop_map(|(absolute, names)| {
                format!("{}{}", if absolute { "/" } else { "" }, names.join("/"))
            });
        prop_oneof![
            3 => path,
            2 => prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
            1 => any::<String>(),
            1 => "[/a-z0-9._+-]{0,40}",
        ]
    }

    fn hostile_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => hostile_string().prop_map(Value::String),
            1 => Just(Value::Null),
            1 => any::<i64>().prop_map(Value::from),
            1 => prop::collection::vec(hostile_string(), 0..3).prop_map(Value::from),
        ]
    }

    /// Every field that holds a path or a name, and the others that reach templates and
    /// labels.
    const FIELDS: &[&str] = &[
        "/python/version",
        "/python/executable",
        "/python/entrypoint",
        "/python/prefix",
        "/python/exec_prefix",
        "/python/stdlib",
        "/python/platstdlib",
        "/python/purelib",
        "/python/lib_dynload",
        "/python/zip_path",
        "/python/stdlib_zip",
        "/python/landmark",
        "/python/ldlibrary",
        "/python/libdir",
        "/python/ext_suffix",
        "/python/multiarch",
        "/ssl/cafile",
        "/ssl/capath",
        "/ssl/openssl_cafile",
        "/ssl/openssl_capath",
        "/ssl/openssl_version",
        "/os/id",
        "/os/version_id",
        "/os/pretty_name",
        "/os/machine",
        "/loader",
        "/dash",
        "/ldconfig",
        "/locale",
        "/debug/busybox",
        "/debug/missing",
        "/libraries/0/path",
        "/libraries/1/soname",
        "/hot/1",
        "/startup/0",
        "/stdlib_keep_out/2",
        "/stripped/1",
        "/announced/0",
        "/broken/0/file",
        "/broken/0/missing",
        "/packages/3",
    ];

    proptest! {
        /// Any text at all: never a panic, and what is taken holds only plain paths.
        #[test]
        fn any_text_is_parsed_or_refused(text in prop_oneof![
            any::<String>(),
            "[\\[\\]{}\",:0-9a-z./ \\\\\n-]{0,200}",
        ]) {
            if let Ok(layout) = Layout::parse(&text) {
                all_plain(&layout);
            }
        }

        /// A real layout with any value in one or two of its fields: never a panic, every
        /// refusal one line, and every path of what is taken stays under its directory.
        #[test]
        fn any_value_in_any_field(
            first in prop::sample::select(FIELDS),
            first_value in hostile_value(),
            second in prop::sample::select(FIELDS),
            second_value in hostile_value(),
        ) {
            let value = with(with(debian(), first, first_value), second, second_value);
            match parse(&value) {
                Ok(layout) => {
                    all_plain(&layout);
                    prop_assert!(shape::entrypoint(&layout.python.entrypoint).is_ok());
                    prop_assert!(!layout.bin_dir().contains(['\n', ' ', ':', '"']));
                }
                Err(e) => {
                    prop_assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
                    prop_assert!(!e.to_string().contains(['\n', '\r']), "{}", e);
                }
            }
        }
    }
}
