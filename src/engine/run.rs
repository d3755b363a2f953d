//! Short-lived containers for checks (`dpy test`, `dpy doctor`), always removed.

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::Engine;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub image: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    pub env: HashMap<String, String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Removes the container when dropped, so an early return or Ctrl-C leaves none behind.
struct Removal {
    engine: Engine,
    id: String,
}

impl Drop for Removal {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let id = std::mem::take(&mut self.id);
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        let cleanup = async move {
            let _ = engine.docker().remove_container(&id, Some(options)).await;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            // Wait for the removal: the process may exit right after this drop.
            let _ = std::thread::spawn(move || handle.block_on(cleanup)).join();
        }
    }
}

/// Runs a container to completion and returns its exit code and output.
pub async fn run(engine: &Engine, spec: RunSpec) -> Result<RunResult> {
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: Some(spec.cmd.clone()),
        env: Some(env),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        network_disabled: Some(true),
        ..Default::default()
    };
    let mut options = CreateContainerOptionsBuilder::default();
    if let Some(platform) = &spec.platform {
        options = options.platform(platform);
    }
    let created = engine
        .docker()
        .create_container(Some(options.build()), body)
        .await
        .map_err(|e| Error::engine(&format!("creating a container of {}", spec.image), e))?;
    let guard = Removal {
        engine: engine.clone(),
        id: created.id.clone(),
    };
    engine
        .docker()
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| Error::engine(&format!("starting a container of {}", spec.image), e))?;
    let mut wait = engine.docker().wait_container(
        &created.id,
        Some(
            WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build(),
        ),
    );
    let mut exit_code = 0;
    while let Some(item) = wait.next().await {
        match item {
            Ok(response) => exit_code = response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => exit_code = code,
            Err(e) => return Err(Error::engine("waiting for a container", e)),
        }
    }
    let mut logs = engine.docker().logs(
        &created.id,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let (mut stdout, mut stderr) = (String::new(), String::new());
    while let Some(item) = logs.next().await {
        match item {
            Ok(bollard::container::LogOutput::StdOut { message }) => {
                stdout.push_str(&String::from_utf8_lossy(&message))
            }
            Ok(bollard::container::LogOutput::StdErr { message }) => {
                stderr.push_str(&String::from_utf8_lossy(&message))
            }
            Ok(_) => {}
            Err(e) => return Err(Error::engine("reading a container's output", e)),
        }
    }
    drop(guard);
    Ok(RunResult {
        exit_code,
        stdout,
        stderr,
    })
}

/// The contents of the file `path` in `image`, read through a container that never
/// starts (so an image without a shell or `cat` works) and is always removed.
pub async fn read_file(engine: &Engine, image: &str, path: &str) -> Result<Vec<u8>> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        network_disabled: Some(true),
        ..Default::default()
    };
    let created = engine
        .docker()
        .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
        .await
        .map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => Error::Usage(format!(
                "image {image} is not in the local image store; build it with `dpy build` or pull it first"
            )),
            e => Error::engine(&format!("creating a container of {image}"), e),
        })?;
    let _guard = Removal {
        engine: engine.clone(),
        id: created.id.clone(),
    };
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = engine
        .docker()
        .download_from_container(&created.id, Some(options));
    let mut archive = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => archive.extend_from_slice(&bytes),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(Error::Usage(format!(
                    "{image} has no {path}: it was not built by a dpy that writes one"
                )))
            }
            Err(e) => return Err(Error::engine(&format!("reading {path} from {image}"), e)),
        }
    }
    // The archive is in memory: a failure to read it is the engine's answer, malformed.
    let malformed = |e: std::io::Error| {
        Error::Engine(format!(
            "reading {path} from {image}: the engine's archive: {e}"
        ))
    };
    let mut entries = tar::Archive::new(archive.as_slice());
    for entry in entries.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).map_err(malformed)?;
            return Ok(data);
        }
    }
    Err(Error::Usage(format!("{image} has no file at {path}")))
}
