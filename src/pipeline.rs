//! `dpy build`, the whole sequence, in order:
//!
//! 1. inputs: targets (names, patterns, `--all`), platforms, repository, metadata file,
//!    CA bundle, credentials, signing key, all checked before the engine is asked
//!    anything;
//! 2. engine: connected once; platforms checked runnable; the registry asked (`--push`);
//! 3. for each target (`--jobs` at a time), for every platform at once:
//!    target → recipe → render → sources and their inputs digest (`--if-changed` stops
//!    here when nothing moved) → gather (engine) → compile once → distill → images;
//! 4. tag: only once every platform of the target has built, so a failure tags nothing;
//! 5. metadata or publish: records of what was built, or pushed images and indexes,
//!    signed with `--sign-key`; then a table of every target's outcome.
//!
//! Each stage is its own module and takes the previous stage's value; this module only
//! sequences them and passes the values on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::bytecode;
use crate::catalog::Catalog;
use crate::context::BuildContext;
use crate::distill;
use crate::engine::pool::{self, Member, Pool};
use crate::engine::source::SourceImage;
use crate::engine::{Engine, Progress, ProgressMode};
use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::gather::{self, Gathered};
use crate::images::{self, Images};
use crate::inputs::Inputs;
use crate::layout::BuilderPip;
use crate::metadata;
use crate::platform::{self, Platform};
use crate::publish;
use crate::recipe::{CaBundle, Recipe};
use crate::render;
use crate::runtime::Variant;
use crate::summary;
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

/// A built pair of images of one platform, not yet tagged, and what the records say.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub images: Images,
    pub source: SourceImage,
    pub python_version: String,
    pub os_name: String,
    pub site_packages: String,
    /// Stdlib extension modules left out: they do not import in the source either.
    pub broken_modules: Vec<String>,
    /// Where the -buildroot image's pip comes from (`source 24.0`, `apt 23.0.1`), if any.
    pub builder_pip: Option<String>,
    /// The runtime image's SBOM (SPDX JSON), as it carries it.
    pub sbom: String,
    /// The debug image's SBOM: the runtime's packages and what the debug layer adds.
    pub debug_sbom: Option<String>,
    /// Debug sections removed from the source's ELF files.
    pub stripped: distill::strip::Stripped,
    /// The build's epoch (RFC 3339).
    pub epoch: String,
    pub seconds: f64,
}

/// The inputs, checked: what the build runs on.
struct Plan {
    catalog: Catalog,
    targets: Vec<Target>,
    requested: Option<Vec<Platform>>,
    ca_bundle: Option<CaBundle>,
    destination: Option<(publish::Destination, Option<publish::Credentials>)>,
    signer: Option<crate::sign::Signer>,
    /// How pushed layers are compressed.
    compression: publish::Compression,
    engines: Vec<pool::EngineSpec>,
    /// `--variants`, sorted, each once.
    variants: Vec<Variant>,
    /// How much a gather stage's export may hold (DPY_MAX_EXPORT_BYTES, _FILES).
    bounds: crate::unpack::Bounds,
    /// One warning for each retired target (crate::lifecycle), printed once.
    retired: Vec<String>,
}

