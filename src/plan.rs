//! What `dpy build` will do, checked whole before the engine is asked anything.
//!
//! The options become a [`Plan`] in one place, every check there; nothing after it reads
//! the options. Once the engines are known, each target becomes a [`TargetPlan`]: one
//! [`PlatformPlan`] per platform (its engine, whether that engine runs it natively, its
//! recipe, its tag suffix) and whether the stdlib is compiled once for all of them.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::engine::pool::{self, Member, Pool};
use crate::engine::{Engine, Progress, ProgressMode};
use crate::error::{Error, Result};
use crate::metadata;
use crate::platform::{self, Platform};
use crate::publish;
use crate::recipe::{CaBundle, Recipe};
use crate::runtime::Variant;
use crate::target::Target;

/// What `dpy build` was asked, as given: checked by [`build`] before anything is built.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Targets or patterns over the matrix (crate::selection).
    pub targets: Vec<String>,
    /// Every target of the matrix still supported upstream.
    pub all: bool,
    /// With `all`, the retired targets too.
    pub include_retired: bool,
    /// Comma-separated platforms; None: the engine's own.
    pub platforms: Option<String>,
    pub repository: String,
    /// Instead of the flavor's `python:<target>`; `{arch}` stands for each platform's.
    pub source_image: Option<String>,
    pub progress: ProgressMode,
    pub metadata_file: PathBuf,
    pub no_cache: bool,
    pub profile: String,
    /// Compile the stdlib once on the native platform and share it with emulated ones.
    pub compile_once: bool,
    pub push: bool,
    pub registry_auth: Option<String>,
    /// With `registry_password_stdin`: the user whose password comes on standard input.
    pub registry_user: Option<String>,
    pub registry_password_stdin: bool,
    /// With `push`: how the layers are compressed; None: gzip.
    pub compression: Option<publish::Compression>,
    pub ca_bundle: Option<PathBuf>,
    /// With `push`: sign and attest what is pushed with this cosign-format key.
    pub sign_key: Option<PathBuf>,
    /// How many targets build at once.
    pub jobs: usize,
    /// Skip a target whose inputs equal those of the last build of its tag.
    pub if_changed: bool,
    /// The runtime image's /bin/sh.
    pub shell: crate::runtime::Shell,
    /// The images each target makes.
    pub variants: Vec<Variant>,
    /// `PLATFORM=ENDPOINT`: the engines that build those platforms (engine::pool).
    pub engines: Vec<String>,
}

/// The options, checked: what the build runs on.
pub struct Plan {
    pub catalog: Catalog,
    pub targets: Vec<Target>,
    /// `--platform`; None: the engine's own.
    pub requested: Option<Vec<Platform>>,
    pub ca_bundle: Option<CaBundle>,
    pub destination: Option<(publish::Destination, Option<publish::Credentials>)>,
    pub signer: Option<crate::sign::Signer>,
    /// How pushed layers are compressed.
    pub compression: publish::Compression,
    pub engines: Vec<pool::EngineSpec>,
    /// `--variants`, sorted, each once.
    pub variants: Vec<Variant>,
    /// How much a gather stage's export may hold (DPY_MAX_EXPORT_BYTES, _FILES).
    pub bounds: crate::unpack::Bounds,
    /// One warning for each retired target (crate::lifecycle), printed once.
    pub retired: Vec<String>,
    pub repository: String,
    /// Instead of the flavor's `python:<target>`: `{arch}` and `{target}` stand for each
    /// platform's architecture and each target.
    pub source_image: Option<String>,
    pub progress: ProgressMode,
    pub metadata_file: PathBuf,
    pub no_cache: bool,
    /// The profile, resolved against the catalog.
    pub profile: crate::catalog::Profile,
    /// Asked for: compile the stdlib once on the native platform for emulated ones.
    pub compile_once: bool,
    /// How many targets build at once, at least one.
    pub jobs: usize,
    pub if_changed: bool,
    pub shell: crate::runtime::Shell,
}

