//! Sigstore bundles (v0.3), the form cosign v3 signs and attests in, beside the legacy
//! `.sig`/`.att` tags that skopeo and podman still read.
//!
//! Each bundle is a DSSE envelope of an in-toto statement, signed with the key (no
//! certificate, no transparency-log entry: a key-signed bundle, as `cosign sign --key
//! --tlog-upload=false` writes), naming the key by its hint. cosign v3 signs an image
//! with the statement `https://sigstore.dev/cosign/sign/v1` about its digest, and
//! attests with the predicate's own type. `publish::referrers` attaches each bundle to
//! its subject as an OCI 1.1 referrer of type [`MEDIA_TYPE`].
//!
//! Verifying one: `cosign verify --key dpy.pub --insecure-ignore-tlog=true IMAGE` (v3),
//! or sigstore-js's `@sigstore/verify` with the public key as trust material and no
//! log or timestamp thresholds, as the tests do.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::payload;

/// The media type of a bundle, its referrer's artifact type and its layer's type.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The predicate type of cosign v3's signature statement.
pub const SIGNED: &str = "https://sigstore.dev/cosign/sign/v1";
/// The predicate types cosign gives SBOM attestations.
pub const SPDX: &str = "https://spdx.dev/Document";
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";

/// The in-toto (v1) statement of `predicate_type` about `digest`.
pub fn statement(digest: &str, predicate_type: &str, predicate: Value) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
    .expect("a statement serializes")
}

/// The bundle of `statement`, whose DSSE signature (over the pre-authentication
/// encoding) is `signature`, made by the key whose hint is `hint`.
pub fn bundle(statement: &[u8], signature: &[u8], hint: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "dsseEnvelope": {
            "payload": BASE64.encode(statement),
            "payloadType": payload::IN_TOTO,
            "signatures": [{"sig": BASE64.encode(signature)}],
        },
    }))
    .expect("a bundle serializes")
}

/// The annotations cosign puts on a bundle's referrer manifest.
pub fn annotations(
    predicate_type: &str,
    created: &str,
) -> std::collections::BTreeMap<String, String> {
    [
        ("dev.sigstore.bundle.content", "dsse-envelope"),
        ("dev.sigstore.bundle.predicateType", predicate_type),
        (crate::labels::CREATED, created),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_carries_the_signed_statement_and_the_keys_hint() {
        let statement = statement("sha256:abc", SIGNED, json!({}));
        let parsed: Value = serde_json::from_slice(&statement).unwrap();
        assert_eq!(
            parsed,
            json!({"_type": "https://in-toto.io/Statement/v1",
                   "subject": [{"digest": {"sha256": "abc"}}],
                   "predicateType": SIGNED, "predicate": {}})
        );
        let bundle: Value =
            serde_json::from_slice(&bundle(&statement, b"sig", "aGludA==")).unwrap();
        assert_eq!(bundle["mediaType"], MEDIA_TYPE);
        assert_eq!(
            bundle["verificationMaterial"],
            json!({"publicKey": {"hint": "aGludA=="}})
        );
        let envelope = &bundle["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        assert_eq!(
            BASE64
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap(),
            statement
        );
        assert_eq!(envelope["signatures"], json!([{"sig": "c2ln"}]));
    }
}
