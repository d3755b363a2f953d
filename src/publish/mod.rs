//! Publish: each platform's images pushed to a registry, then one index per tag.
//!
//! The engine pushes the per-platform tags (`…:3.12-alpine3.20-amd64`) with gzip layers;
//! with `--compression zstd` dpy pushes them itself (`push_zstd`, `layers`). The index
//! that makes `docker pull …:3.12-alpine3.20` pick the right platform is written last,
//! with oci-client, because the Engine API cannot create one. An interrupted push therefore
//! never leaves the plain tag pointing at a partial index.
//!
//! Credentials come from `--registry-auth`, DPY_REGISTRY_AUTH or the user's docker config
//! (credential helpers included). They are never printed, logged or recorded.

pub mod layers;

use std::fmt;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest, OciManifest,
    Platform as OciPlatform,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::images::TaggedImage;
pub use layers::Compression;

/// How often a transient failure (connection refused or reset, 5xx) is tried again.
pub const ATTEMPTS: u32 = 3;
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Where `--push` sends images: a repository with an explicit registry host.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `127.0.0.1:5000`, `ghcr.io`, ...
    pub registry: String,
    /// The whole repository as given, host included.
    pub repository: String,
}

impl Destination {
    pub fn parse(repository: &str) -> Result<Self> {
        let host = repository
            .split_once('/')
            .map(|(h, _)| h)
            .filter(|h| h.contains('.') || h.contains(':') || *h == "localhost");
        match host {
            Some(host) => Ok(Destination {
                registry: host.to_string(),
                repository: repository.to_string(),
            }),
            None => Err(Error::Usage(format!(
                "--push needs a repository with a registry host, e.g. 127.0.0.1:5000/dpy/python or ghcr.io/me/python, not {repository:?}"
            ))),
        }
    }

    /// Plain HTTP for loopback registries (as the docker daemon allows), HTTPS elsewhere.
    fn insecure(&self) -> bool {
        let host = self.registry.split(':').next().unwrap_or_default();
        host == "localhost" || host.starts_with("127.")
    }

    fn scheme(&self) -> &'static str {
        if self.insecure() {
            "http"
        } else {
            "https"
        }
    }
}

/// Splits USER:PASSWORD; refuses a value without the colon or with an empty user.
pub fn check_credentials_form(text: &str) -> Result<(&str, &str)> {
    match text.split_once(':') {
        Some((username, password)) if !username.is_empty() => Ok((username, password)),
        _ => Err(Error::Usage(
            "--registry-auth takes USER:PASSWORD (or set DPY_REGISTRY_AUTH); the value given has no user before a colon".into(),
        )),
    }
}

/// The first line of standard input: `--registry-password-stdin`.
pub fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::io("standard input", e))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Error::Usage(
            "--registry-password-stdin read no password: pipe it in, e.g. `printenv PASSWORD | dpy build ... --registry-password-stdin`".into(),
        ));
    }
    Ok(password)
}

/// `USER:PASSWORD` from the option or DPY_REGISTRY_AUTH, else the docker config's entry.
pub fn credentials(destination: &Destination, option: Option<&str>) -> Result<Option<Credentials>> {
    let given = option
        .map(str::to_string)
        .or_else(|| std::env::var("DPY_REGISTRY_AUTH").ok());
    if let Some(text) = given {
        let (username, password) = check_credentials_form(&text)?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    // Reads $DOCKER_CONFIG or ~/.docker/config.json, running credential helpers.
    match docker_credential::get_credential(&destination.registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Credentials { username, password }))
        }
        _ => Ok(None),
    }
}

fn registry_error(destination: &Destination, message: impl fmt::Display) -> Error {
    Error::Registry(format!("registry {}: {message}", destination.registry))
}

fn refused(destination: &Destination, credentials: &Option<Credentials>) -> Error {
    let who = credentials
        .as_ref()
        .map(|c| format!("the credentials of {}", c.username))
        .unwrap_or_else(|| "anonymous access".into());
    Error::Registry(format!(
        "registry {} refused {who}; check --registry-auth or `docker login {}`",
        destination.registry, destination.registry
    ))
}

fn is_auth_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("denied")
        || m.contains("401")
        || m.contains("403")
}

