//! Engine: the Docker engine and its BuildKit, through bollard.
//!
//! `connect` honours DOCKER_HOST like the docker CLI. `build` runs one BuildKit session
//! build; `source` resolves the source image without pulling what is already local.

pub mod build;
pub mod export;
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
    /// Hold tags of built images not yet tagged or discarded (see [`Engine::hold`]).
    holds: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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
        Ok(Engine {
            docker,
            holds: Default::default(),
        })
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

    /// A reference that keeps a freshly built image alive until dpy tags or discards it.
    /// An untagged image is fair game for anyone's `docker image rm` or prune, and two
    /// builds of the same content share one image id: without a hold, another process
    /// removing its own tag of that id deletes the image between build and tag.
    pub fn hold(&self, session: &str, target: &str) -> String {
        let reference = format!("dpy-hold/{session}:{target}");
        self.holds.lock().expect("holds").push(reference.clone());
        reference
    }

    /// Drops a hold: the image stays if a tag names it, and is deleted otherwise.
    pub async fn release(&self, hold: &str) {
        self.holds.lock().expect("holds").retain(|h| h != hold);
        self.remove_quietly(hold).await;
    }

    /// Drops every hold still kept, e.g. when the user interrupts a build.
    pub async fn release_all(&self) {
        let holds: Vec<String> = std::mem::take(&mut *self.holds.lock().expect("holds"));
        for hold in holds {
            self.remove_quietly(&hold).await;
        }
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
