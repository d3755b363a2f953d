//! `dpy render`: the build context, as files and as snapshots.

use crate::common::Test;
use dpy::catalog::Catalog;
use dpy::layout::Layout;
use dpy::recipe::Recipe;

/// The files a context holds, with their modes (sizes change with every script edit).
fn listing_without_sizes(stdout: &str) -> String {
    stdout
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", parts[0], parts[2])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rendered(target: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctx");
    Test::new()
        .args(["render", target, "-o", out.to_str().unwrap()])
        .stderr_contains("wrote the build context")
        .run();
    dir
}

fn read(dir: &tempfile::TempDir, path: &str) -> String {
    std::fs::read_to_string(dir.path().join("ctx").join(path)).unwrap()
}

#[test]
fn snapshot_3_12_alpine3_20() {
    let dir = rendered("3.12-alpine3.20");
    insta::assert_snapshot!("alpine-dockerfile", read(&dir, "Dockerfile.buildroot"));
    insta::assert_snapshot!("alpine-config", read(&dir, "dpy/config.json"));
    insta::assert_snapshot!("alpine-chroot-apk", read(&dir, "dpy/bin/chroot-apk"));
    let out = Test::new().args(["render", "3.12-alpine3.20"]).run();
    insta::assert_snapshot!(
        "alpine-listing",
        listing_without_sizes(&String::from_utf8_lossy(&out.stdout))
    );
}

#[test]
fn snapshot_3_12_slim_bookworm() {
    let dir = rendered("3.12-slim-bookworm");
    insta::assert_snapshot!(
        "slim-bookworm-dockerfile",
        read(&dir, "Dockerfile.buildroot")
    );
    insta::assert_snapshot!("slim-bookworm-config", read(&dir, "dpy/config.json"));
    insta::assert_snapshot!("debian-chroot-apt", read(&dir, "dpy/bin/chroot-apt"));
    insta::assert_snapshot!("chroot-pip", read(&dir, "dpy/bin/chroot-pip"));
    insta::assert_snapshot!("chroot-exec", read(&dir, "dpy/bin/chroot-exec"));
}

#[test]
fn snapshot_3_13_trixie() {
    let dir = rendered("3.13-trixie");
    insta::assert_snapshot!("trixie-dockerfile", read(&dir, "Dockerfile.buildroot"));
    let out = Test::new().args(["render", "3.13-trixie"]).run();
    insta::assert_snapshot!(
        "trixie-listing",
        listing_without_sizes(&String::from_utf8_lossy(&out.stdout))
    );
}

/// The runtime image's config (crate::image_config) follows the layout the source's
/// interpreter reported.
#[test]
fn the_runtime_config_follows_the_discovered_layout() {
    let layout = Layout::parse(include_str!("fixtures/layout-official-alpine.json")).unwrap();
    let config = dpy::image_config::RuntimeConfig::of(&layout).unwrap();
    assert_eq!(config.entrypoint, ["/usr/local/bin/python3"]);
    assert_eq!(config.user, "65532:65532");
    assert_eq!(
        config.env[0],
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string())
    );
}

#[test]
fn source_image_and_helpers_modes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctx");
    Test::new()
        .args([
            "render",
            "3.13-alpine3.20",
            "--source-image",
            "registry.local/py:3.13",
            "-o",
        ])
        .args([out.to_str().unwrap()])
        .run();
    let dockerfile = std::fs::read_to_string(out.join("Dockerfile.buildroot")).unwrap();
    assert!(dockerfile.contains("FROM registry.local/py:3.13 AS gather"));
    use std::os::unix::fs::PermissionsExt;
    for helper in ["chroot-pip", "chroot-exec", "chroot-apk"] {
        let mode = std::fs::metadata(out.join("dpy/bin").join(helper))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{helper}");
    }
    assert!(
        !out.join("dpy/bin/chroot-apt").exists(),
        "Alpine builders get chroot-apk only"
    );
}

#[test]
fn no_rendered_dockerfile_uses_what_the_builtin_frontend_lacks() {
    let catalog = Catalog::embedded().unwrap();
    let mut count = 0;
    for python in ["3.9", "3.12", "3.14"] {
        for os in [
            "alpine3.21",
            "alpine",
            "bookworm",
            "slim-bookworm",
            "trixie",
            "slim-trixie",
        ] {
            let target = format!("{python}-{os}").parse().unwrap();
            let Ok(recipe) = Recipe::new(
                &catalog,
                &target,
                None,
                catalog.profile("standard").unwrap(),
            ) else {
                continue;
            };
            let context = dpy::render::render_context(&recipe).unwrap();
            let buildroot = context.get("Dockerfile.buildroot").unwrap();
            {
                let text = String::from_utf8_lossy(&buildroot.data).into_owned();
                assert!(!text.contains("# syntax"), "{target}: syntax line");
                assert!(
                    !text.to_lowercase().contains("#syntax"),
                    "{target}: syntax line"
                );
                assert!(!text.contains("<<"), "{target}: heredoc");
                assert!(!text.contains("--security"), "{target}: --security");
                count += 1;
            }
        }
    }
    assert!(count >= 15, "rendered {count}");
}