/// Builds every target for every platform, then tags, and records or publishes.
pub async fn build(options: BuildOptions) -> Result<()> {
    // 1. Inputs.
    let plan = check(&options)?;
    for warning in &plan.retired {
        eprintln!("dpy: warning: {warning}");
    }

    // 2. The engines and the registry.
    let pool = Pool::connect(&plan.engines).await?;
    let platforms = plan
        .requested
        .clone()
        .unwrap_or_else(|| vec![pool.default_native().clone()]);
    for p in &platforms {
        for member in pool.all_for(p) {
            member.ensure_runnable(p)?;
        }
    }
    if let Some((destination, credentials)) = &plan.destination {
        publish::preflight(destination, credentials).await?;
    }

    // 3-5. The targets, `--jobs` at a time, each in its own task (the distill is CPU
    // work); each target's platforms side by side. A failed target stops only itself.
    let shared = Arc::new(Shared {
        options,
        plan,
        platforms,
        pool,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(shared.options.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let work = async {
        // A target starts when a turn is free, in the order given (so `--jobs 1` builds
        // and prints them in that order); its task holds the turn until it is done.
        for (position, target) in shared.plan.targets.iter().cloned().enumerate() {
            let turn = permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let shared = shared.clone();
            tasks.spawn(async move {
                let _turn = turn;
                let started = Instant::now();
                let result = build_target(&shared, &target, position).await;
                let summary = summary::Row::new(&target, &result, started.elapsed());
                if let (Err(e), true) = (&result, shared.plan.targets.len() > 1) {
                    eprintln!("dpy: error: {target}: {e}");
                }
                (position, summary, result)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            done.push(joined.map_err(|e| Error::Engine(format!("a build task failed: {e}")))?);
        }
        Ok::<_, Error>(done)
    };
    let done = tokio::select! {
        done = work => done,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    };
    // Interrupted (the tasks are dropped with the set) or failed between a build and its
    // tag: nothing stays held.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    for member in shared.pool.members() {
        member.engine.release_all().await;
    }
    let mut done = done?;
    done.sort_by_key(|(position, _, _)| *position);
    if done.len() > 1 {
        eprint!("{}", summary::table(done.iter().map(|(_, row, _)| row)));
    }
    // The first failure, in the order the targets were given, is the exit code.
    let many = done.len() > 1;
    done.into_iter()
        .find_map(|(_, row, result)| result.err().map(|e| (row, e)))
        .map_or(Ok(()), |(row, e)| {
            Err(if many { e.prefixed(&row.target) } else { e })
        })
}

/// What every target's task reads: the options, the checked inputs, the platforms.
struct Shared {
    options: BuildOptions,
    plan: Plan,
    platforms: Vec<Platform>,
    /// The engines, and which builds each platform (`--engine`).
    pool: Pool,
}

/// Every input that can be checked without the engine, in one place.
fn check(options: &BuildOptions) -> Result<Plan> {
    let catalog = Catalog::embedded()?;
    if options.include_retired && !options.all {
        return Err(Error::Usage(
            "--include-retired widens --all; named targets and patterns are built whether retired or not, so drop it or add --all".into(),
        ));
    }
    // Resolved again per target by Recipe::new; checked here so that a wrong name is
    // refused before the engine is asked.
    catalog.profile(&options.profile)?;
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
    let mut variants = options.variants.clone();
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
    })
}

/// One target, every platform: the stages in order.
async fn build_target(shared: &Shared, target: &Target, turn: usize) -> Result<summary::Done> {
    let Shared {
        options,
        plan,
        platforms,
        pool,
    } = shared;
    // Each platform's engine, and whether that engine runs the platform natively.
    let members: Vec<&Member> = platforms
        .iter()
        .map(|p| pool.for_platform(p, turn))
        .collect();
    let engine_of = |i: usize| &members[i].engine;
    let native_here = |i: usize| platforms[i] == members[i].native;
    let native_position = (0..platforms.len()).find(|&i| native_here(i));
    let emulated = (0..platforms.len()).any(|i| !native_here(i));
    let compile_once = options.compile_once && native_position.is_some() && emulated;
    let many = platforms.len() > 1;
    let name = |e: Error, p: &Platform| if many { e.prefixed(&p.to_string()) } else { e };

    // Recipe and render, per platform.
    let recipes = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let source = options.source_image.as_deref().map(|s| {
                s.replace("{arch}", &p.tag_suffix())
                    .replace("{target}", &target.to_string())
            });
            let mut recipe =
                Recipe::new(&plan.catalog, target, source.as_deref(), &options.profile)?;
            recipe.ca_bundle = plan.ca_bundle.clone();
            recipe.shell = options.shell;
            recipe.variants = plan.variants.clone();
            recipe.compile_stdlib = !compile_once || native_here(i);
            Ok(recipe)
        })
        .collect::<Result<Vec<_>>>()?;
    let progress = |p: &Platform| Progress::new(options.progress, format!("{target} {p}"));

    // What the images will be made of; with --if-changed, nothing more when that is
    // what the last build of this tag was made of.
    // Each platform's source, resolved once: the inputs digest and the gather take it.
    let mut sources = Vec::new();
    for (i, (p, recipe)) in platforms.iter().zip(&recipes).enumerate() {
        let source =
            crate::engine::source::resolve(engine_of(i), &recipe.source_image, &p.to_string())
                .await
                .map_err(|e| name(e, p))?;
        sources.push(source);
    }
    // Rendered once the sources are resolved: every FROM names the image that was
    // resolved, by digest, so a tag that moves in between cannot change what is built.
    let contexts = recipes
        .iter()
        .zip(&sources)
        .map(|(recipe, source)| render::render_context_from(recipe, source))
        .collect::<Result<Vec<_>>>()?;
    let inputs = Inputs::new(
        platforms
            .iter()
            .zip(&sources)
            .map(|(p, s)| (p.to_string(), s.digest.clone()))
            .collect(),
        &options.profile,
        options.shell,
        &plan.variants,
        compile_once,
        plan.signer.as_ref().map(|s| s.fingerprint.clone()),
    );
    let inputs_digest = inputs.digest();
    if options.if_changed {
        // The first image made stands for the target (the runtime image by default).
        let first = target.tag_of(plan.variants[0]);
        let previous = match &plan.destination {
            None => {
                // Several platforms in one local store: each tag carries its platform.
                let tag = match platforms.len() {
                    1 => first.clone(),
                    _ => format!("{first}-{}", platforms[0].tag_suffix()),
                };
                match crate::inputs::recorded(
                    &options.metadata_file,
                    &format!("{}:{tag}", options.repository),
                ) {
                    Some(p)
                        if engine_has(engine_of(0), &options.repository, &tag, &p.digest).await =>
                    {
                        Some(p)
                    }
                    _ => None,
                }
            }
            Some((destination, credentials)) => {
                publish::recorded_inputs(destination, &first, credentials).await?
            }
        };
        match previous {
            Some(previous) if previous.is(&inputs_digest, plan.compression) => {
                println!(
                    "{}:{} unchanged ({})",
                    options.repository, first, previous.digest
                );
                return Ok(summary::Done::Unchanged(previous.digest));
            }
            Some(previous) => progress(&platforms[0]).note(&format!(
                "rebuilding: {}",
                crate::inputs::what_moved(&previous, &inputs, plan.compression)
            )),
            None => {}
        }
    }

    // Gather, every platform at once.
    let gathers = platforms
        .iter()
        .zip(sources.iter().zip(&contexts))
        .enumerate()
        .map(|(i, (p, (source, context)))| async move {
            gather::gather(
                engine_of(i),
                source.clone(),
                context,
                &p.to_string(),
                plan.bounds,
                options.no_cache,
                progress(p),
            )
            .await
            .map_err(|e| name(e, p))
        });
    let mut gathered = Vec::new();
    for result in futures_util::future::join_all(gathers).await {
        gathered.push(result?);
    }

    // Compile once: emulated platforms take the native bytecode.
    if let Some(n) = native_position.filter(|_| compile_once) {
        for i in (0..platforms.len()).filter(|&i| !native_here(i)) {
            let (from, to) = pair(&mut gathered, n, i);
            let shared = compile_once_for(engine_of(n), options.no_cache, &platforms[n], from, to)
                .await
                .map_err(|e| name(e, &platforms[i]))?;
            if !shared {
                // Another interpreter (another magic number): gather again, compiling.
                let recipe = Recipe {
                    compile_stdlib: true,
                    ..recipes[i].clone()
                };
                let context = render::render_context_from(&recipe, &sources[i])?;
                gathered[i] = gather::gather(
                    engine_of(i),
                    sources[i].clone(),
                    &context,
                    &platforms[i].to_string(),
                    plan.bounds,
                    options.no_cache,
                    progress(&platforms[i]),
                )
                .await
                .map_err(|e| name(e, &platforms[i]))?;
            }
        }
    }

    // Distill and build the images, every platform at once.
    // Pushed images always carry the platform in their tag: the plain tag is the index.
    let suffixed = many || plan.destination.is_some();
    let finishing = platforms
        .iter()
        .zip(recipes.iter().zip(contexts))
        .zip(gathered)
        .enumerate()
        .map(|(i, ((p, (recipe, context)), g))| {
            let spec = images::ImageSpec {
                recipe,
                platform: p.to_string(),
                no_cache: options.no_cache,
                repository: &options.repository,
                tag_suffix: suffixed.then(|| p.tag_suffix()),
                inputs: inputs_digest.clone(),
                epoch: Epoch::of(g.source.created),
                source_layers: g.source.layers.clone(),
            };
            let engine = engine_of(i);
            async move {
                finish(engine, spec, context, g)
                    .await
                    .map_err(|e| name(e, p))
            }
        });
    let results = futures_util::future::join_all(finishing).await;
    if results.iter().any(Result::is_err) {
        for (i, result) in results.iter().enumerate() {
            if let Ok(outcome) = result {
                images::discard(engine_of(i), &outcome.images).await;
            }
        }
        return Err(results
            .into_iter()
            .find_map(Result::err)
            .expect("one failed"));
    }
    let outcomes: Vec<Outcome> = results.into_iter().flatten().collect();

    // A source with no repository digest was named by its tag in FROM: if the tag moved
    // while the build ran, the images were made from another image than the one the
    // labels and provenance name, so nothing is tagged.
    for (i, source) in sources.iter().enumerate() {
        if let Err(e) = crate::engine::source::still_resolves(engine_of(i), source).await {
            for (j, outcome) in outcomes.iter().enumerate() {
                images::discard(engine_of(j), &outcome.images).await;
            }
            return Err(name(e, &platforms[i]));
        }
    }

    // Tag, now that every platform has built.
    for (i, outcome) in outcomes.iter().enumerate() {
        images::tag(engine_of(i), &outcome.images).await?;
        println!("{} ({:.1}s)", outcome.images.references(), outcome.seconds);
    }

    // Metadata, or publish and then metadata; each runtime image's SBOM beside it.
    let mut records = match &plan.destination {
        None => local_records(&members, &outcomes, platforms).await,
        Some((destination, credentials)) => {
            publish_all(
                destination,
                credentials,
                plan.compression,
                &members,
                target,
                &outcomes,
                platforms,
            )
            .await?
        }
    };
    let platform_names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    // Signed first, every record; the files beside the metadata are written only once
    // all of it succeeded, so a failed signature leaves them as they were.
    let mut beside: Vec<(Option<&String>, String)> = Vec::new();
    for record in records.iter_mut() {
        let outcome = outcomes
            .iter()
            .find(|o| o.images.iter().any(|i| i.reference() == record.reference))
            .unwrap_or(&outcomes[0]);
        // A pushed index stands for every platform; its SBOM is the first platform's
        // (the same packages, their architectures apart).
        let sbom = match record.kind {
            Variant::Runtime => Some(&outcome.sbom),
            Variant::Debug => outcome.debug_sbom.as_ref(),
            Variant::Buildroot => None,
        };
        let mut subjects = vec![(record.reference.clone(), record.digest.clone())];
        subjects.extend(record.manifests.iter().map(|m| {
            (
                format!("{}@{}", record.reference, m.platform),
                m.digest.clone(),
            )
        }));
        let statement = crate::provenance::statement(
            &subjects,
            &crate::provenance::Inputs {
                target: &target.to_string(),
                source_image: &outcome.source.name,
                source_digest: &outcome.source.digest,
                profile: &options.profile,
                platforms: &platform_names,
                no_cache: options.no_cache,
                compile_once: options.compile_once,
                compression: plan.destination.as_ref().map(|_| plan.compression),
                epoch: &outcome.epoch,
            },
        );
        let statement =
            serde_json::to_string_pretty(&statement).expect("a statement serializes") + "\n";
        if let (Some(signer), Some((destination, credentials))) = (&plan.signer, &plan.destination)
        {
            sign_pushed(destination, credentials, signer, &subjects, &statement).await?;
            record.signed_with = Some(signer.fingerprint.clone());
        }
        record.inputs = Some(inputs_digest.clone());
        beside.push((sbom, statement));
    }
    for (record, (sbom, statement)) in records.iter_mut().zip(beside) {
        if let Some(sbom) = sbom {
            record.sbom = metadata::write_beside(
                &options.metadata_file,
                metadata::SBOM,
                &record.reference,
                sbom,
            )?;
        }
        record.provenance = metadata::write_beside(
            &options.metadata_file,
            metadata::PROVENANCE,
            &record.reference,
            &statement,
        )?;
    }
    metadata::append(&options.metadata_file, &records)?;
    // What the summary shows: the runtime image's digest (or local id).
    Ok(summary::Done::Built(
        records
            .iter()
            .find(|r| r.kind == Variant::Runtime)
            .or(records.first())
            .map(|r| r.digest.clone())
            .unwrap_or_default(),
    ))
}