/// Checks, before anything is built, that the registry answers and takes the credentials.
/// Transient failures are tried again with backoff; a refusal is final at once.
pub async fn preflight(destination: &Destination, credentials: &Option<Credentials>) -> Result<()> {
    install_tls_provider();
    let url = format!("{}://{}/v2/", destination.scheme(), destination.registry);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| registry_error(destination, e))?;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        let mut request = client.get(&url);
        if let Some(c) = credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                return Err(refused(destination, credentials))
            }
            Ok(response) if response.status().is_server_error() => {
                last = format!("HTTP {}", response.status());
            }
            Ok(response) => {
                return Err(registry_error(
                    destination,
                    format!("unexpected answer HTTP {} from {url}", response.status()),
                ))
            }
            Err(e) => last = error_chain(&e),
        }
    }
    Err(registry_error(
        destination,
        format!("no answer after {ATTEMPTS} attempts ({last}); is it running and reachable?"),
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Pushes one image (repository:tag) through the engine.
pub async fn push_image(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
) -> Result<()> {
    let docker_credentials = credentials.as_ref().map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        serveraddress: Some(destination.registry.clone()),
        ..Default::default()
    });
    let doing = format!("pushing {}", image.reference());
    retrying(destination, credentials, &doing, || async {
        let options = PushImageOptionsBuilder::new().tag(&image.tag).build();
        let mut stream = engine.docker().push_image(
            &image.repository,
            Some(options),
            docker_credentials.clone(),
        );
        // The engine reports a failed push inside the stream, as an error detail.
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(message);
                    }
                }
                Err(e) => failure = Some(e.to_string()),
            }
        }
        match failure {
            None => Ok(()),
            Some(message) => Err(message),
        }
    })
    .await
}

/// Pushes one image (repository:tag) compressed as `compression` asks: gzip through
/// the engine, zstd by dpy (`push_zstd`).
pub async fn push(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
    compression: Compression,
) -> Result<()> {
    match compression {
        Compression::Gzip => push_image(engine, destination, image, credentials).await,
        Compression::Zstd => push_zstd(engine, destination, image, credentials).await,
    }
}

/// Where the blob each layer gave is remembered (`cache`): diff_id → `digest size`.
fn zstd_memo() -> String {
    format!("zstd-{}", layers::ZSTD_LEVEL)
}

/// Pushes one image with zstd layers: saved from the engine, each layer compressed
/// unless the registry already holds the blob it gave before, then the config and an
/// OCI manifest under the image's tag.
pub async fn push_zstd(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
) -> Result<()> {
    let work = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let archive = work.path().join("image.tar");
    crate::engine::save::save(engine, &image.id, &archive).await?;
    let saved = {
        let (archive, id) = (archive.clone(), image.id.clone());
        tokio::task::spawn_blocking(move || layers::Saved::open(&archive, &id))
            .await
            .map_err(|e| Error::Engine(format!("reading the saved {}: {e}", image.id)))??
    };
    let reference = reference(destination, &image.tag)?;
    let client = client(destination);
    let auth = auth(credentials);
    let doing = format!("pushing {}", image.reference());
    let failed = |e: &dyn fmt::Display| failure(destination, credentials, &doing, e);
    client
        .auth(&reference, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| failed(&e))?;

    // What the registry holds already, by what this machine compressed before.
    let mut descriptors: Vec<Option<OciDescriptor>> = vec![None; saved.layers.len()];
    for (i, layer) in saved.layers.iter().enumerate() {
        let remembered = crate::cache::recall(&zstd_memo(), &layer.diff_id.replace(':', "-"));
        let Some((digest, size)) = remembered.as_deref().and_then(|r| r.split_once(' ')) else {
            continue;
        };
        let Ok(size) = size.parse::<i64>() else {
            continue;
        };
        if client
            .blob_exists(&reference, digest)
            .await
            .map_err(|e| failed(&e))?
        {
            descriptors[i] = Some(zstd_descriptor(digest.to_string(), size));
        }
    }
    let wanted: Vec<usize> = (0..descriptors.len())
        .filter(|&i| descriptors[i].is_none())
        .collect();
    let saved = std::sync::Arc::new(saved);
    let compressed = {
        let saved = saved.clone();
        tokio::task::spawn_blocking(move || saved.compress(&wanted))
            .await
            .map_err(|e| Error::Engine(format!("compressing {}: {e}", image.id)))??
    };
    let mut compressed: Vec<(usize, layers::Blob)> = compressed.into_iter().collect();
    compressed.sort_by_key(|(i, _)| *i);
    for (i, blob) in compressed {
        let size = blob.data.len() as i64;
        if descriptors[..i]
            .iter()
            .flatten()
            .all(|d| d.digest != blob.digest)
        {
            retrying(destination, credentials, &doing, || {
                client.push_blob(&reference, blob.data.clone(), &blob.digest)
            })
            .await?;
        }
        crate::cache::remember(
            &zstd_memo(),
            &saved.layers[i].diff_id.replace(':', "-"),
            &format!("{} {size}", blob.digest),
        );
        descriptors[i] = Some(zstd_descriptor(blob.digest, size));
    }
    let config = &saved.config;
    retrying(destination, credentials, &doing, || {
        client.push_blob(&reference, config.data.clone(), &config.digest)
    })
    .await?;
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: OciDescriptor {
            media_type: layers::OCI_CONFIG.to_string(),
            digest: config.digest.clone(),
            size: config.data.len() as i64,
            ..Default::default()
        },
        layers: descriptors.into_iter().flatten().collect(),
        ..Default::default()
    };
    let manifest = OciManifest::Image(manifest);
    retrying(destination, credentials, &doing, || {
        client.push_manifest(&reference, &manifest)
    })
    .await?;
    Ok(())
}

