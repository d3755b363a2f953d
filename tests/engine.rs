//! The engine path, proven on the real engine: a rendered Dockerfile's stage built by
//! BuildKit through bollard, from a source image that exists only locally (a pull
//! would fail: no registry is reachable on the test bed).

mod common;
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
        "standard",
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
