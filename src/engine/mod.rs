//! Engine: the Docker engine and its BuildKit, through bollard.
//!
//! `connect` honours DOCKER_HOST like the docker CLI. `build` runs one BuildKit session
//! build; `source` resolves the source image without pulling what is already local.

pub mod build;
pub mod progress;
pub mod run;
pub mod source;

use bollard::Docker;

use crate::error::{Error, Result};

pub use build::{build, BuildSpec, Built, Output};
pub use progress::{Progress, ProgressMode};

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What `docker version` would say, reduced to what dpy reports.
#[derive(Debug, Clone)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

impl Engine {
    /// Connects to $DOCKER_HOST or the default socket. Nothing is sent yet.
    pub fn connect() -> Result<Self> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| Error::engine("cannot set up a connection to the Docker engine", e))?;
        Ok(Engine { docker })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Asks the engine for its version; the first call that really reaches it.
    pub async fn version(&self) -> Result<EngineVersion> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| Error::engine("the Docker engine did not answer", e))?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        })
    }

    /// The engine's native platform, e.g. linux/amd64.
    pub async fn native_platform(&self) -> Result<String> {
        let v = self.version().await?;
        Ok(format!("{}/{}", v.os, v.arch))
    }

    /// Tags `image` (an id or reference) as `repository:tag`.
    pub async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<()> {
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|e| Error::engine(&format!("tagging {repository}:{tag}"), e))
    }

    /// Removes an image by id without touching other tags' images; errors are ignored
    /// because this only runs while cleaning up after another failure.
    pub async fn remove_quietly(&self, image: &str) {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(false)
            .noprune(false)
            .build();
        let _ = self.docker.remove_image(image, Some(options), None).await;
    }
}
