//! `dpy build` end to end on the real engine, and its failure modes: each fails with one
//! line and a distinct exit code, and leaves no image, tag or container behind.

use crate::common;
use crate::common::{docker_ok, Test};

fn derived_source(name: &str, run: &str) -> String {
    common::derived_image(name, &common::debian_source(), run)
}

/// Every path in an image's filesystem, as `docker export` gives it, minus what the
/// engine itself adds to every container.
fn runtime_files(image: &str) -> Vec<String> {
    let id = docker_ok(&["create", image]).trim().to_string();
    let export = common::docker(&["export", &id]);
    docker_ok(&["rm", &id]);
    assert!(export.status.success());
    let engine_made = [
        ".dockerenv",
        "dev",
        "proc",
        "sys",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    let mut files: Vec<String> = tar::Archive::new(export.stdout.as_slice())
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|p| {
            !engine_made
                .iter()
                .any(|m| p == m || p.starts_with(&format!("{m}/")))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn builds_the_debian_source_and_passes_conformance() {
    if !common::engine("build::e2e") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let repository = common::unique_repository("e2e");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    // A platform given twice is built once: one line of tags, no platform suffix, and
    // no second pair of images left dangling.
    let before = common::Engine::now();
    let out = Test::new()
        .args(common::build_argv("3.11-bookworm", &source, &repository))
        .args(["--platform", "linux/amd64,linux/amd64"])
        .args(["--metadata-file", metadata.to_str().unwrap()])
        .run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with(&format!(
            "{repository}:3.11-bookworm {repository}:3.11-bookworm-buildroot ("
        )),
        "{stdout}"
    );
    before.assert_no_new_dangling();
    let runtime = format!("{repository}:3.11-bookworm");
    let buildroot = format!("{repository}:3.11-bookworm-buildroot");
    docker_ok(&["image", "inspect", &buildroot]);

    Test::new()
        .args(["test", &runtime, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .run();

    // The -buildroot image holds exactly the runtime root in $BUILD_ROOT.
    let in_runtime = runtime_files(&runtime);
    let in_buildroot: Vec<String> = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &buildroot,
        "-c",
        "cd \"$BUILD_ROOT\" && find . -mindepth 1 | sed 's|^\\./||' | sort",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    assert!(in_runtime.len() > 100, "{} files", in_runtime.len());
    assert_eq!(
        in_runtime, in_buildroot,
        "$BUILD_ROOT differs from the runtime root"
    );

    // The SBOM names CPython once, through the deb record that owns the interpreter.
    let listed = common::assert_sbom_seen_by_syft(&runtime);
    common::assert_trivy_lists_the_sbom(&runtime, &listed);
    assert!(
        !listed.iter().any(|(name, _, _)| name == "python"),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|(name, _, purl)| name == "python3.11-minimal"
                && purl.starts_with("pkg:deb/debian/")),
        "{listed:?}"
    );

    let helpers = docker_ok(&[
        "run", "--rm", "--entrypoint", "/bin/sh", &buildroot, "-c",
        "for h in chroot-pip chroot-apt chroot-exec; do command -v $h; done; echo $PYTHON_SITE_PACKAGES",
    ]);
    for helper in [
        "/chroot-pip",
        "/chroot-apt",
        "/chroot-exec",
        "/usr/local/lib/python3.11/dist-packages",
    ] {
        assert!(helpers.contains(helper), "{helper} in {helpers}");
    }

    // The source has its own pip: the -buildroot is the source's layers as they are and
    // one of dpy's (no builder image), and says where its pip comes from.
    let (mine, base) = (common::layers(&buildroot), common::layers(&source));
    assert_eq!(mine.len(), base.len() + 1, "{mine:?} over {base:?}");
    assert_eq!(mine[..base.len()], base[..]);
    let pip = docker_ok(&common::run_args(
        &buildroot,
        "cat",
        &["/opt/dpy/builder-pip.json"],
    ));
    assert!(
        pip.starts_with(r#"{"origin": "source", "version": ""#),
        "{pip}"
    );

    let meta = std::fs::read_to_string(&metadata).unwrap();
    assert!(
        meta.contains(&runtime) && meta.contains("\"kind\": \"buildroot\""),
        "{meta}"
    );
    // The runtime image's SBOM is beside the metadata too, the same bytes it carries.
    let records: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let sbom = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reference"] == runtime.as_str())
        .and_then(|r| r["sbom"].as_str())
        .expect("the runtime record names its SBOM")
        .to_string();
    let carried = Test::new().args(["sbom", &runtime]).run().stdout;
    assert_eq!(std::fs::read(dir.path().join(&sbom)).unwrap(), carried);

    // Where the time went: one plain line, and the same seconds in every record.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("[3.11-bookworm] stages: "))
        .unwrap_or_else(|| panic!("no stages line in:\n{stderr}"));
    for record in records["images"].as_array().unwrap() {
        let stages = record["stages"]
            .as_object()
            .expect("each record has its stages");
        let shown: Vec<String> = stages
            .iter()
            .map(|(stage, seconds)| format!("{stage} {:.2}s", seconds.as_f64().unwrap()))
            .collect();
        let names: Vec<&str> = stages.keys().map(String::as_str).collect();
        // serde_json's map is sorted; the line is in the order the stages run.
        let mut sorted = shown.clone();
        sorted.sort();
        let mut on_the_line: Vec<String> = line.split(", ").map(str::to_string).collect();
        on_the_line.sort();
        assert_eq!(sorted, on_the_line, "{line}");
        for stage in [
            "resolve", "gather", "compile", "distill", "images", "pin", "tag",
        ] {
            assert!(names.contains(&stage), "{stage} in {names:?}");
        }
        assert!(!names.contains(&"push"), "{names:?}");
    }

    // The runtime image, assembled by dpy: one layer, the config image_config declares.
    let config: serde_json::Value = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config}}",
        &runtime,
    ]))
    .unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["WorkingDir"], "/home/nonroot");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/python3"])
    );
    assert_eq!(config["Env"][0], "PATH=/usr/bin:/usr/local/bin:/bin");
    assert_eq!(config["Labels"]["io.dpy.variant"], "runtime");
    let layers = docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", &runtime]);
    assert_eq!(layers.trim(), "1");
    for image in [runtime, buildroot] {
        docker_ok(&["image", "rm", &image]);
    }
}