/// Whether the engine still holds `repository:tag` as the image `id` (a recorded build
/// whose image was removed since is built again).
async fn engine_has(engine: &Engine, repository: &str, tag: &str, id: &str) -> bool {
    engine
        .docker()
        .inspect_image(&format!("{repository}:{tag}"))
        .await
        .ok()
        .and_then(|i| i.id)
        .is_some_and(|found| found == id)
}

/// Signs every pushed digest (the index and each platform's manifest) and attaches the
/// signed provenance statement to each, in cosign's format, beside them in the registry.
async fn sign_pushed(
    destination: &publish::Destination,
    credentials: &Option<publish::Credentials>,
    signer: &crate::sign::Signer,
    subjects: &[(String, String)],
    statement: &str,
) -> Result<()> {
    let attestation = signer.attestation(statement.as_bytes(), crate::provenance::PREDICATE_TYPE);
    for (name, digest) in subjects {
        let signature = signer.signature(&destination.repository, digest);
        publish::push_attachment(destination, digest, "sig", &signature, credentials).await?;
        publish::push_attachment(destination, digest, "att", &attestation, credentials).await?;
        eprintln!("signed {name} ({digest}) with {}", signer.fingerprint);
    }
    Ok(())
}

/// The native platform's gathered tree and another's, the second one mutable.
fn pair(gathered: &mut [Gathered], n: usize, i: usize) -> (&Gathered, &mut Gathered) {
    if n < i {
        let (low, high) = gathered.split_at_mut(i);
        (&low[n], &mut high[0])
    } else {
        let (low, high) = gathered.split_at_mut(n);
        (&high[0], &mut low[i])
    }
}

