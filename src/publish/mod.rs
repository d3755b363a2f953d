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

#[cfg(test)]
mod fake;
pub mod layers;
pub mod referrers;

use std::fmt;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest, OciManifest,
    Platform as OciPlatform,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub use crate::compression::Compression;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::images::TaggedImage;
use crate::terminal_text::one_line;

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
        match crate::repository::registry_host(repository) {
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
        is_loopback(&self.registry)
    }

    fn scheme(&self) -> &'static str {
        if self.insecure() {
            "http"
        } else {
            "https"
        }
    }
}

/// Whether `registry` (a host with an optional `:port`) is this machine's loopback:
/// `localhost`, an IPv4 address in 127.0.0.0/8, or `[::1]`. Credentials go to such a
/// registry over plain HTTP, so the host is parsed, never matched by its prefix: a
/// name such as `127.0.0.1.example.net` is anyone's DNS name, and gets HTTPS.
pub fn is_loopback(registry: &str) -> bool {
    // `:5000` or nothing; u16's parser alone would take `+5000`.
    let port_ok = |port: &str| {
        port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok())
    };
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(address, port)| {
            port_ok(port)
                && address
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|a| a.is_loopback())
        });
    }
    let (host, port) = registry.split_at(registry.find(':').unwrap_or(registry.len()));
    port_ok(port)
        && (host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback()))
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

/// What a registry answers is untrusted and goes into dpy's error line (oci-client joins
/// an error envelope's entries with line breaks): one line, control characters shown.
fn registry_error(destination: &Destination, message: impl fmt::Display) -> Error {
    Error::Registry(one_line(&format!(
        "registry {}: {message}",
        destination.registry
    )))
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

/// What a registry (or the engine pushing to it) said, as far as the credentials go.
trait Refusal: fmt::Display {
    /// Whether it refused the credentials.
    fn refuses_credentials(&self) -> bool;
}

/// oci-client's errors say it by their kind: a 401 or 403, or an error envelope whose
/// code is UNAUTHORIZED or DENIED. Never by their words: a message that quotes a digest
/// can contain "401".
impl Refusal for OciDistributionError {
    fn refuses_credentials(&self) -> bool {
        match self {
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => true,
            OciDistributionError::ServerError { code, .. } => matches!(code, 401 | 403),
            OciDistributionError::RegistryError { envelope, .. } => envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
            _ => false,
        }
    }
}

/// The engine reports a failed push only as text in its stream: no status, no kind.
struct EngineSays(String);

impl fmt::Display for EngineSays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Refusal for EngineSays {
    /// The registry's own phrases, as the engine passes them on; a status code counts
    /// only as a word of its own (a digest in the message is hex, and may hold `401`).
    fn refuses_credentials(&self) -> bool {
        let m = self.0.to_ascii_lowercase();
        m.contains("unauthorized")
            || m.contains("authentication required")
            || m.contains("denied")
            || m.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == "401" || word == "403")
    }
}

/// dpy's own finding about what the registry served: never a refusal.
impl Refusal for &str {
    fn refuses_credentials(&self) -> bool {
        false
    }
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

/// Pushes one image (repository:tag) through the engine, then reads the tag back: the
/// manifest is what the registry serves, checked to be the one the engine pushed and to
/// describe the image dpy built (`engine_manifest`).
pub async fn push_image(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
) -> Result<PushedManifest> {
    let docker_credentials = credentials.as_ref().map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        serveraddress: Some(destination.registry.clone()),
        ..Default::default()
    });
    let doing = format!("pushing {}", image.reference());
    let reported = retrying(destination, credentials, &doing, || async {
        let options = PushImageOptionsBuilder::new().tag(&image.tag).build();
        let mut stream = engine.docker().push_image(
            &image.repository,
            Some(options),
            docker_credentials.clone(),
        );
        // The engine reports a failed push inside the stream, as an error detail.
        let mut failure = None;
        let mut reported = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(message);
                    }
                    if let Some(digest) = info
                        .status
                        .as_deref()
                        .and_then(|s| reported_digest(s, &image.tag))
                    {
                        reported = Some(digest);
                    }
                }
                Err(e) => failure = Some(e.to_string()),
            }
        }
        match failure {
            None => Ok(reported),
            Some(message) => Err(EngineSays(message)),
        }
    })
    .await?;
    let layers = engine
        .docker()
        .inspect_image(&image.id)
        .await
        .map_err(|e| Error::engine(&format!("inspecting the pushed {}", image.id), e))?
        .root_fs
        .and_then(|r| r.layers)
        .map(|l| l.len())
        .ok_or_else(|| {
            Error::Engine(format!(
                "the engine lists no layers for the pushed {}; is it the image dpy built?",
                image.id
            ))
        })?;
    let built = Built {
        id: &image.id,
        layers,
        reported,
    };
    engine_manifest(destination, &image.tag, credentials, &built).await
}