#[test]
fn render_refuses_a_non_empty_directory_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.txt"), "keep").unwrap();
    let out = dir.path().to_str().unwrap();
    Test::new()
        .args(["render", "3.12-slim-bookworm", "-o", out])
        .status(2)
        .stderr_contains("--force")
        .one_line_error()
        .run();
    assert!(!dir.path().join("Dockerfile.buildroot").exists());
    Test::new()
        .args(["render", "3.12-slim-bookworm", "-o", out, "--force"])
        .run();
    assert!(dir.path().join("Dockerfile.buildroot").exists());
}

fn alpine_recipe(source: Option<&str>) -> Recipe {
    let catalog = Catalog::embedded().unwrap();
    Recipe::new(
        &catalog,
        &"3.12-alpine3.20".parse().unwrap(),
        source,
        catalog.profile("standard").unwrap(),
    )
    .unwrap()
}

fn source(pinned: &str) -> dpy::engine::source::SourceImage {
    dpy::engine::source::SourceImage {
        name: "python:3.12-alpine3.20".into(),
        digest: pinned.rsplit_once('@').map_or(pinned, |(_, d)| d).into(),
        pinned: pinned.into(),
        id: format!("sha256:{}", "1".repeat(64)),
        platform: "linux/amd64".into(),
        created: None,
        layers: Vec::new(),
    }
}

fn buildroot_of(context: &dpy::context::BuildContext) -> String {
    String::from_utf8_lossy(&context.get("Dockerfile.buildroot").unwrap().data).into_owned()
}

/// A build's FROM lines name the digest it resolved, so a tag moved since cannot change
/// what is built; the comment names the source as the user did.
#[test]
fn a_build_names_its_source_by_the_digest_it_resolved() {
    let recipe = alpine_recipe(None);
    let pinned = format!("python@sha256:{}", "a".repeat(64));
    let dockerfile =
        buildroot_of(&dpy::render::render_context_from(&recipe, &source(&pinned)).unwrap());
    assert!(dockerfile.starts_with("# Rendered by dpy "), "{dockerfile}");
    assert!(dockerfile
        .lines()
        .next()
        .unwrap()
        .ends_with("from python:3.12-alpine3.20."));
    assert!(
        dockerfile.contains(&format!("FROM {pinned} AS gather\n")),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains(&format!("FROM {pinned} AS builder\n")),
        "{dockerfile}"
    );
    assert!(
        !dockerfile.contains("FROM python:3.12-alpine3.20"),
        "{dockerfile}"
    );
    // A source with no repository digest (built locally) keeps its name: the engine's
    // BuildKit cannot take an image id in FROM.
    let local = buildroot_of(
        &dpy::render::render_context_from(&recipe, &source("python:3.12-alpine3.20")).unwrap(),
    );
    assert!(
        local.contains("FROM python:3.12-alpine3.20 AS gather\n"),
        "{local}"
    );
    // `dpy render` resolves nothing: the rendered context names the source as given.
    let rendered = buildroot_of(&dpy::render::render_context(&recipe).unwrap());
    assert_eq!(rendered, local);
}

/// The entrypoint is written as a JSON string, and any value that could end or split a
/// Dockerfile line is refused before a Dockerfile is written, even one that got past
/// layout.json's checks.
#[test]
fn no_value_adds_a_dockerfile_instruction() {
    let mut layout = Layout::parse(include_str!("fixtures/layout-official-alpine.json")).unwrap();
    layout.python.entrypoint = "/opt/pythön/bin/python3".into();
    let config = dpy::image_config::RuntimeConfig::of(&layout).unwrap();
    assert_eq!(config.entrypoint, ["/opt/pythön/bin/python3"]);
    assert_eq!(
        config.env[0].1,
        "/opt/pythön/bin:/usr/local/bin:/usr/bin:/bin"
    );
    // The runtime's config is JSON, not a Dockerfile, yet an entrypoint that could end
    // or split a line, or widen PATH, is still refused: layout.json let it through.
    for hostile in [
        "/usr/local/bin/python3\"]\nRUN id\nENTRYPOINT [\"/bin/sh",
        "/usr/local/bin/python3\r",
        "/x LD_PRELOAD=/tmp/evil.so/python3",
        "/usr/$HOME/python3",
        "/usr/../bin/python3",
        "/usr/bin:/tmp/python3",
        "python3",
    ] {
        layout.python.entrypoint = hostile.into();
        let e = dpy::image_config::RuntimeConfig::of(&layout).unwrap_err();
        assert_eq!(
            e.exit_code(),
            dpy::error::exit::SOURCE_UNFIT,
            "{hostile:?}: {e}"
        );
        assert!(e.to_string().contains("entrypoint"), "{e}");
        assert!(!e.to_string().contains(['\n', '\r']), "{e}");
    }
    // The recipe's own values (`--source-image`, the catalog's) are dpy's: exit 3.
    let recipe = alpine_recipe(Some("python:3.12\nRUN id"));
    let e = dpy::render::render_context(&recipe).unwrap_err();
    assert_eq!(e.exit_code(), dpy::error::exit::DEFINITION, "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    let pinned = source("python@sha256:abc RUN id");
    let e = dpy::render::render_context_from(&alpine_recipe(None), &pinned).unwrap_err();
    assert_eq!(e.exit_code(), dpy::error::exit::DEFINITION, "{e}");
}
