//! The engine path, proven on the real engine: a rendered Dockerfile's stage built by
//! BuildKit through bollard, from a source image that exists only locally (a pull
//! would fail: no registry is reachable on the test bed), and through a connection that
//! breaks off mid-answer (a build is started once more, then fails with one line).

use crate::common;
use dpy::catalog::Catalog;
use dpy::engine::{self, BuildSpec, Engine, Output, Progress, ProgressMode};
use dpy::recipe::Recipe;

#[tokio::test]
async fn the_export_stage_builds_from_a_local_source_without_pulling() {
    if !common::engine("engine::export") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let catalog = Catalog::embedded().unwrap();
    let recipe = Recipe::new(
        &catalog,
        &"3.11-bookworm".parse().unwrap(),
        Some(&source),
        catalog.profile("standard").unwrap(),
    )
    .unwrap();
    let context = dpy::render::render_context(&recipe).unwrap();
    let engine = Engine::connect().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export.tar");
    let built = engine::build(
        &engine,
        BuildSpec {
            context: &context,
            dockerfile: dpy::render::BUILDROOT_DOCKERFILE,
            target: "export",
            platform: "linux/amd64",
            output: Output::Tar(out.clone()),
            no_cache: false,
            build_args: Default::default(),
            labels: Default::default(),
        },
        &Progress::new(ProgressMode::Quiet, "test"),
    )
    .await
    .unwrap();
    assert!(built.image_id.is_none(), "a tar output creates no image");
    let data = std::fs::read(&out).unwrap();
    let mut archive = tar::Archive::new(data.as_slice());
    let mut layout = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("layout.json") {
            std::io::Read::read_to_string(&mut entry, &mut layout).unwrap();
        }
    }
    let layout = dpy::layout::Layout::parse(&layout).expect("the gather stage wrote layout.json");
    assert_eq!(layout.family(), Some(dpy::target::Family::Debian));
    assert_eq!(layout.python.minor, 11);
    assert!(layout.python.zip_path.ends_with("python311.zip"));
}

