//! The source image: used as is when local, pulled only when missing.
//!
//! Its digest is recorded (OCI label and metadata) so an image can always be traced to
//! the exact source it was distilled from.

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::Engine;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct SourceImage {
    /// As the user or the definition named it.
    pub name: String,
    /// The registry digest (`sha256:...` of `repo@sha256:...`) when known, else the local
    /// image id.
    pub digest: String,
    /// What the Dockerfiles' FROM lines name: a repository digest that the engine
    /// resolves to this very image (`python@sha256:...`), so that a tag moved after this
    /// resolve cannot change what is built, and the labels, provenance and `--if-changed`
    /// name the image used. An image with no such digest (built locally, as the test
    /// bed's) is named as given: the engine's BuildKit reads `FROM sha256:<id>` as a
    /// repository called `sha256` and asks Docker Hub for it (measured on engine 20.10).
    pub pinned: String,
    pub id: String,
    pub platform: String,
    /// When the source image was made (its config's `created`), if it says.
    pub created: Option<time::OffsetDateTime>,
    /// Its layers' diff ids: images built on it keep these as they are.
    pub layers: Vec<String>,
}

/// Finds `name` locally or pulls it for `platform`; checks it is of that platform.
pub async fn resolve(engine: &Engine, name: &str, platform: &str) -> Result<SourceImage> {
    let inspect = match engine.docker().inspect_image(name).await {
        Ok(found) => found,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            pull(engine, name, platform).await?;
            engine.docker().inspect_image(name).await.map_err(|e| {
                Error::SourceMissing(format!(
                    "source image {name} was pulled but cannot be inspected: {e}"
                ))
            })?
        }
        Err(e) => return Err(Error::engine(&format!("inspecting {name}"), e)),
    };
    let found = format!(
        "{}/{}",
        inspect.os.as_deref().unwrap_or("linux"),
        inspect.architecture.as_deref().unwrap_or("unknown")
    );
    let wanted = platform.split('/').take(2).collect::<Vec<_>>().join("/");
    if found != wanted {
        return Err(Error::SourceUnfit(format!(
            "source image {name} is {found}, not {wanted}; the local image store keeps one platform per tag, so give a {wanted} image with --source-image"
        )));
    }
    let created = inspect.created;
    let layers = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
    let id = inspect.id.unwrap_or_default();
    let candidates = repo_digests(name, &inspect.repo_digests.unwrap_or_default());
    let digest = candidates
        .first()
        .map_or_else(|| id.clone(), |(_, digest)| digest.clone());
    let pinned = pin(engine, name, &id, &candidates).await;
    Ok(SourceImage {
        name: name.to_string(),
        digest,
        pinned,
        id,
        platform: wanted,
        created,
        layers,
    })
}

async fn pull(engine: &Engine, name: &str, platform: &str) -> Result<()> {
    let (image, tag) = split_reference(name);
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .tag(tag)
        .platform(platform)
        .build();
    let mut stream = engine.docker().create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let reason = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            return Err(Error::SourceMissing(format!(
                "source image {name} is not in the local image store and pulling it failed ({reason}); load or build it locally, or pass another image with --source-image"
            )));
        }
    }
    Ok(())
}

/// Whether the reference FROM lines named (`pinned`) still names the image that was
/// resolved. A digest always does; a tag (a source with no repository digest, such as a
/// locally built one) can be moved by anyone with the engine while the build runs.
pub async fn still_resolves(engine: &Engine, source: &SourceImage) -> Result<()> {
    if source.pinned.contains("@sha256:") {
        return Ok(());
    }
    let now = engine
        .docker()
        .inspect_image(&source.pinned)
        .await
        .ok()
        .and_then(|i| i.id);
    match now {
        Some(id) if id == source.id => Ok(()),
        now => Err(Error::SourceUnfit(format!(
            "the source tag {} moved while dpy built from it (it named {} and names {} now); nothing was tagged: build again",
            source.pinned,
            source.id,
            now.as_deref().unwrap_or("nothing")
        ))),
    }
}

