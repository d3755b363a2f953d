//! Artifacts attached to a pushed manifest as OCI 1.1 referrers: a manifest whose
//! `subject` is the image's manifest, whose `artifactType` says what it holds, with an
//! empty config and the artifact as its one layer. Scanners find an image's SBOMs this
//! way (`trivy image --sbom-sources oci`), as cosign v3 finds its bundles.
//!
//! A registry with the referrers API (`GET /v2/<name>/referrers/<digest>`) lists them
//! itself. One without it (docker-registry 2.x among them) gets the referrers tag schema
//! of the distribution spec: an index under the tag `sha256-<hex>` of the subject, which
//! clients read when the API answers 404. The index keeps what others put there, adds
//! each artifact once, and lists them by digest, so pushing an unchanged image again
//! writes the same bytes under the same tag.

use std::collections::BTreeMap;
use std::time::Duration;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::Reference;
use serde_json::{json, Value};

use super::{
    auth, client, failure, is_not_found, put_manifest, reference, registry_error, retrying,
    sha256_digest, Credentials, Destination, Refusal, OCI_INDEX, OCI_MANIFEST,
};
use crate::error::Result;

/// The config of every artifact manifest: the empty descriptor's two bytes.
const EMPTY: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The manifest an artifact is attached to, and whether its registry lists referrers
/// itself: asked once per subject, however many artifacts go to it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    listed_by_registry: bool,
}

impl Subject {
    /// A manifest dpy just pushed, as the push reported it.
    pub async fn pushed(
        destination: &Destination,
        credentials: &Option<Credentials>,
        manifest: &super::PushedManifest,
    ) -> Result<Subject> {
        Ok(Subject {
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            size: manifest.manifest_size,
            listed_by_registry: has_referrers_api(destination, credentials, &manifest.digest)
                .await?,
        })
    }

    /// The manifest `digest` as the registry serves it (an index dpy pushed, say).
    pub async fn read(
        destination: &Destination,
        credentials: &Option<Credentials>,
        digest: &str,
    ) -> Result<Subject> {
        let client = client(destination);
        let at = reference(destination, "referrers")?;
        let by_digest = Reference::with_digest(
            at.registry().to_string(),
            at.repository().to_string(),
            digest.to_string(),
        );
        let accept = [
            OCI_MANIFEST,
            OCI_INDEX,
            super::DOCKER_MANIFEST,
            super::DOCKER_MANIFEST_LIST,
        ];
        let (bytes, _) = client
            .pull_manifest_raw(&by_digest, &auth(credentials), &accept)
            .await
            .map_err(|e| failure(destination, credentials, &format!("reading {digest}"), &e))?;
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_string))
            .ok_or_else(|| registry_error(destination, format!("{digest} names no media type")))?;
        Ok(Subject {
            digest: digest.to_string(),
            media_type,
            size: bytes.len() as i64,
            listed_by_registry: has_referrers_api(destination, credentials, digest).await?,
        })
    }
}

/// What is attached: its type (also its layer's media type, as the spec's artifact
/// guidance and Trivy both want), its bytes, and the manifest's annotations.
pub struct Artifact<'a> {
    pub artifact_type: &'a str,
    pub data: &'a [u8],
    pub annotations: BTreeMap<String, String>,
}

/// Attaches `artifact` to `subject` in the destination's repository; returns the
/// referrer manifest's digest.
pub async fn attach(
    destination: &Destination,
    credentials: &Option<Credentials>,
    subject: &Subject,
    artifact: &Artifact<'_>,
) -> Result<String> {
    let client = client(destination);
    let auth = auth(credentials);
    let doing = format!("attaching {} to {}", artifact.artifact_type, subject.digest);
    let failed = |e: &dyn Refusal| failure(destination, credentials, &doing, e);
    let at = reference(destination, "referrers")?;
    client
        .auth(&at, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| failed(&e))?;
    let layer = OciDescriptor {
        media_type: artifact.artifact_type.to_string(),
        digest: sha256_digest(artifact.data),
        size: artifact.data.len() as i64,
        ..Default::default()
    };
    let config = OciDescriptor {
        media_type: EMPTY_MEDIA_TYPE.to_string(),
        digest: sha256_digest(EMPTY),
        size: EMPTY.len() as i64,
        ..Default::default()
    };
    for (data, digest) in [(artifact.data, &layer.digest), (EMPTY, &config.digest)] {
        retrying(destination, credentials, &doing, || {
            client.push_blob(&at, data.to_vec(), digest)
        })
        .await?;
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config,
        layers: vec![layer],
        subject: Some(OciDescriptor {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            size: subject.size,
            ..Default::default()
        }),
        artifact_type: Some(artifact.artifact_type.to_string()),
        annotations: (!artifact.annotations.is_empty()).then(|| artifact.annotations.clone()),
    };
    let body = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let digest = sha256_digest(&body);
    let by_digest = Reference::with_digest(
        at.registry().to_string(),
        at.repository().to_string(),
        digest.clone(),
    );
    let content_type = reqwest::header::HeaderValue::from_static(OCI_MANIFEST);
    let bytes = bytes::Bytes::from(body.clone());
    retrying(destination, credentials, &doing, || {
        client.push_manifest_raw(&by_digest, bytes.clone(), content_type.clone())
    })
    .await?;
    if !subject.listed_by_registry {
        // The entry the referrers API would list: the manifest's annotations go with it,
        // so that a client tells a signature from an attestation without reading each
        // (cosign v3 takes every bundle listed without a predicate type for a signature).
        let mut entry = json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": body.len(),
            "artifactType": artifact.artifact_type,
        });
        if !artifact.annotations.is_empty() {
            entry["annotations"] = json!(artifact.annotations);
        }
        add_to_fallback_index(&client, destination, credentials, &subject.digest, entry).await?;
    }
    Ok(digest)
}