/// Two --no-cache builds of a Debian source whose python3 has no pip (sid's stand-in),
/// online: the builder's apt installs python3-pip, and what apt leaves behind besides the
/// package (its logs, caches and lists) is as the source had it. The offline builds are
/// engines::offline_no_cache_builds_give_one_id_for_each_image.
#[test]
fn two_no_cache_builds_give_the_same_images() {
    if !common::engine("build::deterministic") {
        return;
    }
    let source = common::sid_source("3.14");
    common::require_image(&source);
    let repository = common::unique_repository("determinism");
    let image = format!("{repository}:3.14-trixie");
    let buildroot = format!("{image}-buildroot");
    let build = || {
        common::build_amd64("3.14-trixie", &source, &repository, &[])
            .args(["--no-cache", "--progress", "quiet"])
            .args(["--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"])
            .env_remove("SOURCE_DATE_EPOCH")
            .run();
        let origin = docker_ok(&common::run_args(
            &buildroot,
            "cat",
            &["/opt/dpy/builder-pip.json"],
        ));
        assert!(origin.contains(r#""origin": "apt""#), "{origin}");
        let apt_places =
            |image: &str| docker_ok(&common::run_args(image, "sh", &["-c", common::APT_PLACES]));
        assert_eq!(apt_places(&buildroot), apt_places(&source));
        let seen = docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.Created}} {{index .Config.Labels \"org.opencontainers.image.created\"}}",
            &image,
        ]) + &docker_ok(&["history", "--format", "{{.CreatedAt}}", &image])
            + &docker_ok(&["image", "inspect", "-f", "{{.Id}} {{.Created}}", &buildroot])
            + &docker_ok(&["history", "--format", "{{.CreatedAt}}", &buildroot]);
        // The -buildroot image keeps the source's layers as they are.
        let (mine, base) = (common::layers(&buildroot), common::layers(&source));
        assert!(mine.starts_with(&base), "{mine:?} vs {base:?}");
        docker_ok(&["image", "rm", &image, &buildroot]);
        seen.trim().to_string()
    };
    // The same inputs at two times: one id for each image. Every time in the configs
    // (and in the files the -buildroot image adds) is the source image's own
    // `created`, to the second.
    let before = common::Engine::now();
    let (first, second) = (build(), build());
    assert_eq!(first, second);
    before.assert_no_new_dangling();
    let source_created = docker_ok(&["image", "inspect", "-f", "{{.Created}}", &source]);
    let whole_seconds = format!("{}Z", &source_created.trim()[..19]);
    let times: Vec<&str> = first
        .split_whitespace()
        .filter(|t| !t.starts_with("sha256:"))
        .collect();
    assert!(
        times.len() >= 8,
        "the config, the label and the history: {first}"
    );
    assert!(
        times.iter().all(|t| *t == whole_seconds),
        "{first} vs {whole_seconds}"
    );
    // SOURCE_DATE_EPOCH, when set, is the time instead: engines::offline_no_cache_builds_
    // give_one_id_for_each_image, whose two builds set it.
}

