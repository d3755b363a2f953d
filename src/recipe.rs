//! A recipe: one target resolved against the catalog, with everything render needs.
//!
//! This is the typed value the flavor stage hands to render; nothing downstream looks
//! the target up in the catalog again.

use crate::catalog::{Catalog, Flavor, Profile, ZipPolicy};
use crate::error::Result;
use crate::target::Target;

#[derive(Debug, Clone)]
pub struct Recipe {
    pub target: Target,
    pub flavor: Flavor,
    /// The image the build starts from: `python:<target>` unless overridden.
    pub source_image: String,
    /// What the image leaves out (images/strip.toml), resolved.
    pub profile: Profile,
    /// What stays uncompressed in the stdlib zip and what stays out of it (images/zip.toml).
    pub zip: ZipPolicy,
    /// Certificates builder steps trust (`--ca-bundle`); never part of an image.
    pub ca_bundle: Option<CaBundle>,
    /// Whether the gather stage byte-compiles the stdlib itself. Off for an emulated
    /// platform whose bytecode is compiled once on the native one (src/bytecode.rs).
    pub compile_stdlib: bool,
    /// The runtime image's /bin/sh: dash, or none at all.
    pub shell: crate::runtime::Shell,
    /// The images to make (`--variants`), sorted, each once.
    pub variants: Vec<crate::runtime::Variant>,
}

/// A PEM bundle for builder steps behind a TLS-intercepting proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    pub pem: Vec<u8>,
}

impl CaBundle {
    /// Reads and checks `path` before anything is built.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| {
            crate::error::Error::Usage(format!(
                "--ca-bundle {}: cannot read it ({e}); give a PEM file of CA certificates",
                path.display()
            ))
        })?;
        let text = String::from_utf8_lossy(&pem);
        let begins = text.matches("-----BEGIN CERTIFICATE-----").count();
        let ends = text.matches("-----END CERTIFICATE-----").count();
        if begins == 0 || begins != ends {
            return Err(crate::error::Error::Usage(format!(
                "--ca-bundle {}: not a PEM bundle of certificates (no complete BEGIN/END CERTIFICATE block); give a PEM file such as /etc/ssl/certs/ca-certificates.crt",
                path.display()
            )));
        }
        Ok(CaBundle { pem })
    }
}

impl Recipe {
    /// Whether the recipe makes this variant.
    pub fn makes(&self, variant: crate::runtime::Variant) -> bool {
        self.variants.contains(&variant)
    }

    pub fn new(
        catalog: &Catalog,
        target: &Target,
        source_image: Option<&str>,
        profile: &str,
    ) -> Result<Self> {
        let flavor = catalog.check(target)?.clone();
        let profile = catalog.profile(profile)?.clone();
        Ok(Recipe {
            source_image: source_image
                .map(str::to_string)
                .unwrap_or_else(|| flavor.source_image_for(target)),
            target: target.clone(),
            flavor,
            profile,
            zip: catalog.zip_policy().clone(),
            ca_bundle: None,
            compile_stdlib: true,
            shell: crate::runtime::Shell::Dash,
            variants: crate::runtime::DEFAULT_VARIANTS.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_must_be_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(CaBundle::load(&good).is_ok());
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        for path in [bad, dir.path().join("missing.pem")] {
            let e = CaBundle::load(&path).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(e.to_string().starts_with("--ca-bundle"), "{e}");
        }
    }
}
