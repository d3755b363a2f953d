//! `dpy build`, the whole sequence, in order:
//!
//! 1. plan: every option checked before the engine is asked anything (crate::plan);
//! 2. engine: connected once; platforms checked runnable; the registry asked (`--push`);
//! 3. for each target (`--jobs` at a time), a [`TargetPlan`] (a recipe and an engine per
//!    platform), then for every platform at once: sources resolved → contexts rendered
//!    → inputs digest (`--if-changed` stops here when nothing moved, crate::if_changed)
//!    → gather (engine; the -buildroot's builder built and pinned beside it,
//!    crate::builder) → compile once → finish: distill, and the images assembled from
//!    the layers dpy wrote (crate::finish);
//! 4. tag: only once every platform of the target has built, so a failure tags nothing;
//! 5. records: metadata, or pushed images and indexes, signed (crate::records); then a
//!    table of every target's outcome. Each stage's time is kept (crate::stages): in the
//!    records, and on one line with `--progress plain`.
//!
//! [`build_target`] reads as that list: each stage a function of the plan and the
//! previous stage's value. The stages are their own modules; this one sequences them.

use std::sync::Arc;
use std::time::Instant;

use crate::builder;
use crate::bytecode;
use crate::context::BuildContext;
use crate::engine::pool::Pool;
use crate::engine::source::SourceImage;
use crate::error::{Error, Result};
use crate::finish::Outcome;
use crate::gather::{self, Gathered};
use crate::images;
use crate::inputs::Inputs;
use crate::plan::{Plan, TargetPlan};
use crate::platform::Platform;
use crate::publish;
use crate::recipe::Recipe;
use crate::render;
use crate::runtime::Variant;
use crate::stages::{Stage, StageTimes};
use crate::summary;

pub use crate::plan::BuildOptions;

/// Builds every target for every platform, then tags, and records or publishes.
pub async fn build(options: BuildOptions) -> Result<()> {
    // 1. Inputs.
    let plan = crate::plan::check(options)?;
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
        plan,
        platforms,
        pool,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(shared.plan.jobs));
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
                let result = async {
                    let planned = shared.plan.for_target(
                        &target,
                        &shared.platforms,
                        &shared.pool,
                        position,
                    )?;
                    build_target(&shared.plan, &planned).await
                }
                .await;
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

/// What every target's task reads: the checked plan, the platforms, the engines.
struct Shared {
    plan: Plan,
    platforms: Vec<Platform>,
    /// The engines, and which builds each platform (`--engine`).
    pool: Pool,
}

/// One target, every platform: the stages in order.
async fn build_target(plan: &Plan, target: &TargetPlan<'_>) -> Result<summary::Done> {
    let mut times = StageTimes::new();
    let sources = times.time(Stage::Resolve, resolve_sources(target)).await?;
    let contexts = render_contexts(target, &sources)?;
    let inputs = inputs_of(plan, target, &sources);
    let digest = inputs.digest();
    if let Some(done) = crate::if_changed::unchanged(plan, target, &inputs, &digest).await? {
        return Ok(done);
    }
    let outcomes = build_platforms(plan, target, &sources, contexts, &digest).await?;
    for outcome in &outcomes {
        times.beside(&outcome.stages);
    }
    // Every stage on the line, in records as on screen: one that did not run (compile
    // once on one platform, the pin of a builder the source did not need) took 0 s.
    for stage in [Stage::Compile, Stage::Pin] {
        times.add(stage, std::time::Duration::ZERO);
    }
    times
        .time(Stage::Tag, tag_all(target, &sources, &outcomes))
        .await?;
    crate::records::record(plan, target, &outcomes, &digest, times).await
}

/// Each platform's source, resolved once: the inputs digest and the gather take it.
async fn resolve_sources(target: &TargetPlan<'_>) -> Result<Vec<SourceImage>> {
    let mut sources = Vec::new();
    for (i, p) in target.platforms.iter().enumerate() {
        let name = &p.recipe.source_image;
        let source = crate::engine::source::resolve(p.engine(), name, &p.platform.to_string())
            .await
            .map_err(|e| target.on(i, e))?;
        sources.push(source);
    }
    Ok(sources)
}