/// The tag of the referrers tag schema for `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Whether the registry answers the referrers API for `digest` (200), or not (404, or
/// 400 from registries that read `referrers` as a manifest reference). Asked with the
/// credentials as given, as the preflight asks.
async fn has_referrers_api(
    destination: &Destination,
    credentials: &Option<Credentials>,
    digest: &str,
) -> Result<bool> {
    let name = destination
        .repository
        .strip_prefix(&format!("{}/", destination.registry))
        .unwrap_or(&destination.repository);
    let url = format!(
        "{}://{}/v2/{name}/referrers/{digest}",
        destination.scheme(),
        destination.registry
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| registry_error(destination, e))?;
    let mut request = http.get(&url).header("Accept", OCI_INDEX);
    if let Some(c) = credentials {
        request = request.basic_auth(&c.username, Some(&c.password));
    }
    let response = request
        .send()
        .await
        .map_err(|e| registry_error(destination, format!("asking {url}: {e}")))?;
    Ok(response.status().is_success())
}

/// Adds `entry` to the index under the subject's fallback tag (made when there is none),
/// keeping every other manifest's entry, and pushes it back when it changed.
async fn add_to_fallback_index(
    client: &oci_client::Client,
    destination: &Destination,
    credentials: &Option<Credentials>,
    subject: &str,
    entry: Value,
) -> Result<()> {
    let tag = fallback_tag(subject);
    let at = reference(destination, &tag)?;
    let existing = match client
        .pull_manifest_raw(&at, &auth(credentials), &[OCI_INDEX])
        .await
    {
        Ok((bytes, _)) => Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| {
            registry_error(
                destination,
                format!("{tag} is not an index of referrers ({e}); nothing was pushed over it"),
            )
        })?),
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(failure(
                destination,
                credentials,
                &format!("reading {tag}"),
                &e,
            ))
        }
    };
    let mut manifests: Vec<Value> = existing
        .as_ref()
        .and_then(|index| index["manifests"].as_array().cloned())
        .unwrap_or_default();
    // An entry for the same manifest is made again as it should read (an older dpy
    // listed no annotations); when it already does, nothing is pushed.
    match manifests
        .iter_mut()
        .find(|m| m["digest"] == entry["digest"])
    {
        Some(listed) if *listed == entry => return Ok(()),
        Some(listed) => *listed = entry,
        None => manifests.push(entry),
    }
    manifests.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let body = serde_json::to_vec(&index).expect("an index serializes");
    put_manifest(client, destination, credentials, &tag, OCI_INDEX, body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fake;

    #[tokio::test]
    async fn the_tag_schema_index_lists_each_referrer_once_with_its_annotations() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        // The fake registry has no referrers API, as docker-registry 2.x.
        let subject = Subject {
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: OCI_MANIFEST.to_string(),
            size: 2,
            listed_by_registry: false,
        };
        let artifact = Artifact {
            artifact_type: "application/vnd.dev.sigstore.bundle.v0.3+json",
            data: b"{\"bundle\": 1}",
            annotations: [(
                "dev.sigstore.bundle.predicateType",
                "https://spdx.dev/Document",
            )]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let tag = fallback_tag(&subject.digest);
        let index = || -> Value {
            serde_json::from_slice(&registry.manifest("dpy/python", &tag).unwrap()).unwrap()
        };
        let digest = attach(&d, &None, &subject, &artifact).await.unwrap();
        let ours = json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": registry.manifest("dpy/python", &digest).unwrap().len(),
            "artifactType": artifact.artifact_type,
            "annotations": {"dev.sigstore.bundle.predicateType": "https://spdx.dev/Document"},
        });
        assert_eq!(index()["manifests"], json!([ours]));

        // What an older dpy listed for the same manifest (no annotations), beside an
        // entry of someone else's: ours is written again as it should read, theirs kept.
        let mut older = ours.clone();
        older.as_object_mut().unwrap().remove("annotations");
        let theirs = json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "0".repeat(64)),
                            "size": 1, "artifactType": "application/spdx+json"});
        let held =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [older, theirs]});
        registry.hold_manifest(
            "dpy/python",
            &tag,
            OCI_INDEX,
            &serde_json::to_vec(&held).unwrap(),
        );
        attach(&d, &None, &subject, &artifact).await.unwrap();
        assert_eq!(index()["manifests"], json!([theirs, ours]));

        // Attached again unchanged: the index is not pushed again.
        let pushed = registry.count("PUT", &format!("/manifests/{tag}"));
        attach(&d, &None, &subject, &artifact).await.unwrap();
        assert_eq!(registry.count("PUT", &format!("/manifests/{tag}")), pushed);
    }
}
