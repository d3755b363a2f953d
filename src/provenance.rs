//! Provenance: for each image, an in-toto statement (v1) with an SLSA v1 provenance
//! predicate, written beside the metadata file. It records what the image was made from
//! and how: the target, the source image with its digest, dpy's version and the digest
//! of the image definitions and templates it embeds, the profile and options, the
//! platforms, and the build's epoch. Its subjects are the digests the records carry
//! (the pushed index and manifests, or the local image id).

use serde_json::{json, Value};

/// The build type this predicate describes.
pub const BUILD_TYPE: &str = "https://dpy.invalid/build/v1";

/// SLSA provenance v1, the predicate of every statement dpy writes.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// What went into a build, as the predicate names it.
pub struct Inputs<'a> {
    pub target: &'a str,
    pub source_image: &'a str,
    pub source_digest: &'a str,
    pub profile: &'a str,
    pub platforms: &'a [String],
    pub no_cache: bool,
    pub compile_once: bool,
    /// How the pushed layers are compressed; None: not pushed.
    pub compression: Option<crate::compression::Compression>,
    /// RFC 3339: the build's epoch.
    pub epoch: &'a str,
}

/// The in-toto statement for `subjects` (name, `sha256:…`).
pub fn statement(subjects: &[(String, String)], inputs: &Inputs<'_>) -> Value {
    let subject: Vec<Value> = subjects
        .iter()
        .map(|(name, digest)| {
            json!({"name": name, "digest": {"sha256": digest.trim_start_matches("sha256:")}})
        })
        .collect();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "target": inputs.target,
                    "source_image": inputs.source_image,
                    "profile": inputs.profile,
                    "platforms": inputs.platforms,
                    "options": {
                        "no_cache": inputs.no_cache,
                        "compile_once": inputs.compile_once,
                        "compression": inputs.compression,
                    },
                },
                "internalParameters": {
                    "dpy_version": env!("CARGO_PKG_VERSION"),
                    "definitions": crate::definitions::digest(),
                    "epoch": inputs.epoch,
                },
                "resolvedDependencies": [{
                    "uri": format!("docker-image://{}", inputs.source_image),
                    "digest": {"sha256": inputs.source_digest.trim_start_matches("sha256:")}
                }]
            },
            "runDetails": {
                "builder": {"id": format!("https://dpy.invalid/dpy@{}", env!("CARGO_PKG_VERSION"))},
                "metadata": {"startedOn": inputs.epoch, "finishedOn": inputs.epoch}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_names_its_subjects_and_what_made_them() {
        let platforms = ["linux/amd64".to_string()];
        let inputs = Inputs {
            target: "3.12-alpine3.20",
            source_image: "python:3.12-alpine3.20",
            source_digest: "sha256:ab",
            profile: "standard",
            platforms: &platforms,
            no_cache: false,
            compile_once: true,
            compression: None,
            epoch: "2024-01-01T00:00:00Z",
        };
        let s = statement(
            &[("me/py:3.12-alpine3.20".into(), "sha256:cd".into())],
            &inputs,
        );
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["subject"][0]["digest"]["sha256"], "cd");
        assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
        let definition = &s["predicate"]["buildDefinition"];
        assert_eq!(
            definition["externalParameters"]["target"],
            "3.12-alpine3.20"
        );
        assert_eq!(
            definition["resolvedDependencies"][0]["digest"]["sha256"],
            "ab"
        );
        assert_eq!(
            definition["internalParameters"]["definitions"],
            crate::definitions::digest()
        );
        // The same inputs, the same statement: nothing in it is the wall clock.
        assert_eq!(
            s,
            statement(
                &[("me/py:3.12-alpine3.20".into(), "sha256:cd".into())],
                &inputs
            )
        );
        assert!(crate::definitions::digest().starts_with("sha256:"));
    }
}