#[test]
fn a_source_without_python_is_refused() {
    if !common::engine("build::no-python") {
        return;
    }
    let source = derived_source("nopython", "rm -f /usr/bin/python3* /usr/bin/python");
    let repository = common::unique_repository("nopython");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv("3.11-bookworm", &source, &repository))
        .status(12)
        .stderr_contains("no python3 on PATH")
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}

/// The source given for a target must be the target's Python: a 3.11 source built as
/// 3.12 would be published as 3.12. Refused by the gather stage, before anything is built.
#[test]
fn a_source_of_another_python_is_refused() {
    if !common::engine("build::other-python") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let repository = common::unique_repository("otherpython");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv("3.12-bookworm", &source, &repository))
        .args(["--metadata-file", "/dev/null"])
        .status(12)
        .stderr_contains(
            "the target is Python 3.12 but the source image's interpreter is Python 3.11.",
        )
        .stderr_contains("give a Python 3.12 source with --source-image, or pick a 3.11 target")
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}

#[test]
fn a_missing_library_of_a_required_part_is_still_an_error() {
    if !common::engine("build::no-libssl") {
        return;
    }
    // _ssl does not import in this source either, but a runtime without TLS is no
    // runtime: refused, not left out.
    let source = derived_source("nolibssl", "rm -f /usr/lib/x86_64-linux-gnu/libssl.so.3");
    let repository = common::unique_repository("nolibssl");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv("3.11-bookworm", &source, &repository))
        .args(["--progress", "quiet", "--metadata-file", "/dev/null"])
        .status(12)
        .stderr_contains("libssl.so.3 needed by ")
        .stderr_contains("_ssl is required")
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}

#[test]
fn a_failing_step_is_named_with_its_log_tail() {
    if !common::engine("build::failing-step") {
        return;
    }
    // The interpreter runs, but its stdlib is broken: gather.py fails with a traceback.
    let source = derived_source(
        "brokenstdlib",
        "echo 'raise RuntimeError(\"stdlib broken on purpose\")' > /usr/lib/python3.11/json/__init__.py",
    );
    let repository = common::unique_repository("brokenstep");
    let before = common::Engine::now();
    let out = Test::new()
        .args(common::build_argv("3.11-bookworm", &source, &repository))
        .args(["--progress", "quiet"])
        .status(13)
        .stderr_contains("build step failed on linux/amd64")
        .stderr_contains("RuntimeError: stdlib broken on purpose")
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[gather 4/4] RUN /bin/sh /opt/dpy/gather.sh"),
        "names the step: {stderr}"
    );
    assert!(stderr.contains("exit code: 1"), "{stderr}");
    before.assert_nothing_left(&repository);
}

#[test]
fn a_missing_source_that_cannot_be_pulled_suggests_source_image() {
    if !common::engine("build::missing-source") {
        return;
    }
    let repository = common::unique_repository("missing");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv(
            "3.11-bookworm",
            "dpy-test/does-not-exist:0",
            &repository,
        ))
        .status(11)
        .stderr_contains("pulling it failed")
        .stderr_contains("--source-image")
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}

