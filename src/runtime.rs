//! What every runtime image is, whatever its family: the user it runs as, that user's
//! home, and where the -buildroot image keeps the runtime root. `recipe`, `render`,
//! `distill` and `conformance` take these from here, so none of them imports another
//! for a constant.

/// The default user of every runtime image. 65532 is the uid distroless images use, so
/// volume permissions and Kubernetes `runAsUser` settings carry over unchanged.
pub const NONROOT_UID: u32 = 65532;

/// The home directory of `nonroot`.
pub const HOME: &str = "/home/nonroot";

/// Where the runtime root lives inside the -buildroot image.
pub const BUILD_ROOT: &str = "/opt/buildroot";

/// The runtime image's `/bin/sh` (`--shell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    /// dash as /bin/sh: `subprocess` with `shell=True` and `os.system` work.
    #[default]
    Dash,
    /// No shell at all: shell=True raises FileNotFoundError, os.system returns 127.
    None,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::None => "none",
        }
    }
}

/// The images a target makes (`--variants`). Each is tagged `<target><suffix>`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The distroless runtime image, tagged `<target>`.
    Runtime,
    /// The source plus `$BUILD_ROOT` and the chroot-* helpers, `<target>-buildroot`.
    Buildroot,
    /// The runtime plus a shell and everyday tools for looking inside (busybox),
    /// `<target>-debug`.
    Debug,
}

/// What `dpy build` makes unless told otherwise: the debug variant costs a build step,
/// so it is asked for.
pub const DEFAULT_VARIANTS: [Variant; 2] = [Variant::Runtime, Variant::Buildroot];

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Runtime, Variant::Buildroot, Variant::Debug];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Runtime => "runtime",
            Variant::Buildroot => "buildroot",
            Variant::Debug => "debug",
        }
    }

    /// What the variant's tag adds to the target.
    pub const fn suffix(self) -> &'static str {
        match self {
            Variant::Runtime => "",
            Variant::Buildroot => "-buildroot",
            Variant::Debug => "-debug",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
