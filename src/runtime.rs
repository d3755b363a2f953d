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

/// The label that says which shell a runtime image has: `dash`, or `none`.
pub const SHELL_LABEL: &str = "io.dpy.shell";

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
