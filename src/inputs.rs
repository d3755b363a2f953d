//! What a target's images are made of, as one digest: `--if-changed` rebuilds a target
//! only when it moved.
//!
//! The inputs are the source image's digest on each platform, dpy's version, the
//! digest of the image definitions and templates dpy embeds, the profile, and the
//! options that change the bytes (the shell, the variants made, compile once,
//! SOURCE_DATE_EPOCH, the signing key).
//! The digest goes into the `io.dpy.inputs` label of both images and into the metadata
//! records, so the last build of a tag can be asked, locally or in the registry.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A target's inputs, and their digest.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    dpy: &'static str,
    definitions: String,
    /// Platform → the source image's digest (its registry digest, or the local id).
    pub sources: BTreeMap<String, String>,
    profile: String,
    shell: crate::runtime::Shell,
    variants: Vec<crate::runtime::Variant>,
    compile_once: bool,
    source_date_epoch: Option<i64>,
    signed_with: Option<String>,
}

impl Inputs {
    pub fn new(
        sources: BTreeMap<String, String>,
        profile: &str,
        shell: crate::runtime::Shell,
        variants: &[crate::runtime::Variant],
        compile_once: bool,
        signed_with: Option<String>,
    ) -> Self {
        Inputs {
            dpy: env!("CARGO_PKG_VERSION"),
            definitions: crate::definitions::digest(),
            sources,
            profile: profile.to_string(),
            shell,
            variants: variants.to_vec(),
            compile_once,
            source_date_epoch: crate::epoch::source_date_epoch(),
            signed_with,
        }
    }

    /// `sha256:` of the inputs as JSON (keys in a fixed order).
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("inputs serialize");
        format!("sha256:{:x}", Sha256::digest(json))
    }
}

/// The last build of a tag, as recorded: what it was made of and what it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub inputs: String,
    /// The runtime image's digest (a pushed index) or local id.
    pub digest: String,
    /// The source digest it recorded (the first platform's), to say what moved.
    pub source_digest: Option<String>,
    /// How the registry's layers are compressed; None for a local build. The images are
    /// the same either way, so this is not an input, but a push in another compression
    /// is not the one asked for.
    pub compression: Option<crate::compression::Compression>,
}

impl Previous {
    /// Whether the last build is what is asked now: the same inputs and, pushed, the
    /// same compression.
    pub fn is(&self, inputs: &str, compression: crate::compression::Compression) -> bool {
        self.inputs == inputs && self.compression.is_none_or(|c| c == compression)
    }
}

/// What to say when a target's inputs differ from its last build's.
pub fn what_moved(
    previous: &Previous,
    now: &Inputs,
    compression: crate::compression::Compression,
) -> String {
    let first = now.sources.values().next();
    match (&previous.source_digest, first, previous.compression) {
        (Some(old), Some(new), _) if old != new => format!("source {old} → {new}"),
        (_, _, Some(pushed)) if pushed != compression && previous.inputs == now.digest() => {
            format!("the registry's layers are {pushed}, --compression {compression} asks")
        }
        _ => "dpy, its definitions or the options changed".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(source: &str) -> Inputs {
        Inputs::new(
            BTreeMap::from([("linux/amd64".to_string(), source.to_string())]),
            "standard",
            crate::runtime::Shell::Dash,
            &crate::runtime::DEFAULT_VARIANTS,
            true,
            None,
        )
    }

    #[test]
    fn the_digest_moves_with_the_source_and_the_options_only() {
        assert_eq!(inputs("sha256:a").digest(), inputs("sha256:a").digest());
        assert_ne!(inputs("sha256:a").digest(), inputs("sha256:b").digest());
        let mut slim = inputs("sha256:a");
        slim.profile = "slim".into();
        assert_ne!(slim.digest(), inputs("sha256:a").digest());
        let mut debug = inputs("sha256:a");
        debug.variants.push(crate::runtime::Variant::Debug);
        assert_ne!(debug.digest(), inputs("sha256:a").digest());
    }

    /// The digest of fixed inputs, held to a value written down: --if-changed compares
    /// digests across dpy releases, so the form they are taken over (field names and
    /// order, how the shell and variants serialize) must not move by accident. A change
    /// here is deliberate, and makes every target rebuild once.
    #[test]
    fn the_digest_of_fixed_inputs_is_a_golden_value() {
        let fixed = Inputs {
            dpy: "1.0.0",
            definitions: format!("sha256:{}", "d".repeat(64)),
            sources: BTreeMap::from([
                (
                    "linux/amd64".to_string(),
                    format!("sha256:{}", "a".repeat(64)),
                ),
                (
                    "linux/arm64".to_string(),
                    format!("sha256:{}", "b".repeat(64)),
                ),
            ]),
            profile: "standard".into(),
            shell: crate::runtime::Shell::Dash,
            variants: crate::runtime::DEFAULT_VARIANTS.to_vec(),
            compile_once: true,
            source_date_epoch: Some(1_700_000_000),
            signed_with: Some("sha256:f00d".into()),
        };
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&fixed).unwrap()).unwrap(),
            GOLDEN_JSON,
        );
        assert_eq!(fixed.digest(), GOLDEN_DIGEST);
    }

    #[test]
    fn a_moved_source_is_named() {
        let previous = Previous {
            inputs: "sha256:x".into(),
            digest: "sha256:d".into(),
            source_digest: Some("sha256:a".into()),
            compression: None,
        };
        let gzip = crate::compression::Compression::Gzip;
        assert_eq!(
            what_moved(&previous, &inputs("sha256:b"), gzip),
            "source sha256:a → sha256:b"
        );
        assert_eq!(
            what_moved(&previous, &inputs("sha256:a"), gzip),
            "dpy, its definitions or the options changed"
        );
        // The same inputs, pushed in another compression: pushed again, and said why.
        let now = inputs("sha256:a");
        let pushed = Previous {
            inputs: now.digest(),
            source_digest: Some("sha256:a".into()),
            compression: Some(gzip),
            ..previous
        };
        let zstd = crate::compression::Compression::Zstd;
        assert!(pushed.is(&now.digest(), gzip));
        assert!(!pushed.is(&now.digest(), zstd));
        assert_eq!(
            what_moved(&pushed, &now, zstd),
            "the registry's layers are gzip, --compression zstd asks"
        );
    }

    // The bytes digested, and their sha256 as `sha256sum` gives it.
    const GOLDEN_JSON: &str = concat!(
        r#"{"dpy":"1.0.0","definitions":"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd","#,
        r#""sources":{"linux/amd64":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
        r#""linux/arm64":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},"#,
        r#""profile":"standard","shell":"dash","variants":["runtime","buildroot"],"#,
        r#""compile_once":true,"source_date_epoch":1700000000,"signed_with":"sha256:f00d"}"#
    );
    const GOLDEN_DIGEST: &str =
        "sha256:e601031b467bc7dc78c8101c68c9815189d2474ded656fb817a32818119f9e04";
}
