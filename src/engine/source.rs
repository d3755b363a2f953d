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
    /// The registry digest (`name@sha256:...`) when known, else the local image id.
    pub digest: String,
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
    let digest = inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_string()))
        .unwrap_or_else(|| id.clone());
    Ok(SourceImage {
        name: name.to_string(),
        digest,
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
    use super::split_reference;

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