fn zstd_descriptor(digest: String, size: i64) -> OciDescriptor {
    OciDescriptor {
        media_type: layers::ZSTD_LAYER.to_string(),
        digest,
        size,
        ..Default::default()
    }
}

/// `attempt` until it succeeds, up to [`ATTEMPTS`] times with a growing pause; a
/// refusal of the credentials is not tried again.
async fn retrying<T, E, F, Fut>(
    destination: &Destination,
    credentials: &Option<Credentials>,
    doing: &str,
    mut attempt: F,
) -> Result<T>
where
    E: fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let mut last = String::new();
    for n in 0..ATTEMPTS {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(500 << n)).await;
        }
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if is_auth_failure(&e.to_string()) => {
                return Err(refused(destination, credentials))
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(registry_error(
        destination,
        format!("{doing} failed after {ATTEMPTS} attempts: {last}"),
    ))
}

/// A manifest as the registry holds it: what an index entry needs, and its size.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: String,
    pub media_type: String,
    pub manifest_size: i64,
    /// Config plus compressed layers: what a pull downloads.
    pub compressed_size: u64,
}

/// reqwest and oci-client are built without a TLS provider of their own: ring, which
/// bollard already links, becomes the process default before the first client is made
/// (reqwest panics on an https registry otherwise).
fn install_tls_provider() {
    // Err only means a provider is installed already, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client(destination: &Destination) -> Client {
    install_tls_provider();
    let protocol = if destination.insecure() {
        ClientProtocol::HttpsExcept(vec![destination.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        ..Default::default()
    })
}

fn auth(credentials: &Option<Credentials>) -> RegistryAuth {
    match credentials {
        Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
        None => RegistryAuth::Anonymous,
    }
}

fn reference(destination: &Destination, tag: &str) -> Result<Reference> {
    format!("{}:{tag}", destination.repository)
        .parse()
        .map_err(|e| registry_error(destination, format!("bad reference: {e}")))
}

/// Reads back the manifest the engine pushed for `tag`.
pub async fn manifest(
    destination: &Destination,
    tag: &str,
    credentials: &Option<Credentials>,
) -> Result<PushedManifest> {
    let (bytes, digest) = client(destination)
        .pull_manifest_raw(
            &reference(destination, tag)?,
            &auth(credentials),
            &[DOCKER_MANIFEST, OCI_MANIFEST],
        )
        .await
        .map_err(|e| registry_error(destination, format!("reading the manifest of {tag}: {e}")))?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        registry_error(
            destination,
            format!("the manifest of {tag} is not JSON: {e}"),
        )
    })?;
    let size = |v: &serde_json::Value| {
        v.get("size")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let compressed_size = size(&json["config"])
        + json["layers"]
            .as_array()
            .map(|layers| layers.iter().map(size).sum())
            .unwrap_or(0);
    Ok(PushedManifest {
        digest,
        media_type: json["mediaType"]
            .as_str()
            .unwrap_or(DOCKER_MANIFEST)
            .to_string(),
        manifest_size: bytes.len() as i64,
        compressed_size,
    })
}

