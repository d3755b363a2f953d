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
