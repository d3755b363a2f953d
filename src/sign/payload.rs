//! What is signed: cosign's simple-signing payload for an image digest, and the DSSE
//! envelope of an in-toto statement for an attestation.
//!
//! Both are serialized with sorted keys and no timestamps, and P-256 signatures are
//! deterministic (RFC 6979), so signing the same digest twice gives the same bytes and
//! a rebuild that changed nothing pushes nothing new.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::json;

/// The media type of a signature layer (`…sig`).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of an attestation layer (`…att`).
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation that carries a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// DSSE's payload type for in-toto statements.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The payload that says "`repository`@`digest` is signed". The identity is the
/// repository without a tag, as cosign writes it; a policy matches it with
/// `matchRepository`.
pub fn simple_signing(repository: &str, digest: &str, creator: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": {"creator": creator},
    }))
    .expect("a payload serializes")
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope around an in-toto statement, with its signature.
pub fn envelope(statement: &[u8], signature: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "payload": BASE64.encode(statement),
        "payloadType": IN_TOTO,
        "signatures": [{"keyid": "", "sig": BASE64.encode(signature)}],
    }))
    .expect("an envelope serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_has_exactly_the_fields_containers_image_requires() {
        let payload = simple_signing("127.0.0.1:5000/dpy/python", "sha256:ab", "dpy 1");
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/dpy/python"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":{"creator":"dpy 1"}}"#
        );
    }

    /// The example of the DSSE specification's protocol document.
    #[test]
    fn pae_is_dsses() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