/// Writes the index for `tag` listing each platform's manifest; returns its digest.
pub async fn push_index(
    destination: &Destination,
    tag: &str,
    entries: &[(crate::platform::Platform, PushedManifest)],
    credentials: &Option<Credentials>,
) -> Result<String> {
    let manifests = entries
        .iter()
        .map(|(platform, manifest)| {
            let (architecture, variant) = match platform.arch.split_once('/') {
                Some((a, v)) => (a.to_string(), Some(v.to_string())),
                None => (platform.arch.clone(), None),
            };
            ImageIndexEntry {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest.clone(),
                size: manifest.manifest_size,
                platform: Some(OciPlatform {
                    architecture: architecture.as_str().into(),
                    os: "linux".into(),
                    os_version: None,
                    os_features: None,
                    variant,
                    features: None,
                }),
                annotations: None,
                artifact_type: None,
            }
        })
        .collect();
    // Docker's list for Docker's manifests (the engine's gzip push), OCI's for OCI's.
    let media_type = if entries.iter().all(|(_, m)| m.media_type == OCI_MANIFEST) {
        OCI_INDEX
    } else {
        DOCKER_MANIFEST_LIST
    };
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some(media_type.to_string()),
        manifests,
        artifact_type: None,
        annotations: None,
    };
    let reference = reference(destination, tag)?;
    let client = client(destination);
    let doing = format!("writing the index of {tag}");
    let registry_auth = auth(credentials);
    retrying(destination, credentials, &doing, || {
        client.push_manifest_list(&reference, &registry_auth, index.clone())
    })
    .await?;
    client
        .fetch_manifest_digest(&reference, &registry_auth)
        .await
        .map_err(|e| registry_error(destination, format!("reading back {tag}: {e}")))
}

/// What the registry holds under `tag`, as `--if-changed` compares it: the inputs
/// label of its first platform's image and the index's digest. None when the tag is not
/// there or its image has no such label (a build older than the label).
pub async fn recorded_inputs(
    destination: &Destination,
    tag: &str,
    credentials: &Option<Credentials>,
) -> Result<Option<crate::inputs::Previous>> {
    let client = client(destination);
    let auth = auth(credentials);
    let failed =
        |e: &dyn fmt::Display| failure(destination, credentials, &format!("reading {tag}"), e);
    let (manifest, digest) = match client
        .pull_manifest(&reference(destination, tag)?, &auth)
        .await
    {
        Ok(found) => found,
        Err(e) if is_not_found(&e.to_string()) => return Ok(None),
        Err(e) => return Err(failed(&e)),
    };
    let image = match manifest {
        OciManifest::ImageIndex(index) => match index.manifests.first() {
            Some(first) => format!("{}@{}", destination.repository, first.digest),
            None => return Ok(None),
        },
        OciManifest::Image(_) => format!("{}@{digest}", destination.repository),
    };
    let image: Reference = image
        .parse()
        .map_err(|e| registry_error(destination, format!("bad reference: {e}")))?;
    let (manifest, _, config) = client
        .pull_manifest_and_config(&image, &auth)
        .await
        .map_err(|e| failed(&e))?;
    let compression =
        Compression::of_media_types(manifest.layers.iter().map(|l| l.media_type.as_str()));
    let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| {
        registry_error(destination, format!("the config of {tag} is not JSON: {e}"))
    })?;
    let labels = &config["config"]["Labels"];
    Ok(labels[crate::inputs::LABEL]
        .as_str()
        .map(|inputs| crate::inputs::Previous {
            inputs: inputs.to_string(),
            digest,
            source_digest: labels["org.opencontainers.image.base.digest"]
                .as_str()
                .map(String::from),
            compression: Some(compression),
        }))
}