/// A flaky engine connection, on demand: a unix socket that passes everything to the
/// real engine, except that the answers to the first `cuts` build requests of the stage
/// `target` stop in the middle of a message, as they do when the engine's connection
/// breaks. (The -buildroot's builder builds beside the gather: which of two builds
/// answers first is not for a test to guess.)
struct CuttingProxy {
    socket: std::path::PathBuf,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl CuttingProxy {
    /// Bytes of a build's answer passed on before the cut: past the HTTP head and
    /// BuildKit's first status messages, inside a later one.
    const KEEP: usize = 1500;

    fn start(cuts: usize, target: &str) -> Self {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        let upstream = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => host["unix://".len()..].to_string(),
            _ => "/var/run/docker.sock".to_string(),
        };
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let left = Arc::new(AtomicUsize::new(cuts));
        // The query's `target=` parameter, ended by `&` or by the request line's space.
        let wanted = [format!("target={target}&"), format!("target={target} ")];
        let cut = Arc::new(AtomicUsize::new(0));
        let counted = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let building = Arc::new(std::sync::atomic::AtomicBool::new(false));
                // Requests go through whole; a build request marks the connection.
                let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let marks = building.clone();
                let wanted = wanted.clone();
                std::thread::spawn(move || {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(n) = std::io::Read::read(&mut from, &mut buffer) {
                        let chunk = &buffer[..n];
                        // Marked before it goes on, so the answer is never seen unmarked.
                        let has = |what: &[u8]| chunk.windows(what.len()).any(|w| w == what);
                        if chunk.starts_with(b"POST /")
                            && has(b"/build?")
                            && wanted.iter().any(|w| has(w.as_bytes()))
                        {
                            marks.store(true, Ordering::SeqCst);
                        }
                        if n == 0 || std::io::Write::write_all(&mut to, chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
                // Answers go through whole, but for a build's that is to be cut.
                let (mut from, mut to) = (server, client);
                let (left, cut) = (left.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut buffer = vec![0; 64 * 1024];
                    // Bytes of the build's answer passed on (earlier answers on the same
                    // connection do not count).
                    let mut passed = 0;
                    while let Ok(n) = std::io::Read::read(&mut from, &mut buffer) {
                        if n == 0 {
                            break;
                        }
                        let mut chunk = &buffer[..n];
                        let answering_build = building.load(Ordering::SeqCst);
                        let cutting = answering_build
                            && passed + n > Self::KEEP
                            && left
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                                    l.checked_sub(1)
                                })
                                .is_ok();
                        if cutting {
                            chunk = &chunk[..Self::KEEP.saturating_sub(passed).max(1)];
                        }
                        if std::io::Write::write_all(&mut to, chunk).is_err() {
                            break;
                        }
                        if answering_build {
                            passed += chunk.len();
                        }
                        if cutting {
                            cut.fetch_add(1, Ordering::SeqCst);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                            let _ = from.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CuttingProxy {
            socket,
            cut,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn cuts(&self) -> usize {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One after the other: BuildKit shares the steps of identical builds in flight, and a
/// build that fails (the second case) cancels steps the other may be sharing.
#[test]
fn a_build_whose_answer_breaks_off_is_built_again_and_one_that_keeps_breaking_fails() {
    if !common::engine("engine::broken-answer") {
        return;
    }
    a_build_whose_answer_breaks_off_is_built_again();
    a_build_whose_answer_keeps_breaking_off_fails_with_one_line_and_leaves_nothing();
}

fn a_build_whose_answer_breaks_off_is_built_again() {
    let source = common::debian_source();
    common::require_image(&source);
    let repository = common::unique_repository("brokenanswer");
    let proxy = CuttingProxy::start(1, "export");
    common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .env("DOCKER_HOST", &proxy.host())
        .stderr_contains("the engine's answer broke off")
        .stderr_contains("building export again")
        .run();
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(
        common::images_of(&repository).len(),
        2,
        "runtime and -buildroot"
    );
}

fn a_build_whose_answer_keeps_breaking_off_fails_with_one_line_and_leaves_nothing() {
    let source = common::debian_source();
    common::require_image(&source);
    let repository = common::unique_repository("alwaysbroken");
    let before = common::Engine::now();
    let proxy = CuttingProxy::start(usize::MAX, "export");
    common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .env("DOCKER_HOST", &proxy.host())
        .status(10)
        .one_line_error()
        .stderr_contains("the engine's answer broke off 2 times building export for linux/amd64")
        .run();
    assert_eq!(proxy.cuts(), 2);
    before.assert_nothing_left(&repository);
}

/// Thirty tar exports at once, as platforms and targets export side by side: each one
/// arrives whole, its file byte for byte. Before the fix (engine::export), about one in
/// thirty arrived without its last chunk and nothing said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_exports_each_arrive_whole() {
    if !common::engine("engine::concurrent-exports") {
        return;
    }
    use sha2::{Digest, Sha256};
    let engine = Engine::connect().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Each export differs (no shared BuildKit work) and is big enough to take many chunks.
    let payloads: Vec<Vec<u8>> = (0..30u32)
        .map(|i| {
            let mut state = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            (0..3_000_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect();
    let builds = payloads.iter().enumerate().map(|(i, payload)| {
        let engine = engine.clone();
        let out = dir.path().join(format!("export-{i}.tar"));
        async move {
            let mut context = dpy::context::BuildContext::new();
            context.add("Dockerfile", 0o644, "FROM scratch\nCOPY payload /payload\n");
            context.add("payload", 0o644, payload.clone());
            engine::build(
                &engine,
                BuildSpec {
                    context: &context,
                    dockerfile: "Dockerfile",
                    target: "",
                    platform: "linux/amd64",
                    output: Output::Tar(out.clone()),
                    no_cache: true,
                    build_args: Default::default(),
                    labels: Default::default(),
                },
                &Progress::new(ProgressMode::Quiet, format!("export {i}")),
            )
            .await
            // Read at once, as the gather stage's unpack does: a late last chunk shows.
            .map(|_| std::fs::read(&out).unwrap())
        }
    });
    let results = futures_util::future::join_all(builds).await;
    for (i, (result, payload)) in results.into_iter().zip(&payloads).enumerate() {
        let data = result.unwrap_or_else(|e| panic!("export {i}: {e}"));
        let mut archive = tar::Archive::new(data.as_slice());
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().ends_with("payload") {
                std::io::Read::read_to_end(&mut entry, &mut found).unwrap();
            }
        }
        assert_eq!(
            Sha256::digest(&found),
            Sha256::digest(payload),
            "export {i}: {} of {} bytes",
            found.len(),
            payload.len()
        );
    }
}

#[test]
fn an_export_cut_short_is_noticed_built_again_and_then_refused() {
    if !common::engine("engine::cut-export") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    // Cut once: noticed, built again, and the build goes on to both tags.
    let repository = common::unique_repository("cutexport");
    common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .env("DPY_FAULT_CUT_EXPORTS", "1")
        .stderr_contains("the export of export arrived incomplete")
        .stderr_contains("building it again")
        .run();
    assert_eq!(common::images_of(&repository).len(), 2);

    // Cut every time: one line, exit 10, nothing tagged, no container.
    let repository = common::unique_repository("cutexports");
    let before = common::Engine::now();
    common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .env("DPY_FAULT_CUT_EXPORTS", "2")
        .status(10)
        .one_line_error()
        .stderr_contains("the export of export for linux/amd64 arrived incomplete 2 times")
        .run();
    before.assert_nothing_left(&repository);
}