/// Rendered once the sources are resolved: every FROM names the image that was resolved,
/// by digest, so a tag that moves in between cannot change what is built.
fn render_contexts(target: &TargetPlan<'_>, sources: &[SourceImage]) -> Result<Vec<BuildContext>> {
    target
        .platforms
        .iter()
        .zip(sources)
        .map(|(p, source)| render::render_context_from(&p.recipe, source))
        .collect()
}

/// What the images will be made of (crate::inputs).
fn inputs_of(plan: &Plan, target: &TargetPlan<'_>, sources: &[SourceImage]) -> Inputs {
    Inputs::new(
        target
            .platforms
            .iter()
            .zip(sources)
            .map(|(p, s)| (p.platform.to_string(), s.digest.clone()))
            .collect(),
        &plan.profile.name,
        plan.shell,
        &plan.variants,
        target.compile_once,
        plan.signer.as_ref().map(|s| s.fingerprint.clone()),
    )
}

/// Gathers one platform: the gather stage in its engine, the export unpacked, and the
/// -buildroot image's base (crate::builder) when that image is asked for.
async fn gather_one(
    plan: &Plan,
    target: &TargetPlan<'_>,
    i: usize,
    source: &SourceImage,
    context: &BuildContext,
) -> Result<Gathered> {
    let p = &target.platforms[i];
    let platform = p.platform.to_string();
    let gather = gather::gather(
        p.engine(),
        source.clone(),
        context,
        &platform,
        plan.bounds,
        plan.no_cache,
        target.progress(plan.progress, i),
    );
    if !p.recipe.makes(Variant::Buildroot) {
        return gather.await.map_err(|e| target.on(i, e));
    }
    let progress = target.progress(plan.progress, i);
    if !p.native {
        // Under qemu, builder-pip.sh's interpreter start takes a CPU-second that the
        // native platform's build needs meanwhile: the gather asked the same question in
        // its own process (layout.json's pip), and builder-pip.sh runs only for a
        // source without a pip of its own.
        let gathered = gather.await.map_err(|e| target.on(i, e))?;
        let pip = gathered.layout.pip.clone();
        let builder = builder::after_gather(
            p.engine(),
            context,
            &platform,
            source,
            pip,
            plan.no_cache,
            &progress,
        )
        .await
        .map_err(|e| target.on(i, e))?;
        return Ok(Gathered {
            builder: Some(builder),
            ..gathered
        });
    }
    // Natively the -buildroot image's base needs nothing the gather finds: it builds beside it.
    let builder = builder::build(
        p.engine(),
        context,
        &platform,
        source,
        plan.no_cache,
        &progress,
    );
    match futures_util::future::join(gather, builder).await {
        (Ok(gathered), Ok(builder)) => Ok(Gathered {
            builder: Some(builder),
            ..gathered
        }),
        (Ok(_), Err(e)) => Err(target.on(i, e)),
        (Err(e), builder) => {
            if let Ok(builder) = builder {
                builder.release(p.engine()).await;
            }
            Err(target.on(i, e))
        }
    }
}

/// Every platform side by side, each on its own: gather → compile once → finish (its
/// images, untagged). An emulated platform takes the native bytecode as soon as the
/// native gather has it; the native platform goes on to its distill meanwhile, so the
/// slow emulated gather is the only long pole. Settled once all are done: if one failed,
/// the others' images go (crate::finish::settle).
async fn build_platforms(
    plan: &Plan,
    target: &TargetPlan<'_>,
    sources: &[SourceImage],
    contexts: Vec<BuildContext>,
    inputs: &str,
) -> Result<Vec<Outcome>> {
    let native = target.native().filter(|_| target.compile_once);
    // The native bytecode, sent once its gather is done; dropped unsent if it fails.
    let (give, take) = tokio::sync::watch::channel(None);
    let mut give = Some(give);
    let platforms = contexts.into_iter().enumerate().map(|(i, context)| {
        let link = match native {
            Some(n) if n == i => Link::Give(give.take().expect("one native platform")),
            Some(_) if !target.platforms[i].native => Link::Take(take.clone()),
            _ => Link::None,
        };
        build_platform(plan, target, i, &sources[i], context, inputs, link)
    });
    let results = futures_util::future::join_all(platforms).await;
    crate::finish::settle(target, results, native).await
}