/// The reference FROM lines name: the first of `candidates` that the engine resolves to
/// the image `id` itself, else `name`. A multi-platform source pulled twice into one
/// image store (once per platform) has one repository digest (its index's) for two
/// images, and the engine maps it to the last one pulled: BuildKit would then find the
/// other platform's image and go to the registry. The tag, which names the right one, is
/// kept then, as it is for an image with no repository digest.
async fn pin(engine: &Engine, name: &str, id: &str, candidates: &[(String, String)]) -> String {
    for (reference, _) in candidates {
        if let Ok(found) = engine.docker().inspect_image(reference).await {
            if found.id.as_deref() == Some(id) {
                return reference.clone();
            }
        }
    }
    name.to_string()
}

/// The image's well-formed repository digests (`repo@sha256:<hex>`), each with its
/// digest: those of `name`'s own repository first, then the others, as the engine listed
/// them. A `repo@sha256:<hex>` the engine lists resolves, in its BuildKit, to an image of
/// that content.
fn repo_digests(name: &str, listed: &[String]) -> Vec<(String, String)> {
    let well_formed = |reference: &&String| {
        reference.split_once('@').is_some_and(|(repo, digest)| {
            !repo.is_empty()
                && !repo.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@')
                && crate::shape::sha256_digest(digest)
        })
    };
    let repository = |reference: &str| {
        let repo = split_reference(reference).0;
        // The engine lists Docker Hub's repositories by their short names.
        let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
        repo.strip_prefix("library/").unwrap_or(repo).to_string()
    };
    let wanted = repository(name);
    let (mut own, others): (Vec<&String>, Vec<&String>) = listed
        .iter()
        .filter(well_formed)
        .partition(|r| repository(r) == wanted);
    own.extend(others);
    own.into_iter()
        .filter_map(|r| {
            let (_, digest) = r.split_once('@')?;
            Some((r.clone(), digest.to_string()))
        })
        .collect()
}

/// `repo:tag` → (repo, tag); a digest reference keeps its digest as the "tag".
fn split_reference(name: &str) -> (&str, &str) {
    if let Some((repo, digest)) = name.split_once('@') {
        return (repo, digest);
    }
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::{repo_digests, split_reference};

    #[test]
    fn repository_digests_of_the_source_come_first() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let listed = vec![format!("mirror.local/python@{a}"), format!("python@{b}")];
        let mirror = (format!("mirror.local/python@{a}"), a.clone());
        let hub = (format!("python@{b}"), b.clone());
        assert_eq!(
            repo_digests("python:3.12-alpine3.20", &listed),
            vec![hub.clone(), mirror.clone()]
        );
        assert_eq!(
            repo_digests("docker.io/library/python:3.12", &listed),
            vec![hub.clone(), mirror.clone()]
        );
        assert_eq!(
            repo_digests("mirror.local/python:3.12", &listed),
            vec![mirror.clone(), hub.clone()]
        );
        // Another repository's digest of the same image still names that content.
        assert_eq!(
            repo_digests("localhost:5000/py:3.12", &listed),
            vec![mirror, hub]
        );
        // No repository digest (a locally built image), or none that is well formed.
        assert!(repo_digests("dpy-testbed/python:3.12", &[]).is_empty());
        for bad in [
            "python@sha256:abc".to_string(),
            format!("@{a}"),
            format!("py thon@{a}"),
            format!("python@md5:{}", "a".repeat(64)),
            format!("python\n@{a}"),
        ] {
            assert!(
                repo_digests("python:3.12", std::slice::from_ref(&bad)).is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("python:3.12-alpine3.20"),
            ("python", "3.12-alpine3.20")
        );
        assert_eq!(
            split_reference("localhost:5000/py"),
            ("localhost:5000/py", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/py:3.12"),
            ("localhost:5000/py", "3.12")
        );
        assert_eq!(split_reference("py@sha256:ab"), ("py", "sha256:ab"));
    }
}