impl Plan {
    /// `target` on `platforms`, each with the engine of `pool` that builds it at `turn`.
    pub fn for_target<'a>(
        &'a self,
        target: &Target,
        platforms: &[Platform],
        pool: &'a Pool,
        turn: usize,
    ) -> Result<TargetPlan<'a>> {
        let members: Vec<&Member> = platforms
            .iter()
            .map(|p| pool.for_platform(p, turn))
            .collect();
        let native = |i: usize| platforms[i] == members[i].native;
        // Only where one platform is native and another emulated is there a compile to
        // save, and a native one to share it.
        let compile_once = self.compile_once
            && (0..platforms.len()).any(native)
            && (0..platforms.len()).any(|i| !native(i));
        // Pushed images always carry the platform in their tag (the plain tag is the
        // index); so do several platforms' images in one local store.
        let suffixed = platforms.len() > 1 || self.destination.is_some();
        let mut planned = Vec::new();
        for (i, platform) in platforms.iter().enumerate() {
            let source = self.source_image.as_deref().map(|s| {
                s.replace("{arch}", &platform.tag_suffix())
                    .replace("{target}", &target.to_string())
            });
            let mut recipe = Recipe::new(&self.catalog, target, source.as_deref(), &self.profile)?;
            recipe.ca_bundle = self.ca_bundle.clone();
            recipe.shell = self.shell;
            recipe.variants = self.variants.clone();
            recipe.compile_stdlib = !compile_once || native(i);
            planned.push(PlatformPlan {
                platform: platform.clone(),
                member: members[i],
                native: native(i),
                recipe,
                tag_suffix: suffixed.then(|| platform.tag_suffix()),
            });
        }
        Ok(TargetPlan {
            target: target.clone(),
            platforms: planned,
            compile_once,
        })
    }
}

/// One target on every platform it builds for.
pub struct TargetPlan<'a> {
    pub target: Target,
    pub platforms: Vec<PlatformPlan<'a>>,
    /// The stdlib is compiled on the native platform only, and shared with the others.
    pub compile_once: bool,
}

/// One platform of a target.
pub struct PlatformPlan<'a> {
    pub platform: Platform,
    /// The engine that builds it, and that engine's own platform.
    pub member: &'a Member,
    /// Whether that engine runs the platform natively (not under emulation).
    pub native: bool,
    pub recipe: Recipe,
    /// Added to every tag (`-amd64`): see [`Plan::for_target`].
    pub tag_suffix: Option<String>,
}

impl PlatformPlan<'_> {
    pub fn engine(&self) -> &Engine {
        &self.member.engine
    }
}

impl TargetPlan<'_> {
    /// The native platform's position, if one is native.
    pub fn native(&self) -> Option<usize> {
        self.platforms.iter().position(|p| p.native)
    }

    /// `e`, named after the platform at `i` when there are several.
    pub fn on(&self, i: usize, e: Error) -> Error {
        if self.platforms.len() > 1 {
            e.prefixed(&self.platforms[i].platform.to_string())
        } else {
            e
        }
    }

    /// The progress display of the platform at `i`.
    pub fn progress(&self, mode: ProgressMode, i: usize) -> Progress {
        Progress::new(
            mode,
            format!("{} {}", self.target, self.platforms[i].platform),
        )
    }

    pub fn platform_names(&self) -> Vec<String> {
        self.platforms
            .iter()
            .map(|p| p.platform.to_string())
            .collect()
    }
}

