//! The digest of the definitions dpy embeds: a leaf, named by the inputs digest
//! (`--if-changed`) and the provenance statement alike.

use sha2::{Digest, Sha256};

/// The digest of everything dpy embeds that shapes an image: the image definitions
/// (images/*.toml) and the templates and files of the build context.
pub fn digest() -> String {
    let mut hasher = Sha256::new();
    let files = crate::catalog::EMBEDDED
        .iter()
        .chain(crate::render::TEMPLATES)
        .chain(crate::render::VERBATIM);
    for (name, body) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(body.len().to_le_bytes());
        hasher.update(body.as_bytes());
    }
    format!("sha256:{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_covers_the_embedded_files() {
        assert!(super::digest().starts_with("sha256:"));
        assert_eq!(super::digest(), super::digest());
    }
}
