//! A recipe: one target resolved against the catalog, with everything render needs.
//!
//! This is the typed value the flavor stage hands to render; nothing downstream looks
//! the target up in the catalog again.

use crate::catalog::{Catalog, Flavor};
use crate::error::Result;
use crate::target::Target;

/// Where the runtime root lives inside the -buildroot image.
pub const BUILD_ROOT: &str = "/opt/buildroot";

/// The default user of every runtime image (distroless' `nonroot`).
pub const NONROOT_UID: u32 = 65532;

#[derive(Debug, Clone)]
pub struct Recipe {
    pub target: Target,
    pub flavor: Flavor,
    /// The image the build starts from: `python:<target>` unless overridden.
    pub source_image: String,
    pub profile: String,
    /// Stdlib entries left out (fnmatch patterns on top-level names).
    pub strip: Vec<String>,
}

impl Recipe {
    pub fn new(
        catalog: &Catalog,
        target: &Target,
        source_image: Option<&str>,
        profile: &str,
    ) -> Result<Self> {
        let flavor = catalog.check(target)?.clone();
        let strip = catalog.profile(profile)?.modules.clone();
        Ok(Recipe {
            source_image: source_image
                .map(str::to_string)
                .unwrap_or_else(|| flavor.source_image_for(target)),
            target: target.clone(),
            flavor,
            profile: profile.to_string(),
            strip,
        })
    }
}