/// The manifest digest the engine reports at the end of a push, in its own words
/// (`TAG: digest: sha256:... size: N`): it hashed the bytes it sent, on this machine.
/// None for any other line, or a digest that is not a sha256.
fn reported_digest(status: &str, tag: &str) -> Option<String> {
    let digest = status
        .strip_prefix(tag)?
        .strip_prefix(": digest: ")?
        .split_whitespace()
        .next()?;
    crate::shape::sha256_digest(digest).then(|| digest.to_string())
}

/// Pushes one image (repository:tag) compressed as `compression` asks: gzip through
/// the engine, zstd by dpy (`push_zstd`). Returns the manifest under the tag, its digest
/// computed by dpy from bytes it holds: what is signed.
pub async fn push(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
    compression: Compression,
) -> Result<PushedManifest> {
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
/// OCI manifest under the image's tag. The manifest's bytes are dpy's: its digest is
/// their sha256, and the registry must serve exactly them under the tag.
pub async fn push_zstd(
    engine: &Engine,
    destination: &Destination,
    image: &TaggedImage,
    credentials: &Option<Credentials>,
) -> Result<PushedManifest> {
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
    let failed = |e: &dyn Refusal| failure(destination, credentials, &doing, e);
    client
        .auth(&reference, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(|e| failed(&e))?;

    // What the registry holds already, by what this machine compressed before.
    let mut descriptors: Vec<Option<OciDescriptor>> = vec![None; saved.layers().len()];
    for (i, layer) in saved.layers().iter().enumerate() {
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
            &saved.layers()[i].diff_id.replace(':', "-"),
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
    let compressed_size = manifest.config.size.max(0) as u64
        + manifest
            .layers
            .iter()
            .map(|l| l.size.max(0) as u64)
            .sum::<u64>();
    let bytes = canonical_json(&manifest);
    let manifest_size = bytes.len() as i64;
    let digest = put_manifest(
        &client,
        destination,
        credentials,
        &image.tag,
        OCI_MANIFEST,
        bytes,
    )
    .await?;
    Ok(PushedManifest {
        digest,
        media_type: OCI_MANIFEST.to_string(),
        manifest_size,
        compressed_size,
    })
}

/// A manifest's bytes as dpy pushes them: canonical JSON (sorted keys, no spaces), as
/// oci-client wrote them before dpy did, so a digest stays what earlier pushes gave.
fn canonical_json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut value = serde_json::to_value(value).expect("a manifest serializes");
    value.sort_all_objects();
    serde_json::to_vec(&value).expect("a manifest serializes")
}

/// Pushes `bytes` as the manifest under `tag` and reads the tag back. The digest is the
/// sha256 of the bytes dpy wrote; a registry that then serves anything else under the
/// tag (another push to it, or a registry that changes what it is given) is refused.
async fn put_manifest(
    client: &Client,
    destination: &Destination,
    credentials: &Option<Credentials>,
    tag: &str,
    media_type: &str,
    body: Vec<u8>,
) -> Result<String> {
    let reference = reference(destination, tag)?;
    let digest = sha256_digest(&body);
    let content_type =
        reqwest::header::HeaderValue::from_str(media_type).expect("a media type is a header value");
    client
        .store_auth_if_needed(reference.resolve_registry(), &auth(credentials))
        .await;
    let body = bytes::Bytes::from(body);
    retrying(destination, credentials, &format!("pushing {tag}"), || {
        client.push_manifest_raw(&reference, body.clone(), content_type.clone())
    })
    .await?;
    let served = served_manifest(client, destination, credentials, tag, &[media_type]).await?;
    let served = sha256_digest(&served);
    if served != digest {
        return Err(served_otherwise(destination, tag, &served, &digest, "dpy"));
    }
    Ok(digest)
}

/// The bytes the registry serves for `tag`, as received: whatever digest its headers
/// claim, dpy hashes these itself. What may pass (no answer, a 5xx, a registry whose
/// reads lag its writes) is asked again; any other failure is final.
async fn served_manifest(
    client: &Client,
    destination: &Destination,
    credentials: &Option<Credentials>,
    tag: &str,
    accept: &[&str],
) -> Result<bytes::Bytes> {
    let reference = reference(destination, tag)?;
    let auth = auth(credentials);
    let mut n = 0;
    loop {
        match client.pull_manifest_raw(&reference, &auth, accept).await {
            Ok((bytes, _claimed)) => return Ok(bytes),
            Err(e) if n + 1 < ATTEMPTS && (is_transient(&e) || is_not_found(&e)) => {
                n += 1;
                tokio::time::sleep(Duration::from_millis(500 << n)).await;
            }
            Err(e) => {
                return Err(failure(
                    destination,
                    credentials,
                    &format!("reading back {tag}"),
                    &e,
                ))
            }
        }
    }
}

/// Whether asking again may succeed: nothing answered, or a server error.
fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        _ => false,
    }
}

