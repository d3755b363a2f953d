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
    /// Only the file's `CERTIFICATE` blocks, each followed by a newline: this goes into
    /// the build context and is bind-mounted into steps that run the source image's
    /// code, so nothing else of the user's file (comments, a key) may come along.
    pub pem: Vec<u8>,
}

const BEGIN_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE: &str = "-----END CERTIFICATE-----";

impl CaBundle {
    /// Reads and checks `path` before anything is built.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            crate::error::Error::Usage(format!(
                "--ca-bundle {}: cannot read it ({e}); give a PEM file of CA certificates",
                path.display()
            ))
        })?;
        let refuse = |what: &str| {
            crate::error::Error::Usage(format!("--ca-bundle {}: {what}", path.display()))
        };
        let text = String::from_utf8_lossy(&bytes);
        // A proxy's combined file (mitmproxy-ca.pem) holds the CA's key beside its
        // certificate. Dropping the key silently would hide that the user handed dpy a
        // secret; refusing says so, and says which file to give instead.
        if holds_private_key(&text) {
            return Err(refuse(
                "the file holds a private key; give a file of CA certificates only (e.g. mitmproxy-ca-cert.pem, not mitmproxy-ca.pem)",
            ));
        }
        let pem = certificate_blocks(&text).ok_or_else(|| {
            refuse("not a PEM bundle of certificates (no complete BEGIN/END CERTIFICATE block); give a PEM file such as /etc/ssl/certs/ca-certificates.crt")
        })?;
        Ok(CaBundle { pem })
    }
}

/// Whether any PEM boundary in `text` is a private key's (`BEGIN PRIVATE KEY`,
/// `BEGIN RSA PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`, `BEGIN OPENSSH PRIVATE KEY`,
/// PGP's `PRIVATE KEY BLOCK`, ...), wherever it stands in a line.
fn holds_private_key(text: &str) -> bool {
    ["-----BEGIN ", "-----END "].iter().any(|boundary| {
        text.match_indices(boundary).any(|(at, _)| {
            let rest = &text[at + boundary.len()..];
            let label = rest.find("-----").map_or(rest, |end| &rest[..end]);
            label.contains("PRIVATE KEY")
        })
    })
}

/// The `CERTIFICATE` blocks of `text`, each as written and followed by a newline; None
/// when there is none, when one is not closed, or when a block holds anything but
/// base64 (another boundary, a header): what is kept must be certificates alone.
fn certificate_blocks(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find(BEGIN_CERTIFICATE) {
        // An END before its BEGIN: a cut or garbled file.
        if rest[..begin].contains(END_CERTIFICATE) {
            return None;
        }
        let body_at = begin + BEGIN_CERTIFICATE.len();
        let end = body_at + rest[body_at..].find(END_CERTIFICATE)?;
        let body = &rest[body_at..end];
        let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
        if !body.chars().all(|c| base64(c) || c.is_ascii_whitespace()) || !body.chars().any(base64)
        {
            return None;
        }
        let block_end = end + END_CERTIFICATE.len();
        out.extend_from_slice(&rest.as_bytes()[begin..block_end]);
        out.push(b'\n');
        rest = &rest[block_end..];
    }
    if out.is_empty() || rest.contains(END_CERTIFICATE) {
        return None;
    }
    Some(out)
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
        profile: &Profile,
    ) -> Result<Self> {
        let flavor = catalog.check(target)?.clone();
        let profile = profile.clone();
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

    const CERT_A: &str = "-----BEGIN CERTIFICATE-----\nMIIBaaaa\n+/==\n-----END CERTIFICATE-----";
    const CERT_B: &str = "-----BEGIN CERTIFICATE-----\r\nMIIBbbbb\r\n-----END CERTIFICATE-----";

    fn load(text: &str) -> Result<CaBundle> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        CaBundle::load(&path)
    }

    #[test]
    fn only_the_certificate_blocks_go_into_the_context() {
        let cases = [
            (CERT_A.to_string(), format!("{CERT_A}\n")),
            // Comments and `openssl x509 -text` output around the blocks stay behind.
            (
                format!("# ISRG Root X1\nSubject: CN=x\n{CERT_A}\ntrailing words\n\n{CERT_B}\r\n"),
                format!("{CERT_A}\n{CERT_B}\n"),
            ),
            (format!("{CERT_A}{CERT_B}"), format!("{CERT_A}\n{CERT_B}\n")),
        ];
        for (file, kept) in cases {
            let bundle = load(&file).unwrap();
            assert_eq!(String::from_utf8(bundle.pem).unwrap(), kept, "{file:?}");
        }
    }

    #[test]
    fn a_file_holding_a_private_key_is_refused() {
        let key =
            |label: &str| format!("-----BEGIN {label}-----\nMIIEkey\n-----END {label}-----\n");
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ] {
            // mitmproxy-ca.pem is the key, then the certificate; others put it after.
            for file in [
                format!("{}{CERT_A}\n", key(label)),
                format!("{CERT_A}\n{}", key(label)),
                format!("{CERT_A}\nsome text -----BEGIN {label}----- inline\n"),
            ] {
                let e = load(&file).unwrap_err();
                assert_eq!(e.exit_code(), crate::error::exit::USAGE);
                let message = e.to_string();
                assert!(
                    message.contains("the file holds a private key"),
                    "{message}"
                );
                assert!(
                    message.contains("give a file of CA certificates only"),
                    "{message}"
                );
                assert!(!message.contains('\n'), "{message}");
            }
        }
        // A public key or a certificate request is no secret: dropped, not refused.
        let public =
            format!("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n{CERT_A}");
        assert_eq!(
            load(&public).unwrap().pem,
            format!("{CERT_A}\n").into_bytes()
        );
    }

    #[test]
    fn a_broken_certificate_block_is_refused() {
        for file in [
            // Not closed; closed before it opens; a second BEGIN inside; a header in it.
            "-----BEGIN CERTIFICATE-----\nMIIB\n".to_string(),
            format!("-----END CERTIFICATE-----\n{CERT_A}"),
            format!("{CERT_A}\n-----END CERTIFICATE-----\n"),
            "-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_string(),
            "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nMIIB\n-----END CERTIFICATE-----\n".to_string(),
            "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n".to_string(),
        ] {
            let e = load(&file).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(e.to_string().contains("not a PEM bundle of certificates"), "{file:?}: {e}");
        }
    }
}
