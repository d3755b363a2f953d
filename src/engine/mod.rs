//! Engine: the Docker engine and its BuildKit, through bollard.
//!
//! `connect` honours DOCKER_HOST like the docker CLI. `build` runs one BuildKit session
//! build; `source` resolves the source image without pulling what is already local.

pub mod build;
pub mod config;
pub mod export;
pub mod pool;
pub mod progress;
pub mod run;
pub mod save;
pub mod source;

use bollard::Docker;

use crate::error::{Error, Result};

pub use build::{build, BuildSpec, Built, Output};
pub use progress::{Progress, ProgressMode};

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Where it answers, as given (`unix:///…`, `tcp://…`, `ssh://…`); None: the
    /// default (DOCKER_HOST or the local socket).
    endpoint: Option<String>,
    /// Hold tags of built images not yet tagged or discarded (see [`Engine::hold`]).
    holds: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Holds whose BuildKit build had begun exporting its image into the engine and has
    /// not returned: dropped there (Ctrl-C), the engine may still finish the export and
    /// tag the image after dpy released the hold.
    exporting: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// An engine named by `--engine` failed: the advice is about that endpoint, not
/// DOCKER_HOST.
fn given_engine_error(context: &str, endpoint: &str, e: impl std::fmt::Display) -> Error {
    Error::Engine(format!(
        "{context}: {e} (does it run and answer there? `dpy doctor --engine PLATFORM={endpoint}` checks it)"
    ))
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
            endpoint: None,
            holds: Default::default(),
            exporting: Default::default(),
        })
    }

    /// Connects to `endpoint` (`unix:///path`, `tcp://host:port`, `ssh://user@host`).
    /// A tcp endpoint uses TLS when DOCKER_CERT_PATH names a directory with ca.pem,
    /// cert.pem and key.pem, as the docker CLI does. Nothing is sent yet.
    pub fn connect_to(endpoint: &str) -> Result<Self> {
        const TIMEOUT: u64 = 120;
        let failed = |e: bollard::errors::Error| {
            given_engine_error(
                &format!("cannot set up a connection to the engine at {endpoint}"),
                endpoint,
                e,
            )
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match endpoint.split_once("://") {
            Some(("unix", _)) => Docker::connect_with_unix(endpoint, TIMEOUT, version),
            Some(("ssh", _)) => Docker::connect_with_ssh(endpoint, TIMEOUT, version, None),
            Some(("tcp", address)) => match std::env::var_os("DOCKER_CERT_PATH") {
                Some(dir) => {
                    let dir = std::path::PathBuf::from(dir);
                    Docker::connect_with_ssl(
                        &format!("https://{address}"),
                        &dir.join("key.pem"),
                        &dir.join("cert.pem"),
                        &dir.join("ca.pem"),
                        TIMEOUT,
                        version,
                    )
                }
                None => Docker::connect_with_http(endpoint, TIMEOUT, version),
            },
            _ => {
                return Err(Error::Usage(format!(
                    "the engine endpoint {endpoint:?} is not unix:///path, tcp://host:port or ssh://user@host"
                )))
            }
        }
        .map_err(failed)?;
        Ok(Engine {
            docker,
            endpoint: Some(endpoint.to_string()),
            holds: Default::default(),
            exporting: Default::default(),
        })
    }

    /// Where this engine answers, for messages.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| {
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
        })
    }

    /// Whether the engine runs on this machine (a unix socket, or tcp on loopback): its
    /// emulation is this machine's binfmt handlers.
    pub fn is_local(&self) -> bool {
        let endpoint = self.endpoint();
        endpoint.starts_with("unix://")
            || ["tcp://127.", "tcp://localhost:", "tcp://[::1]:"]
                .iter()
                .any(|loopback| endpoint.starts_with(loopback))
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
            .map_err(|e| match &self.endpoint {
                None => Error::engine("the Docker engine did not answer", e),
                Some(at) => {
                    given_engine_error(&format!("the Docker engine at {at} did not answer"), at, e)
                }
            })?;
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

    /// Puts the hold reference `hold` (see [`Engine::hold`]) on `image`, one the engine
    /// has already: a rebuild's image, found by its id.
    pub async fn hold_existing(&self, image: &str, hold: &str) -> Result<()> {
        let (repository, tag) = hold.rsplit_once(':').unwrap_or((hold, "latest"));
        self.tag(image, repository, tag).await
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

    /// The build holding `hold` began exporting its image (`true`), or returned (`false`).
    pub fn exporting(&self, hold: &str, exporting: bool) {
        let mut set = self.exporting.lock().expect("exporting");
        if exporting {
            set.insert(hold.to_string());
        } else {
            set.remove(hold);
        }
    }

    /// Drops every hold still kept, e.g. when the user interrupts a build. A build that
    /// was exporting its image when it was dropped still ends in the engine: its image is
    /// waited for (a few seconds at most: the layers are made by then) and removed too.
    pub async fn release_all(&self) {
        let holds: Vec<String> = std::mem::take(&mut *self.holds.lock().expect("holds"));
        let exporting: std::collections::HashSet<String> =
            std::mem::take(&mut *self.exporting.lock().expect("exporting"));
        for hold in holds {
            self.remove_quietly(&hold).await;
            if exporting.contains(&hold) {
                for _ in 0..50 {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    if self.docker.inspect_image(&hold).await.is_ok() {
                        self.remove_quietly(&hold).await;
                        break;
                    }
                }
            }
        }
    }

    /// Removes the image `id` once no tag names it. Two builds of the same inputs make the
    /// same image, each under its own hold tag: removing it by id while the other still
    /// holds it would delete it under that build (seen in CI: "failed to get digest").
    pub async fn remove_if_untagged(&self, id: &str) {
        if let Ok(image) = self.docker.inspect_image(id).await {
            if image.repo_tags.as_ref().is_none_or(|tags| tags.is_empty()) {
                self.remove_quietly(id).await;
            }
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