/// The registry serves `tag` as `served` where `who` pushed `pushed`: refused, since
/// signing either would sign what dpy did not check.
fn served_otherwise(
    destination: &Destination,
    tag: &str,
    served: &str,
    pushed: &str,
    who: &str,
) -> Error {
    Error::Registry(one_line(&format!(
        "registry {} serves {tag} as {served}, not as the {pushed} {who} pushed: another push to the tag, or a registry that changes what it is given; nothing was signed, push again",
        destination.registry
    )))
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
    E: Refusal,
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
            Err(e) if e.refuses_credentials() => return Err(refused(destination, credentials)),
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

/// What dpy knows of an image the engine pushed, to check what the registry serves
/// for it against.
struct Built<'a> {
    /// The image's id: the digest of its config.
    id: &'a str,
    /// How many layers the image has.
    layers: usize,
    /// The manifest digest the engine reported for its push, when it did.
    reported: Option<String>,
}

/// Reads back the manifest the engine pushed for `tag`, checked against `built`.
async fn engine_manifest(
    destination: &Destination,
    tag: &str,
    credentials: &Option<Credentials>,
    built: &Built<'_>,
) -> Result<PushedManifest> {
    let client = client(destination);
    let bytes = served_manifest(
        &client,
        destination,
        credentials,
        tag,
        &[DOCKER_MANIFEST, OCI_MANIFEST],
    )
    .await?;
    check_engine_manifest(destination, tag, &bytes, built)
}