#[test]
fn platforms_are_checked_before_building() {
    Test::new()
        .args(["build", "3.11-bookworm", "--platform", "linux/amd65"])
        .status(2)
        .stderr_contains("unknown architecture \"amd65\"")
        .one_line_error()
        .run();
    if !common::engine("build::s390x") {
        return;
    }
    let Some(platform) = common::unrunnable_platform() else {
        common::cannot_test("build::s390x", "this machine runs every platform dpy knows");
        return;
    };
    Test::new()
        .args(["build", "3.11-bookworm", "--platform", platform])
        .status(2)
        .stderr_contains(&format!("platform {platform} cannot run on this"))
        .one_line_error()
        .run();
}

#[test]
fn an_unreachable_engine_is_one_line() {
    Test::new()
        .args(["build", "3.11-bookworm"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(10)
        .stderr_contains("Docker engine")
        .one_line_error()
        .run();
}

/// Starts a build, interrupts it as a terminal would when a progress line contains
/// `marker`, and checks that it stops with 130 leaving no tag, hold or container.
fn interrupt_at(marker: &str, name: &str) {
    let source = common::debian_source();
    common::require_image(&source);
    interrupt_build_at(marker, name, |repository| {
        common::build_argv("3.11-bookworm", &source, repository)
    });
}

/// Starts the build `argv(repository)` uncached, sends it SIGINT once `marker` shows on
/// stderr, and checks it stops with 130 and leaves nothing behind.
fn interrupt_build_at(marker: &str, name: &str, argv: impl Fn(&str) -> Vec<String>) {
    let repository = common::unique_repository(name);
    let before = common::Engine::now();
    let mut child = std::process::Command::new(common::BIN)
        .args(argv(&repository))
        .args(["--no-cache", "--metadata-file", "/dev/null"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(marker) {
            break;
        }
    }
    assert!(
        seen.contains(marker),
        "the build never printed {marker:?}: {seen}"
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    before.assert_nothing_left(&repository);
    // Hold tags carry the interrupted process's id (engine::build's session ids).
    let holds = common::images_of(&format!("dpy-hold/dpy-{}-*", child.id()));
    assert!(holds.is_empty(), "held images left: {holds:?}");
}

#[test]
fn ctrl_c_cancels_the_build_and_leaves_nothing() {
    if !common::engine("build::ctrl-c") {
        return;
    }
    // One after the other: BuildKit shares the steps of identical builds in flight, and
    // cancelling one of two such builds can fail the other ("duplicate output").
    // While BuildKit runs the gather stage:
    interrupt_at("=> [gather", "ctrlc");
    // While the -buildroot's builder image is exported, when dpy already holds a
    // reference for it (and the gather still runs beside it). Only a source without
    // its own pip has a builder image: the sid source, whose builder adds apt's.
    let sid = common::sid_source("3.14");
    common::require_image(&sid);
    interrupt_build_at("=> exporting to image", "ctrlc-images", |repository| {
        let mut argv = common::build_argv("3.14-trixie", &sid, repository);
        argv.extend(["--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"].map(String::from));
        argv
    });
    // Two targets building side by side (--jobs 2): both stop, neither leaves anything.
    for python in ["3.13", "3.11"] {
        common::require_image(&common::alpine_source(python));
    }
    interrupt_build_at("=> exporting to client", "ctrlc-jobs", |repository| {
        let mut argv = common::build_argv(
            "3.13-alpine3.20",
            "dpy-testbed/python:{target}-{arch}",
            repository,
        );
        argv.extend(["3.11-alpine3.20", "--jobs", "2"].map(String::from));
        argv
    });
}

#[test]
fn dpy_sbom_of_an_image_without_one_is_one_line_and_leaves_nothing() {
    if !common::engine("build::sbom-missing") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let before = common::Engine::now();
    Test::new()
        .args(["sbom", "dpy-test/does-not-exist:0"])
        .status(2)
        .stderr("dpy: error: image dpy-test/does-not-exist:0 is not in the local image store; build it with `dpy build` or pull it first\n")
        .run();
    // An image dpy did not build: no SBOM at the path, and the container made to read
    // it is gone.
    Test::new()
        .args(["sbom", &source])
        .status(2)
        .stderr(&format!("dpy: error: {source} has no /usr/share/dpy/python.spdx.json: it was not built by a dpy that writes one\n"))
        .run();
    before.assert_nothing_left("dpy-test/does-not-exist");
}