/// How a platform takes part in compile once.
enum Link {
    /// The native platform: sends its bytecode on.
    Give(tokio::sync::watch::Sender<Option<Arc<bytecode::Native>>>),
    /// An emulated platform: waits for it.
    Take(tokio::sync::watch::Receiver<Option<Arc<bytecode::Native>>>),
    None,
}

/// One platform, start to end: gathered, its bytecode shared (`link`), finished.
async fn build_platform(
    plan: &Plan,
    target: &TargetPlan<'_>,
    i: usize,
    source: &SourceImage,
    context: BuildContext,
    inputs: &str,
    link: Link,
) -> Result<Outcome> {
    let mut times = StageTimes::new();
    let mut gathered = times
        .time(Stage::Gather, gather_one(plan, target, i, source, &context))
        .await?;
    match link {
        Link::Give(give) => {
            let platform = target.platforms[i].platform.to_string();
            let (back, native) = crate::offload::run(move || {
                let native = bytecode::Native::of(&gathered, &platform);
                Ok((gathered, native))
            })
            .await?;
            gathered = back;
            let native = native.map_err(|e| target.on(i, e))?;
            // No receiver left (every emulated platform failed) is no failure here.
            let _ = give.send(Some(Arc::new(native)));
        }
        Link::Take(mut take) => {
            let native = match take.wait_for(Option::is_some).await {
                Ok(native) => native.clone().expect("waited for"),
                // The native platform failed: its own error is the one reported.
                Err(_) => {
                    return Err(target.on(
                        i,
                        Error::Engine("the native platform's build failed first".into()),
                    ))
                }
            };
            gathered = times
                .time(
                    Stage::Compile,
                    compile_once(plan, target, i, source, gathered, native),
                )
                .await?;
        }
        Link::None => {}
    }
    let mut outcome =
        crate::finish::finish_platform(plan, target, i, context, gathered, inputs).await?;
    outcome.stages.beside(&times);
    Ok(outcome)
}

/// Compile once for the emulated platform at `i`: it takes the native bytecode; one
/// whose stdlib differs (another magic number, a module not the same as the native one's)
/// is gathered again, compiling its own.
async fn compile_once(
    plan: &Plan,
    target: &TargetPlan<'_>,
    i: usize,
    source: &SourceImage,
    mut gathered: Gathered,
    native: Arc<bytecode::Native>,
) -> Result<Gathered> {
    let p = &target.platforms[i];
    let started = Instant::now();
    let from = native.platform().to_string();
    let (gathered, shared) = crate::offload::run(move || {
        let shared = bytecode::share(&native, &mut gathered);
        Ok((gathered, shared))
    })
    .await?;
    let Some(shared) = shared.map_err(|e| target.on(i, e))? else {
        gathered
            .progress
            .note("compile once: the stdlib differs from the native one; compiling here");
        if let Some(builder) = &gathered.builder {
            builder.release(p.engine()).await;
        }
        let recipe = Recipe {
            compile_stdlib: true,
            ..p.recipe.clone()
        };
        let context = render::render_context_from(&recipe, source)?;
        return gather_one(plan, target, i, source, &context).await;
    };
    gathered.progress.note(&format!(
        "compile once: {} stdlib modules reused from {from}, {} named after this platform compiled here ({:.1}s); {from} compiled the whole stdlib in {:.1}s, which this platform skipped",
        shared.reused,
        shared.compiled_there,
        bytecode::elapsed(started),
        shared.native_compile_seconds,
    ));
    Ok(gathered)
}

/// Tags every platform's images, now that all have built. A source with no repository
/// digest was named by its tag in FROM: if the tag moved while the build ran, the images
/// were made from another image than the one the labels and provenance name, so nothing
/// is tagged and they go.
async fn tag_all(
    target: &TargetPlan<'_>,
    sources: &[SourceImage],
    outcomes: &[Outcome],
) -> Result<()> {
    for (i, (p, source)) in target.platforms.iter().zip(sources).enumerate() {
        if let Err(e) = crate::engine::source::still_resolves(p.engine(), source).await {
            for (p, outcome) in target.platforms.iter().zip(outcomes) {
                images::discard(p.engine(), &outcome.images).await;
            }
            return Err(target.on(i, e));
        }
    }
    for (p, outcome) in target.platforms.iter().zip(outcomes) {
        images::tag(p.engine(), &outcome.images).await?;
        println!("{} ({:.1}s)", outcome.images.references(), outcome.seconds);
    }
    Ok(())
}