/// Shares the native bytecode with another platform's gathered tree; false when its
/// stdlib differs from the native one (another magic number) and it must compile its own.
async fn compile_once_for(
    engine: &Engine,
    no_cache: bool,
    native: &Platform,
    from: &Gathered,
    to: &mut Gathered,
) -> Result<bool> {
    let started = Instant::now();
    if !bytecode::compatible(from, to)? {
        to.progress
            .note("compile once: the stdlib differs from the native one; compiling here");
        return Ok(false);
    }
    let shared = bytecode::share(engine, from, &native.to_string(), to, no_cache).await?;
    to.progress.note(&format!(
        "compile once: {} stdlib modules reused from {native}, {} compiled there ({:.1}s); {native} compiled the whole stdlib in {:.1}s, which this platform skipped",
        shared.reused,
        shared.compiled_natively,
        bytecode::elapsed(started),
        shared.native_compile_seconds,
    ));
    Ok(true)
}

/// Distills one platform's gathered tree and builds its two images (untagged).
async fn finish(
    engine: &Engine,
    spec: images::ImageSpec<'_>,
    mut context: BuildContext,
    gathered: Gathered,
) -> Result<Outcome> {
    let recipe = spec.recipe;
    let Gathered {
        source,
        layout,
        bounds: _,
        export,
        work,
        warnings,
        progress,
        started,
    } = gathered;
    let t = Instant::now();
    // The layer's file times: SOURCE_DATE_EPOCH, else 0 (not the source's date: the
    // layer's bytes do not move when only the source's date does).
    let mtime = crate::epoch::source_date_epoch().map_or(0, |s| s.max(0) as u64);
    let distilled = distill::distill(&export, &layout, recipe, mtime, &spec.epoch.rfc3339())
        .map_err(|e| e.prefixed(&source.name))?;
    let file_name = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
    progress.note(&format!(
        "distilled: {} stdlib entries in {} ({:.1} MB), {} start-up files in {} ({:.1} MB), root {:.1} MB, {:.1}s",
        distilled.stats.zip_entries,
        file_name(&layout.python.stdlib_zip),
        distilled.stats.zip_bytes as f64 / 1e6,
        distilled.stats.startup_files,
        layout.python.stdlib,
        distilled.stats.startup_bytes as f64 / 1e6,
        distilled.root_tar.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    if !distilled.stripped.files.is_empty() {
        progress.note(&format!(
            "debug info: {:.1} MB of debug sections removed from {} ELF files{}",
            distilled.stripped.bytes as f64 / 1e6,
            distilled.stripped.files.len(),
            if distilled.debug.is_some() {
                " (the -debug image keeps them)"
            } else {
                ""
            }
        ));
    }
    if let (Some(_), Some(tools)) = (&distilled.debug, &layout.debug) {
        progress.note(&tools.describe());
    }
    let builder_pip = BuilderPip::load(&export)?.describe();
    drop(export);
    drop(work);
    // A cached gather step prints nothing: its warnings come from layout.json instead.
    for warning in &layout.warnings {
        if !warnings.contains(warning) {
            progress.warn(warning);
        }
    }
    if builder_pip.is_none() {
        progress.warn(
            "the -buildroot image has no pip: the source has none, and neither a package repository nor PyPI answered; chroot-pip says how to add one",
        );
    }

    context.add(
        render::RUNTIME_DOCKERFILE,
        0o644,
        render::render_runtime(recipe, &layout)?,
    );
    context.add(render::ROOT_TAR, 0o644, distilled.root_tar);
    let debug_sbom = distilled.debug.map(|debug| {
        context.add(render::DEBUG_TAR, 0o644, debug.tar);
        debug.sbom
    });
    let labels = images::labels(recipe, &source, &layout, &spec.epoch, &spec.inputs);
    let built = images::build(engine, &spec, &context, &layout, &labels, &progress).await?;
    Ok(Outcome {
        images: built,
        python_version: layout.python.version.clone(),
        os_name: layout.os_name(),
        site_packages: layout.python.purelib.clone(),
        broken_modules: layout.broken_modules(),
        builder_pip,
        sbom: distilled.sbom,
        debug_sbom,
        stripped: distilled.stripped.clone(),
        epoch: spec.epoch.rfc3339(),
        source,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The records of images kept in the local store: the image id and its size.
async fn local_records(
    members: &[&Member],
    outcomes: &[Outcome],
    platforms: &[Platform],
) -> Vec<metadata::Record> {
    let mut records = Vec::new();
    for ((outcome, platform), member) in outcomes.iter().zip(platforms).zip(members) {
        let engine = &member.engine;
        for image in outcome.images.iter() {
            let size = engine
                .docker()
                .inspect_image(&image.id)
                .await
                .ok()
                .and_then(|i| i.size)
                .unwrap_or(0);
            records.push(record_of(
                image.variant,
                outcome,
                (&image.repository, &image.tag),
                (image.id.clone(), size.max(0) as u64),
                vec![platform.to_string()],
            ));
        }
    }
    records
}

/// Pushes every platform's images, then an index per tag; returns their records.
async fn publish_all(
    destination: &publish::Destination,
    credentials: &Option<publish::Credentials>,
    compression: publish::Compression,
    members: &[&Member],
    target: &Target,
    outcomes: &[Outcome],
    platforms: &[Platform],
) -> Result<Vec<metadata::Record>> {
    let mut records = Vec::new();
    for image in outcomes[0].images.iter() {
        let kind = image.variant;
        let tag = target.tag_of(kind);
        let mut entries = Vec::new();
        for ((outcome, p), member) in outcomes.iter().zip(platforms).zip(members) {
            let image = outcome
                .images
                .get(kind)
                .expect("every platform makes every variant");
            // From the engine that built it; the index below joins them. The digest is
            // dpy's own, from the manifest's bytes: what the index lists and is signed.
            let manifest =
                publish::push(&member.engine, destination, image, credentials, compression).await?;
            eprintln!("pushed {} ({})", image.reference(), manifest.digest);
            entries.push((p.clone(), manifest));
        }
        let digest = publish::push_index(destination, &tag, &entries, credentials).await?;
        let reference = format!("{}:{tag}", destination.repository);
        println!("{reference}@{digest}");
        let mut record = record_of(
            kind,
            &outcomes[0],
            (&destination.repository, &tag),
            (digest, entries[0].1.compressed_size),
            platforms.iter().map(Platform::to_string).collect(),
        );
        record.compression = Some(compression);
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
    outcome: &Outcome,
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
            Variant::Buildroot => outcome.builder_pip.clone(),
            Variant::Runtime | Variant::Debug => None,
        },
        sbom: None,
        provenance: None,
        signed_with: None,
        inputs: None,
        manifests: Vec::new(),
        compression: None,
        debug_info_stripped: match kind {
            Variant::Runtime if !outcome.stripped.files.is_empty() => {
                Some(outcome.stripped.clone())
            }
            _ => None,
        },
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