/// A registry's answer to `doing` as an error: a refusal of the credentials, or what
/// went wrong.
fn failure(
    destination: &Destination,
    credentials: &Option<Credentials>,
    doing: &str,
    e: &dyn fmt::Display,
) -> Error {
    if is_auth_failure(&e.to_string()) {
        refused(destination, credentials)
    } else {
        registry_error(destination, format!("{doing}: {e}"))
    }
}

fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("manifest unknown") || m.contains("not found") || m.contains("404")
}

/// Pushes a signature or attestation layer for `digest` under cosign's tag for it,
/// `sha256-<hex>.<kind>` (`sig`, `att`), in the same repository. Layers already there
/// from other keys are kept, as cosign keeps them; the same layer is not added twice,
/// so signing an unchanged image again changes nothing. Returns the tag.
pub async fn push_attachment(
    destination: &Destination,
    digest: &str,
    kind: &str,
    attachment: &crate::sign::Attachment,
    credentials: &Option<Credentials>,
) -> Result<String> {
    let tag = format!("{}.{kind}", digest.replacen(':', "-", 1));
    let reference = reference(destination, &tag)?;
    let client = client(destination);
    let auth = auth(credentials);
    let failed =
        |e: &dyn fmt::Display| failure(destination, credentials, &format!("pushing {tag}"), e);
    client
        .auth(&reference, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| failed(&e))?;
    let layer = OciDescriptor {
        media_type: attachment.media_type.to_string(),
        digest: sha256_digest(&attachment.data),
        size: attachment.data.len() as i64,
        annotations: Some(attachment.annotations.clone()),
        ..Default::default()
    };
    // None yet is the usual case; anything unreadable is replaced, not appended to.
    let mut layers = match client.pull_image_manifest(&reference, &auth).await {
        Ok((existing, _)) => existing.layers,
        Err(_) => Vec::new(),
    };
    if layers
        .iter()
        .any(|l| l.digest == layer.digest && l.annotations == layer.annotations)
    {
        return Ok(tag);
    }
    layers.push(layer);
    // The config lists the layers, as an image's would; tools read only the layers.
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    }))
    .expect("a config serializes");
    let config_descriptor = OciDescriptor {
        media_type: "application/vnd.oci.image.config.v1+json".to_string(),
        digest: sha256_digest(&config),
        size: config.len() as i64,
        ..Default::default()
    };
    client
        .push_blob(
            &reference,
            attachment.data.clone(),
            &sha256_digest(&attachment.data),
        )
        .await
        .map_err(|e| failed(&e))?;
    client
        .push_blob(&reference, config, &config_descriptor.digest)
        .await
        .map_err(|e| failed(&e))?;
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: config_descriptor,
        layers,
        ..Default::default()
    };
    client
        .push_manifest(&reference, &OciManifest::Image(manifest))
        .await
        .map_err(|e| failed(&e))?;
    Ok(tag)
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_needs_a_registry_host() {
        assert_eq!(
            Destination::parse("127.0.0.1:5000/dpy/python")
                .unwrap()
                .registry,
            "127.0.0.1:5000"
        );
        assert_eq!(
            Destination::parse("ghcr.io/me/py").unwrap().registry,
            "ghcr.io"
        );
        for bad in ["dpy/python", "python"] {
            let e = Destination::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let c = Credentials {
            username: "me".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn given_credentials_need_a_colon() {
        let d = Destination::parse("127.0.0.1:5000/x").unwrap();
        assert!(credentials(&d, Some("nocolon")).is_err());
        let c = credentials(&d, Some("u:p:q")).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
    }

    /// An https registry makes reqwest build a TLS config: with no provider of its own
    /// compiled in, that would panic unless ring is installed first. 0.0.0.0 is not a
    /// loopback name dpy treats as plain http, and nothing listens on port 1.
    #[tokio::test]
    async fn an_https_registry_is_asked_with_tls_not_a_panic() {
        let d = Destination::parse("0.0.0.0:1/dpy/python").unwrap();
        assert_eq!(d.scheme(), "https");
        let e = preflight(&d, &None).await.unwrap_err();
        assert!(e.to_string().contains("no answer after"), "{e}");
        client(&d);
    }
}
