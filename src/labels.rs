//! The names of the labels dpy writes on its images and reads back (`dpy test`,
//! `--if-changed`, `dpy push`'s records). One table, so that a writer and its reader
//! cannot drift apart. A leaf: it imports nothing of dpy's.
//!
//! The family labels (`io.dpy.os.family`, `io.dpy.libc`) are data of images/*.toml, which
//! the family's definition writes; dpy's code only reads the first.

/// Which shell a runtime image has: `dash`, or `none`.
pub const SHELL: &str = "io.dpy.shell";

/// Which variant an image is: `runtime`, `buildroot` or `debug`.
pub const VARIANT: &str = "io.dpy.variant";

/// The digest of what the target's images were made of (`inputs`), for `--if-changed`.
pub const INPUTS: &str = "io.dpy.inputs";

/// The stdlib modules left out because they do not import in the source (comma-
/// separated), for `dpy test` to expect them absent.
pub const BROKEN_MODULES: &str = "io.dpy.modules.broken";

/// The path of the zip that holds the whole stdlib (layout.python.stdlib_zip).
pub const STDLIB_ZIP: &str = "io.dpy.stdlib.zip";

/// The profile the runtime image was distilled with (`standard`, `slim`, ...).
pub const PROFILE: &str = "io.dpy.profile";

/// The source's Python version, as its interpreter reports it.
pub const PYTHON_VERSION: &str = "io.dpy.python.version";

/// The source's OS release (`VERSION_ID` of its os-release).
pub const OS_VERSION: &str = "io.dpy.os.version";

/// The image family (`debian`, `alpine`), written by images/<family>.toml.
pub const OS_FAMILY: &str = "io.dpy.os.family";

/// The source image, by the name it was given and by its digest (OCI annotations).
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// When the image was made (the build's epoch) and the version it carries. The first is
/// also the annotation of the referrers dpy attaches (`records`, `sign::bundle`).
pub const CREATED: &str = "org.opencontainers.image.created";
pub const VERSION: &str = "org.opencontainers.image.version";
