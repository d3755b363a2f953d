//! `dpy doctor`: is this machine ready to build? Each part is checked for real.
//!
//! Exit 0 when every needed part works; otherwise one line per missing part, each with
//! what to do about it.

use crate::catalog::Catalog;
use crate::context::BuildContext;
use crate::engine::{self, BuildSpec, Engine, Output, Progress, ProgressMode};
use crate::error::{Error, Result};
use crate::platform::{self, Platform};
use crate::recipe::Recipe;

/// What `dpy doctor` is asked to check beyond the engine itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A target whose source image must be in the local store.
    pub target: Option<String>,
    pub source_image: Option<String>,
    /// Comma-separated platforms that must be runnable; None: the engine's own.
    pub platform: Option<String>,
    /// `PLATFORM=ENDPOINT`: more engines, each checked as the default one is.
    pub engines: Vec<String>,
}

struct Report {
    problems: Vec<String>,
}

impl Report {
    fn ok(&self, part: &str, detail: &str) {
        println!("ok      {part}: {detail}");
    }

    fn fail(&mut self, part: &str, detail: &str) {
        println!("MISSING {part}: {detail}");
        self.problems.push(format!("{part}: {detail}"));
    }

    fn info(&self, part: &str, detail: &str) {
        println!("info    {part}: {detail}");
    }
}

fn engine_advice() -> String {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    format!(
        "no Docker engine answers at {host}; start one (`sudo systemctl start docker`, or `sudo dockerd &`; on a fresh Debian machine `sudo scripts/testbed` installs and starts it) or point DOCKER_HOST at a running engine"
    )
}

pub async fn run(args: Options) -> Result<()> {
    let mut report = Report {
        problems: Vec::new(),
    };
    let catalog = Catalog::embedded()?;
    let recipe = match &args.target {
        Some(text) => {
            let target = text.parse()?;
            catalog.check(&target)?;
            Some(Recipe::new(
                &catalog,
                &target,
                args.source_image.as_deref(),
                catalog.profile("standard")?,
            )?)
        }
        None => None,
    };
    let specs = args
        .engines
        .iter()
        .map(|e| crate::engine::pool::parse_spec(e))
        .collect::<Result<Vec<_>>>()?;
    let wanted = args
        .platform
        .as_deref()
        .map(platform::parse_list)
        .transpose()?;

    let connected = match Engine::connect() {
        Ok(engine) => engine.version().await.map(|v| (engine, v)),
        Err(e) => Err(e),
    };
    let (engine, version) = match connected {
        Ok(found) => found,
        Err(_) => {
            report.fail("engine", &engine_advice());
            return Err(Error::Doctor(format!(
                "{} part missing: the Docker engine",
                report.problems.len()
            )));
        }
    };
    report.ok("engine", &describe(&version));

    match buildkit_probe(&engine).await {
        Ok(()) => report.ok("buildkit", "a session build ran and exported its result"),
        Err(e) => report.fail(
            "buildkit",
            &format!("a tiny BuildKit session build failed ({e}); dpy needs Docker Engine 20.10 or newer with BuildKit enabled"),
        ),
    }

    let native = Platform::from_engine_arch(&version.arch);
    let needed = wanted.clone().unwrap_or_else(|| vec![native.clone()]);
    for candidate in ["linux/amd64", "linux/arm64"] {
        let p: Platform = candidate.parse()?;
        if !needed.contains(&p) {
            let how = if p.runnable_here(&native) {
                "runnable"
            } else {
                "not runnable (not requested)"
            };
            report.info(&format!("platform {p}"), how);
        }
    }
    for p in &needed {
        match p.ensure_runnable(&native) {
            Ok(()) => report.ok(
                &format!("platform {p}"),
                if *p == native {
                    "native"
                } else {
                    "emulated (binfmt)"
                },
            ),
            Err(e) => report.fail(&format!("platform {p}"), &e.to_string()),
        }
    }

    // Every engine --engine names: reachable, BuildKit, and its platform runnable there.
    for spec in &specs {
        let part = format!("engine {} for {}", spec.endpoint, spec.platform);
        let connected = match Engine::connect_to(&spec.endpoint) {
            Ok(engine) => crate::engine::pool::member(engine).await,
            Err(e) => Err(e),
        };
        let member = match connected {
            Ok((member, version)) => {
                report.ok(&part, &describe(&version));
                member
            }
            Err(e) => {
                report.fail(&part, &e.to_string());
                continue;
            }
        };
        match buildkit_probe(&member.engine).await {
            Ok(()) => report.ok(
                &format!("{part}: buildkit"),
                "a session build ran and exported its result",
            ),
            Err(e) => report.fail(
                &format!("{part}: buildkit"),
                &format!("a tiny BuildKit session build failed ({e})"),
            ),
        }
        match member.ensure_runnable(&spec.platform) {
            Ok(()) if spec.platform == member.native => {
                report.ok(&format!("{part}: platform"), "native")
            }
            Ok(()) if member.engine.is_local() => {
                report.ok(&format!("{part}: platform"), "emulated (binfmt)")
            }
            Ok(()) => report.info(
                &format!("{part}: platform"),
                &format!(
                    "emulated on a {} engine elsewhere: not checked from here",
                    member.native
                ),
            ),
            Err(e) => report.fail(&format!("{part}: platform"), &e.to_string()),
        }
    }

    if let Some(recipe) = &recipe {
        for p in &needed {
            let name = recipe.source_image.replace("{arch}", &p.tag_suffix());
            match engine.docker().inspect_image(&name).await {
                Ok(image) => report.ok(
                    &format!("source {name}"),
                    &format!(
                        "present locally ({}/{})",
                        image.os.as_deref().unwrap_or("?"),
                        image.architecture.as_deref().unwrap_or("?")
                    ),
                ),
                Err(_) => report.fail(
                    &format!("source {name}"),
                    "not in the local image store; `dpy build` will try to pull it: load it, or pass --source-image",
                ),
            }
        }
    }

    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Doctor(format!(
            "{} part(s) missing, see the MISSING lines above",
            report.problems.len()
        )))
    }
}

/// An engine as the report names it: `Docker 20.10.24 (API 1.41) on linux/amd64`.
fn describe(v: &engine::EngineVersion) -> String {
    format!(
        "Docker {} (API {}) on {}/{}",
        v.version, v.api_version, v.os, v.arch
    )
}

/// A real BuildKit session build that creates no image: a file exported as a tar.
async fn buildkit_probe(engine: &Engine) -> Result<()> {
    let mut context = BuildContext::new();
    context.add("Dockerfile", 0o644, "FROM scratch\nCOPY probe /probe\n");
    context.add("probe", 0o644, "dpy doctor\n");
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let out = dir.path().join("probe.tar");
    let native = engine.native_platform().await?;
    engine::build(
        engine,
        BuildSpec {
            context: &context,
            dockerfile: "Dockerfile",
            target: "",
            platform: &native,
            output: Output::Tar(out.clone()),
            no_cache: true,
            build_args: Default::default(),
            labels: Default::default(),
        },
        &Progress::new(ProgressMode::Quiet, "doctor"),
    )
    .await?;
    let data = std::fs::read(&out).map_err(|e| Error::io(&out, e))?;
    let mut archive = tar::Archive::new(data.as_slice());
    let found = archive
        .entries()
        .map_err(|e| Error::io(&out, e))?
        .flatten()
        .any(|e| e.path().map(|p| p.ends_with("probe")).unwrap_or(false));
    if found {
        Ok(())
    } else {
        Err(Error::Engine(
            "the exported tar lacks the probe file".into(),
        ))
    }
}