/// The manifest the registry served for `tag` (`bytes`, as received) after the engine
/// pushed it, if it describes the image dpy built: the engine's digest when it reported
/// one, one image manifest whose config is the image's id, as many layers as the image.
/// Its digest is the sha256 of `bytes`, never what the registry says it is.
fn check_engine_manifest(
    destination: &Destination,
    tag: &str,
    bytes: &[u8],
    built: &Built<'_>,
) -> Result<PushedManifest> {
    let digest = sha256_digest(bytes);
    if let Some(reported) = &built.reported {
        if *reported != digest {
            return Err(served_otherwise(
                destination,
                tag,
                &digest,
                reported,
                "the engine",
            ));
        }
    }
    let not_the_image = |what: String| {
        Error::Registry(one_line(&format!(
            "registry {} serves {tag} as {digest}, {what}, not the image {} dpy built: another push to the tag, or a registry that changes what it is given; nothing was signed, push again",
            destination.registry, built.id
        )))
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Served {
        media_type: Option<String>,
        config: Option<Descriptor>,
        layers: Option<Vec<Descriptor>>,
    }
    #[derive(serde::Deserialize)]
    struct Descriptor {
        digest: String,
        #[serde(default)]
        size: u64,
    }
    let served: Served = serde_json::from_slice(bytes)
        .map_err(|e| not_the_image(format!("which is not an image manifest ({e})")))?;
    let media_type = match served.media_type.as_deref() {
        Some(t @ (DOCKER_MANIFEST | OCI_MANIFEST)) => t.to_string(),
        other => {
            return Err(not_the_image(format!(
                "which is not an image manifest (media type {:?})",
                other
                    .unwrap_or_default()
                    .chars()
                    .take(100)
                    .collect::<String>()
            )))
        }
    };
    let (Some(config), Some(layers)) = (served.config, served.layers) else {
        return Err(not_the_image(
            "which is not an image manifest (no config or layers)".into(),
        ));
    };
    if config.digest != built.id {
        return Err(not_the_image(format!(
            "an image whose config is {}",
            config.digest.chars().take(100).collect::<String>()
        )));
    }
    if layers.len() != built.layers {
        return Err(not_the_image(format!(
            "an image of {} layers ({} in the one built)",
            layers.len(),
            built.layers
        )));
    }
    Ok(PushedManifest {
        digest,
        media_type,
        manifest_size: bytes.len() as i64,
        compressed_size: config.size + layers.iter().map(|l| l.size).sum::<u64>(),
    })
}

/// Writes the index for `tag` listing each platform's manifest; returns its digest, the
/// sha256 of the bytes dpy wrote, once the registry serves exactly them under `tag`.
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
    put_manifest(
        &client(destination),
        destination,
        credentials,
        tag,
        media_type,
        canonical_json(&index),
    )
    .await
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
    let failed = |e: &dyn Refusal| failure(destination, credentials, &format!("reading {tag}"), e);
    let accept = [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ];
    let bytes = match client
        .pull_manifest_raw(&reference(destination, tag)?, &auth, &accept)
        .await
    {
        Ok((bytes, _claimed)) => bytes,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(failed(&e)),
    };
    // The digest `--if-changed` reports is the bytes' own, as a pushed one is.
    let digest = sha256_digest(&bytes);
    let manifest: OciManifest = serde_json::from_slice(&bytes).map_err(|e| {
        registry_error(
            destination,
            format!("{tag} is not a manifest or index: {e}"),
        )
    })?;
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
    Ok(labels[crate::labels::INPUTS]
        .as_str()
        .map(|inputs| crate::inputs::Previous {
            inputs: inputs.to_string(),
            digest,
            source_digest: labels[crate::labels::BASE_DIGEST]
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
    e: &dyn Refusal,
) -> Error {
    if e.refuses_credentials() {
        refused(destination, credentials)
    } else {
        registry_error(destination, format!("{doing}: {e}"))
    }
}

/// Whether the registry said it has no such manifest: HTTP 404, or an error envelope
/// whose every code is MANIFEST_UNKNOWN, NAME_UNKNOWN or NOT_FOUND (oci-client keeps the
/// envelope and drops the status). Decided by the error's kind, never its text: a
/// message that quotes a digest can contain "404".
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => {
            !envelope.errors.is_empty()
                && envelope.errors.iter().all(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                })
        }
        _ => false,
    }
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
    let failed = |e: &dyn Refusal| failure(destination, credentials, &format!("pushing {tag}"), e);
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
    // None yet is the usual case. Only the registry's "no such manifest" means none: a
    // manifest that could not be read may hold other keys' signatures, and pushing over
    // it would drop them.
    let unread = |why: &dyn Refusal| {
        if why.refuses_credentials() {
            return refused(destination, credentials);
        }
        registry_error(
            destination,
            format!(
                "reading {tag}: {why}; it may hold other keys' signatures, so nothing was pushed over it: sign again once the registry serves it"
            ),
        )
    };
    let mut layers = match client.pull_manifest(&reference, &auth).await {
        Ok((OciManifest::Image(existing), _)) => existing.layers,
        Ok((OciManifest::ImageIndex(_), _)) => {
            return Err(unread(&"an index, not cosign's manifest of signatures"))
        }
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => return Err(unread(&e)),
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

    #[test]
    fn only_this_machines_loopback_is_asked_over_plain_http() {
        for loopback in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.255.3.4:443",
            "[::1]",
            "[::1]:5000",
        ] {
            assert!(is_loopback(loopback), "{loopback}");
        }
        for elsewhere in [
            // Anyone's DNS names that only start like a loopback address or name.
            "127.0.0.1.example.net",
            "127.0.0.1.example.net:5000",
            "127.evil",
            "127.evil:5000",
            "localhost.example.com",
            "localhost.example.com:5000",
            // Not 127.0.0.0/8, or not an address Ipv4Addr takes as written.
            "128.0.0.1",
            "0.0.0.0:1",
            "127.1",
            "0177.0.0.1",
            "127.0.0.1x",
            // Ports that are not a port.
            "127.0.0.1:",
            "127.0.0.1:+5000",
            "127.0.0.1:65536",
            "127.0.0.1:5000:1",
            "localhost:http",
            // IPv6: only the loopback, bracketed.
            "[::2]:5000",
            "[::1]x",
            "[::1",
            "::1",
            "ghcr.io",
        ] {
            assert!(!is_loopback(elsewhere), "{elsewhere}");
        }
        let d = Destination::parse("127.0.0.1.example.net/dpy/python").unwrap();
        assert_eq!(d.scheme(), "https");
        let d = Destination::parse("127.0.0.1:5000/dpy/python").unwrap();
        assert_eq!(d.scheme(), "http");
    }

    fn envelope(codes: &[OciErrorCode]) -> OciDistributionError {
        use oci_client::errors::{OciEnvelope, OciError};
        let errors = codes
            .iter()
            .map(|code| {
                serde_json::from_value::<OciError>(serde_json::json!({"code": code}))
                    .expect("an error code")
            })
            .collect();
        OciDistributionError::RegistryError {
            envelope: OciEnvelope { errors },
            url: "http://127.0.0.1:5000/v2/x/manifests/sha256-404.sig".into(),
        }
    }

    #[test]
    fn not_found_is_the_registrys_status_or_code_never_text() {
        let server = |code: u16, message: &str| OciDistributionError::ServerError {
            code,
            url: "http://127.0.0.1:5000/v2/x/manifests/t".into(),
            message: message.into(),
        };
        assert!(is_not_found(&server(404, "")));
        assert!(is_not_found(&envelope(&[OciErrorCode::ManifestUnknown])));
        assert!(is_not_found(&envelope(&[OciErrorCode::NameUnknown])));
        // A digest in the text says nothing of what went wrong.
        let digest = "sha256:4040404040404040404040404040404040404040404040404040404040404040";
        assert!(!is_not_found(&server(500, &format!("{digest} not found"))));
        assert!(!is_not_found(&server(400, "manifest unknown")));
        assert!(!is_not_found(&envelope(&[OciErrorCode::Denied])));
        assert!(!is_not_found(&envelope(&[
            OciErrorCode::ManifestUnknown,
            OciErrorCode::Toomanyrequests
        ])));
        assert!(!is_not_found(&envelope(&[])));
        assert!(!is_not_found(&OciDistributionError::UnauthorizedError {
            url: "http://127.0.0.1:5000/v2/404".into()
        }));
        assert!(!is_not_found(
            &OciDistributionError::ImageManifestNotFoundError("no platform".into())
        ));
        // A refusal of the credentials: by kind from oci-client, whatever the words; by
        // the registry's own words from the engine, never by a digest's digits.
        assert!(server(401, "").refuses_credentials());
        assert!(server(403, "").refuses_credentials());
        assert!(envelope(&[OciErrorCode::Denied]).refuses_credentials());
        assert!(OciDistributionError::UnauthorizedError { url: "x".into() }.refuses_credentials());
        assert!(!server(500, &format!("{digest}01403ab: unauthorized 401")).refuses_credentials());
        assert!(!server(404, "denied").refuses_credentials());
        assert!(!envelope(&[OciErrorCode::ManifestUnknown]).refuses_credentials());
        let engine = |m: &str| EngineSays(m.to_string()).refuses_credentials();
        assert!(engine("unauthorized: authentication required"));
        assert!(engine("Docker responded with status code 401"));
        assert!(engine("HTTP 403 Forbidden"));
        assert!(!engine(&format!("blob {digest}01403ab unknown")));
        assert!(!"an index, not cosign's manifest of signatures".refuses_credentials());
    }

    #[test]
    fn the_engines_digest_is_read_from_its_own_line_only() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            reported_digest(
                &format!("3.12-amd64: digest: {digest} size: 1574"),
                "3.12-amd64"
            ),
            Some(digest.clone())
        );
        for other in [
            format!("3.12-arm64: digest: {digest} size: 1574"),
            format!("Pushed {digest}"),
            "3.12-amd64: digest: sha256:abc size: 1".to_string(),
            format!("3.12-amd64: digest: {} size: 1", digest.to_uppercase()),
        ] {
            assert_eq!(reported_digest(&other, "3.12-amd64"), None, "{other}");
        }
    }

    #[test]
    fn a_registrys_words_stay_on_one_line() {
        let d = Destination::parse("127.0.0.1:5000/x").unwrap();
        let e = registry_error(&d, "a\nb\r\n\x1b]0;title\x07c");
        assert_eq!(e.exit_code(), crate::error::exit::REGISTRY);
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert_eq!(text, "registry 127.0.0.1:5000: a b \\x1b]0;title\\x07c");
    }

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// A manifest as the engine pushes one: Docker's type, `config` as the config's
    /// digest, `layers` gzip layers.
    fn engine_pushed(config: &str, layers: usize) -> Vec<u8> {
        let layer = |i: usize| {
            serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 100 + i,
                "digest": format!("sha256:{:064x}", i + 7),
            })
        };
        serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 10,
                "digest": config,
            },
            "layers": (0..layers).map(layer).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn built(layers: usize, reported: Option<String>) -> Built<'static> {
        Built {
            id: ID,
            layers,
            reported,
        }
    }

    #[test]
    fn the_engines_manifest_is_taken_by_its_bytes_when_it_is_the_image_built() {
        let d = Destination::parse("127.0.0.1:5000/x").unwrap();
        let bytes = engine_pushed(ID, 2);
        let digest = sha256_digest(&bytes);
        for reported in [None, Some(digest.clone())] {
            let m = check_engine_manifest(&d, "t", &bytes, &built(2, reported)).unwrap();
            assert_eq!(m.digest, digest);
            assert_eq!(m.media_type, DOCKER_MANIFEST);
            assert_eq!(m.manifest_size, bytes.len() as i64);
            assert_eq!(m.compressed_size, 10 + 100 + 101);
        }
    }

    #[test]
    fn an_engine_manifest_that_is_not_the_image_built_is_refused() {
        let d = Destination::parse("127.0.0.1:5000/x").unwrap();
        let other = format!("sha256:{}", "2".repeat(64));
        let refused = |bytes: &[u8], built: &Built<'_>| {
            let e = check_engine_manifest(&d, "t", bytes, built).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::REGISTRY, "{e}");
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(
                text.starts_with(&format!(
                    "registry 127.0.0.1:5000 serves t as {}, ",
                    sha256_digest(bytes)
                )),
                "{text}"
            );
            assert!(text.contains("nothing was signed"), "{text}");
            text
        };
        // Other bytes than the engine reported pushing: both digests named.
        let bytes = engine_pushed(ID, 2);
        let text = refused(&bytes, &built(2, Some(other.clone())));
        assert!(
            text.contains(&format!("not as the {other} the engine pushed")),
            "{text}"
        );
        // Another image's manifest: its config, and the image built, named.
        let text = refused(&engine_pushed(&other, 2), &built(2, None));
        assert!(
            text.contains(&format!(
                "an image whose config is {other}, not the image {ID}"
            )),
            "{text}"
        );
        let text = refused(&bytes, &built(3, None));
        assert!(
            text.contains(&format!(
                "an image of 2 layers (3 in the one built), not the image {ID} dpy built"
            )),
            "{text}"
        );
        // Not an image manifest at all.
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
        }))
        .unwrap();
        assert!(refused(&index, &built(2, None)).contains("not an image manifest"));
        assert!(refused(b"\x1b[2J", &built(2, None)).contains("not an image manifest"));
    }

    fn platform(arch: &str) -> crate::platform::Platform {
        format!("linux/{arch}").parse().unwrap()
    }

    fn entries() -> Vec<(crate::platform::Platform, PushedManifest)> {
        ["amd64", "arm64"]
            .iter()
            .enumerate()
            .map(|(i, arch)| {
                let manifest = PushedManifest {
                    digest: format!("sha256:{:064x}", i + 1),
                    media_type: OCI_MANIFEST.to_string(),
                    manifest_size: 500,
                    compressed_size: 0,
                };
                (platform(arch), manifest)
            })
            .collect()
    }

    #[tokio::test]
    async fn an_index_is_the_digest_of_the_bytes_dpy_wrote_as_oci_client_wrote_them() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        let digest = push_index(&d, "3.12", &entries(), &None).await.unwrap();
        let held = registry.manifest("dpy/python", "3.12").unwrap();
        assert_eq!(digest, sha256_digest(&held));
        assert_eq!(registry.count("PUT", "/manifests/3.12"), 1);
        assert_eq!(registry.count("GET", "/manifests/3.12"), 1);
        // The bytes oci-client's own push writes for the same index: the digests of
        // indexes pushed before dpy wrote the bytes itself stay the same.
        let index: OciImageIndex = serde_json::from_slice(&held).unwrap();
        client(&d)
            .push_manifest(
                &reference(&d, "by-oci-client").unwrap(),
                &OciManifest::ImageIndex(index),
            )
            .await
            .unwrap();
        assert_eq!(
            registry.manifest("dpy/python", "by-oci-client").unwrap(),
            held
        );
    }

    /// A refusal of the credentials is final at once (one request); a server error is
    /// tried again, ATTEMPTS times in all. Counted, not timed: a retry can be quick.
    #[tokio::test]
    async fn refused_credentials_are_asked_once_and_a_failing_server_a_bounded_number_of_times() {
        let credentials = Some(Credentials {
            username: "dpy".into(),
            password: "wrong".into(),
        });
        let registry = fake::Fake::start().await;
        registry.answer(
            "GET",
            "/v2/",
            fake::Answer::error(401, "UNAUTHORIZED", "authentication required"),
        );
        let e = preflight(&registry.destination("dpy/python"), &credentials)
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::REGISTRY);
        assert!(
            e.to_string().contains("refused the credentials of dpy"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("wrong"),
            "the password is never printed: {e}"
        );
        assert_eq!(registry.count("GET", "/v2/"), 1);

        let failing = fake::Fake::start().await;
        failing.answer(
            "GET",
            "/v2/",
            fake::Answer::error(503, "UNAVAILABLE", "try later"),
        );
        let e = preflight(&failing.destination("dpy/python"), &credentials)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no answer after 3 attempts"), "{e}");
        assert_eq!(failing.count("GET", "/v2/"), ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn an_index_the_registry_serves_otherwise_is_refused() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        // What another push to the tag would leave there: an index of other images.
        let mut others = entries();
        others[0].1.digest = format!("sha256:{}", "e".repeat(64));
        let theirs = canonical_json(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [others[0].1.digest],
        }));
        registry.answer(
            "GET",
            "/v2/dpy/python/manifests/3.12",
            fake::Answer::new(200, OCI_INDEX, theirs.clone()),
        );
        let e = push_index(&d, "3.12", &entries(), &None).await.unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::REGISTRY);
        let ours = sha256_digest(&registry.manifest("dpy/python", "3.12").unwrap());
        assert_eq!(
            e.to_string(),
            format!(
                "registry {} serves 3.12 as {}, not as the {ours} dpy pushed: another push to the tag, or a registry that changes what it is given; nothing was signed, push again",
                registry.registry,
                sha256_digest(&theirs)
            )
        );
        assert_eq!(registry.count("PUT", "/manifests/"), 1);
        assert_eq!(registry.count("GET", "/manifests/3.12"), 1);
    }

    #[tokio::test]
    async fn a_digest_header_is_not_taken_for_the_bytes() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        // The engine pushed `pushed`; the registry serves another image's manifest under
        // the tag, with a header that names the pushed digest.
        let pushed = engine_pushed(ID, 2);
        let served = engine_pushed(&format!("sha256:{}", "3".repeat(64)), 2);
        let mut answer = fake::Answer::new(200, DOCKER_MANIFEST, served.clone());
        answer.digest = Some(sha256_digest(&pushed));
        registry.answer("GET", "/v2/dpy/python/manifests/t", answer);
        let e = engine_manifest(&d, "t", &None, &built(2, Some(sha256_digest(&pushed))))
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::REGISTRY);
        let text = e.to_string();
        assert!(text.contains("reading back t: "), "{text}");
        assert!(text.contains(&sha256_digest(&served)), "{text}");
        // Refused at once: a digest that does not match is not asked again.
        assert_eq!(registry.count("GET", "/manifests/t"), 1);
        // Without the header, the bytes alone are refused as another image.
        registry.answer(
            "GET",
            "/v2/dpy/python/manifests/t",
            fake::Answer::new(200, DOCKER_MANIFEST, served.clone()),
        );
        let e = engine_manifest(&d, "t", &None, &built(2, None))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("serves t as {}", sha256_digest(&served))),
            "{e}"
        );
        // The image built, served as pushed: its digest is the bytes'.
        registry.hold_manifest("dpy/python", "good", DOCKER_MANIFEST, &pushed);
        let m = engine_manifest(&d, "good", &None, &built(2, Some(sha256_digest(&pushed))))
            .await
            .unwrap();
        assert_eq!(m.digest, sha256_digest(&pushed));
    }

    fn signature(data: &str) -> crate::sign::Attachment {
        crate::sign::Attachment {
            media_type: crate::sign::payload::SIMPLE_SIGNING,
            data: data.as_bytes().to_vec(),
            annotations: [(
                crate::sign::payload::SIGNATURE_ANNOTATION.to_string(),
                format!("signature of {data}"),
            )]
            .into(),
        }
    }

    /// The layers (their data's digests) of the `.sig` manifest held for `SUBJECT`.
    fn sig_layers(registry: &fake::Fake) -> Vec<String> {
        let held = registry.manifest("dpy/python", SIG_TAG).unwrap();
        let manifest: OciImageManifest = serde_json::from_slice(&held).unwrap();
        manifest.layers.into_iter().map(|l| l.digest).collect()
    }

    const SUBJECT: &str = "sha256:4044040440440404404404044040404040440440404040440440440404404404";
    const SIG_TAG: &str =
        "sha256-4044040440440404404404044040404040440440404040440440440404404404.sig";

    #[tokio::test]
    async fn a_signature_is_added_to_those_of_other_keys() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        // None yet: the registry's MANIFEST_UNKNOWN.
        let tag = push_attachment(&d, SUBJECT, "sig", &signature("theirs"), &None)
            .await
            .unwrap();
        assert_eq!(tag, SIG_TAG);
        assert_eq!(sig_layers(&registry), [sha256_digest(b"theirs")]);
        // Another key's signature is there: kept, and dpy's added after it.
        push_attachment(&d, SUBJECT, "sig", &signature("ours"), &None)
            .await
            .unwrap();
        let both = [sha256_digest(b"theirs"), sha256_digest(b"ours")];
        assert_eq!(sig_layers(&registry), both);
        // The same signature again changes nothing.
        let puts = registry.count("PUT", "/manifests/");
        push_attachment(&d, SUBJECT, "sig", &signature("ours"), &None)
            .await
            .unwrap();
        assert_eq!(registry.count("PUT", "/manifests/"), puts);
        // A plain 404 without an error envelope is "none yet" too.
        let path = "/v2/dpy/python/manifests/sha256-4044040440440404404404044040404040440440404040440440440404404404.att";
        registry.answer(
            "GET",
            path,
            fake::Answer::new(404, "text/plain", "404 page not found"),
        );
        push_attachment(&d, SUBJECT, "att", &signature("ours"), &None)
            .await
            .unwrap();
        assert_eq!(registry.count("PUT", ".att"), 1);
    }

    #[tokio::test]
    async fn signatures_that_cannot_be_read_are_never_pushed_over() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        push_attachment(&d, SUBJECT, "sig", &signature("theirs"), &None)
            .await
            .unwrap();
        let held = registry.manifest("dpy/python", SIG_TAG).unwrap();
        let path = format!("/v2/dpy/python/manifests/{SIG_TAG}");
        for answer in [
            // A failure whose text has "404" in it, from the digest it names.
            fake::Answer::new(500, "text/plain", format!("storage of {SUBJECT} failed")),
            fake::Answer::error(503, "UNAVAILABLE", "back soon"),
            fake::Answer::error(400, "MANIFEST_INVALID", "not found in the cache (404)"),
            // A manifest that does not parse, and one that is not cosign's.
            fake::Answer::new(200, OCI_MANIFEST, "{\"schemaVersion\": 2, \"layers\": 4"),
            fake::Answer::new(
                200,
                OCI_INDEX,
                canonical_json(&serde_json::json!({
                    "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
                })),
            ),
        ] {
            registry.answer("GET", &path, answer);
            let puts = registry.count("PUT", "/manifests/");
            let gets = registry.count("GET", &path);
            let e = push_attachment(&d, SUBJECT, "sig", &signature("ours"), &None)
                .await
                .unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::REGISTRY, "{e}");
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(
                text.starts_with(&format!(
                    "registry {}: reading {SIG_TAG}: ",
                    registry.registry
                )),
                "{text}"
            );
            assert!(text.contains("so nothing was pushed over it"), "{text}");
            assert_eq!(registry.count("GET", &path), gets + 1);
            assert_eq!(registry.count("PUT", "/manifests/"), puts, "nothing pushed");
            assert_eq!(registry.manifest("dpy/python", SIG_TAG).unwrap(), held);
        }
    }

    #[tokio::test]
    async fn what_if_changed_compares_is_read_by_the_bytes_and_only_a_404_is_none() {
        let registry = fake::Fake::start().await;
        let d = registry.destination("dpy/python");
        // No such tag: nothing recorded, so the build goes ahead.
        assert!(recorded_inputs(&d, "3.12", &None).await.unwrap().is_none());
        // An index over one image whose config carries the label.
        let config = serde_json::to_vec(&serde_json::json!({
            "config": {"Labels": {crate::labels::INPUTS: "sha256:inputs"}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        let config = OciDescriptor {
            media_type: layers::OCI_CONFIG.to_string(),
            digest: registry.hold_blob(&config),
            size: config.len() as i64,
            ..Default::default()
        };
        let layer = zstd_descriptor(registry.hold_blob(b"layer"), 5);
        let image = canonical_json(&OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config,
            layers: vec![layer],
            ..Default::default()
        });
        registry.hold_manifest("dpy/python", "3.12-amd64", OCI_MANIFEST, &image);
        let mut entries = entries();
        entries.truncate(1);
        entries[0].1.digest = sha256_digest(&image);
        let index = push_index(&d, "3.12", &entries, &None).await.unwrap();
        let previous = recorded_inputs(&d, "3.12", &None).await.unwrap().unwrap();
        assert_eq!(previous.inputs, "sha256:inputs");
        assert_eq!(previous.digest, index);
        assert_eq!(previous.compression, Some(Compression::Zstd));
        // A registry that fails is not taken for one without the tag.
        registry.answer(
            "GET",
            "/v2/dpy/python/manifests/3.12",
            fake::Answer::error(400, "DENIED", &format!("{index} is 404")),
        );
        let e = recorded_inputs(&d, "3.12", &None).await.unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::REGISTRY, "{e}");
    }
}