/// The options, checked whole: every input that can be checked without the engine, in
/// one place.
pub fn check(options: BuildOptions) -> Result<Plan> {
    let catalog = Catalog::embedded()?;
    if options.include_retired && !options.all {
        return Err(Error::Usage(
            "--include-retired widens --all; named targets and patterns are built whether retired or not, so drop it or add --all".into(),
        ));
    }
    // Resolved here, so that a wrong name is refused before the engine is asked.
    let profile = catalog.profile(&options.profile)?.clone();
    let today = crate::lifecycle::Month::now()?;
    let every = options.all.then_some(crate::selection::Every {
        today,
        include_retired: options.include_retired,
    });
    let targets = crate::selection::select(&catalog, &options.targets, every)?;
    let requested = options
        .platforms
        .as_deref()
        .map(platform::parse_list)
        .transpose()?;
    crate::repository::check(&options.repository)?;
    metadata::check_writable(&options.metadata_file)?;
    let ca_bundle = options
        .ca_bundle
        .as_deref()
        .map(CaBundle::load)
        .transpose()?;
    let auth = match (
        &options.registry_auth,
        &options.registry_user,
        options.registry_password_stdin,
    ) {
        (Some(_), _, true) => {
            return Err(Error::Usage(
                "--registry-auth and --registry-password-stdin both give a password; use one".into(),
            ))
        }
        (_, None, true) => {
            return Err(Error::Usage(
                "--registry-password-stdin needs --registry-user USER".into(),
            ))
        }
        (_, Some(_), false) => {
            return Err(Error::Usage(
                "--registry-user goes with --registry-password-stdin (or give --registry-auth USER:PASSWORD)".into(),
            ))
        }
        (_, Some(user), true) => Some(format!("{user}:{}", publish::password_from_stdin()?)),
        (auth, None, false) => auth.clone(),
    };
    let destination = if options.push {
        let destination = publish::Destination::parse(&options.repository)?;
        let credentials = publish::credentials(&destination, auth.as_deref())?;
        Some((destination, credentials))
    } else {
        if let Some(auth) = &auth {
            publish::check_credentials_form(auth)?;
        }
        None
    };
    // Opened now, so a missing key or a wrong passphrase fails before anything is built.
    let signer = match (&options.sign_key, options.push) {
        (Some(_), false) => {
            return Err(Error::Usage(
                "--sign-key signs what is pushed; add --push (and a registry repository)".into(),
            ))
        }
        (Some(path), true) => Some(crate::sign::Signer::open(path)?),
        (None, _) => None,
    };
    let compression = match (options.compression, options.push) {
        (Some(c), false) => {
            return Err(Error::Usage(format!(
                "--compression {c} sets how pushed layers are compressed; add --push (and a registry repository)"
            )))
        }
        (c, _) => c.unwrap_or(publish::Compression::Gzip),
    };
    let engines = options
        .engines
        .iter()
        .map(|e| pool::parse_spec(e))
        .collect::<Result<Vec<_>>>()?;
    // The export's bounds come from the environment: a bad value is refused here.
    let bounds = crate::unpack::Bounds::from_env()?;
    if let Some((destination, Some(_))) = &destination {
        if let Some(endpoint) = pool::cleartext(&engines).first() {
            return Err(Error::Usage(format!(
                "--push to {} would hand the registry credentials to the engine at {endpoint} over plain TCP; reach it with TLS (DOCKER_CERT_PATH), ssh:// or a unix socket",
                destination.registry
            )));
        }
    }
    let mut variants = options.variants;
    variants.sort();
    variants.dedup();
    if variants.is_empty() {
        return Err(Error::Usage(
            "--variants names no image; give some of runtime,buildroot,debug".into(),
        ));
    }
    let retired = targets
        .iter()
        .filter_map(|t| catalog.support(t, today).warning(t))
        .collect();
    Ok(Plan {
        bounds,
        retired,
        variants,
        catalog,
        targets,
        requested,
        ca_bundle,
        destination,
        signer,
        compression,
        engines,
        repository: options.repository,
        source_image: options.source_image,
        progress: options.progress,
        metadata_file: options.metadata_file,
        no_cache: options.no_cache,
        profile,
        compile_once: options.compile_once,
        jobs: options.jobs.max(1),
        if_changed: options.if_changed,
        shell: options.shell,
    })
}
