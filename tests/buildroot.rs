//! The -buildroot workflow users adopt dpy through: chroot-pip (with the shared-library
//! graft), chroot-apt/apk, the examples served end to end, and a CA bundle for builder
//! steps that never lands in any image.

use crate::common;
use crate::common::{docker, docker_ok, Test};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The host's trust store plus a CA made for this run: the package index is reached
/// through a TLS-intercepting proxy whose CA is in the host store, and the extra CA's
/// bytes are unique, so finding them in an image is proof of a leak.
fn ca_bundle(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("ca.key");
    let cert = dir.join("ca.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg(format!("/CN=dpy test CA {}", std::process::id()))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    // A line from the middle of the base64 body: in no other certificate anywhere.
    let marker = pem.lines().nth(5).unwrap().to_string();
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap();
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, format!("{system}\n{pem}")).unwrap();
    (bundle, marker)
}

/// Every layer, the config (labels, history) of `image`: none may hold `marker`.
fn assert_absent(image: &str, marker: &str) {
    let saved = docker(&["save", image]);
    assert!(saved.status.success());
    let mut archive = tar::Archive::new(saved.stdout.as_slice());
    let mut blobs = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        blobs += 1;
        let path = entry.path().unwrap().display().to_string();
        let mut haystacks = vec![data.clone()];
        if path.ends_with(".tar") {
            // A layer: look inside every file, not just at the tar's bytes.
            let mut layer = tar::Archive::new(data.as_slice());
            for file in layer.entries().unwrap() {
                let mut file = file.unwrap();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut body).unwrap();
                haystacks.push(body);
            }
        }
        for hay in haystacks {
            assert!(
                !String::from_utf8_lossy(&hay).contains(marker),
                "{image}: the CA bundle leaked into {path}"
            );
        }
    }
    assert!(blobs > 2, "{image}: saved {blobs} blobs");
    let history = docker_ok(&["history", "--no-trunc", image]);
    let inspect = docker_ok(&["image", "inspect", image]);
    assert!(!history.contains(marker) && !inspect.contains(marker));
}

fn docker_build(dir: &Path, tag: &str, base: &str, ca: &Path) -> std::process::Output {
    docker_build_with(dir, tag, base, ca, &[])
}

fn docker_build_with(
    dir: &Path,
    tag: &str,
    base: &str,
    ca: &Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new("/usr/bin/docker")
        .args(["build", "--progress", "plain", "-t", tag])
        .args(extra)
        .arg("--build-arg")
        .arg(format!("BASE={base}"))
        .arg("--secret")
        .arg(format!("id=ca,src={}", ca.display()))
        .arg(dir)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap()
}

fn dpy_build(target: &str, source: &str, repository: &str, ca: &Path) {
    common::build_amd64(
        target,
        source,
        repository,
        &["--ca-bundle", ca.to_str().unwrap()],
    )
    .run();
}

/// The Python version a dpy image carries (its io.dpy.python.version label).
fn python_version(image: &str) -> String {
    docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"io.dpy.python.version\"}}",
        image,
    ])
    .trim()
    .to_string()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Serves `image` (an example listening on 8080), waits for its /_health to say ok, and
/// returns the bodies of `paths`.
fn served(image: &str, paths: &[&str]) -> Vec<Option<String>> {
    // Named after the image: the Debian and Alpine tests serve at the same time.
    let name = format!(
        "dpy-serve-{}",
        image.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    docker_ok(&["run", "-d", "--name", &name, "-p", "127.0.0.1::8080", image]);
    let port = docker_ok(&["port", &name, "8080/tcp"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
    };
    let mut health = None;
    for _ in 0..60 {
        health = get("/_health");
        if health.as_deref() == Some("ok") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let bodies = paths.iter().map(|p| get(p)).collect();
    let logs = docker(&["logs", &name]);
    docker(&["rm", "-f", &name]);
    assert_eq!(
        health.as_deref(),
        Some("ok"),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    bodies
}

/// Serves the flask example and checks its three routes over HTTP.
fn serve_and_check(image: &str, machine: &str) {
    let bodies = served(image, &["/", "/_arch"]);
    assert_eq!(bodies[0].as_deref(), Some("<p>Hello, World!</p>"));
    assert_eq!(bodies[1].as_deref(), Some(machine));
}

/// Builds examples/uv-app on `base` (`chroot-uv sync --frozen`), serves it, and checks
/// that the packages in the image are exactly those uv.lock pins, as uv itself exports
/// them, and that no uv came along.
fn uv_app(base: &str, app: &str, bundle: &Path, python: &str) {
    let project = examples().join("uv-app");
    let out = docker_build(&project, app, base, bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = served(app, &["/?name=%3Cuv%3E"]);
    assert_eq!(
        page[0].as_deref(),
        Some(format!("<p>Hello, &lt;uv&gt;!</p><p>Python {python} on x86_64</p>").as_str())
    );
    let exported = Command::new("uv")
        .args([
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
        ])
        .args([
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ])
        .arg("--project")
        .arg(&project)
        .output()
        .expect("uv runs (scripts/testbed installs it)");
    assert!(exported.status.success(), "{exported:?}");
    let normal = |name: &str| name.to_lowercase().replace(['_', '.'], "-");
    let mut locked: Vec<String> = String::from_utf8_lossy(&exported.stdout)
        .lines()
        .filter_map(|l| l.split_once("=="))
        .map(|(name, version)| format!("{}=={}", normal(name), version.trim()))
        .collect();
    locked.sort();
    assert!(
        locked.iter().any(|p| p.starts_with("markupsafe==")),
        "{locked:?}"
    );
    let installed = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        app,
        "-c",
        "import importlib.metadata as m, shutil, markupsafe._speedups; \
         print(shutil.which('uv')); \
         [print(d.metadata['Name'] + '==' + d.version) for d in m.distributions()]",
    ]);
    let mut lines = installed.lines();
    assert_eq!(lines.next(), Some("None"), "uv is not in the image");
    let mut installed: Vec<String> = lines
        .map(|l| {
            let (name, version) = l.split_once("==").unwrap();
            format!("{}=={version}", normal(name))
        })
        .collect();
    installed.sort();
    assert_eq!(installed, locked);
}

#[test]
fn a_ca_bundle_is_checked_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    for (path, why) in [
        (dir.path().join("missing.pem"), "cannot read it"),
        (not_pem, "not a PEM bundle"),
    ] {
        Test::new()
            .args([
                "build",
                "3.11-bookworm",
                "--ca-bundle",
                path.to_str().unwrap(),
            ])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .status(2)
            .stderr_contains(why)
            .one_line_error()
            .run();
    }
}

#[test]
fn flask_on_debian_with_a_private_ca_and_a_grafted_library() {
    if !common::engine("buildroot::debian") {
        return;
    }
    // Debian's python3 without python3-pip, as debootstrap makes it: the builder gets
    // pip from the family's package manager, and everything below runs through it.
    common::require_image(&common::debian_source());
    let source = common::derived_image(
        "debian-without-pip",
        &common::debian_source(),
        "dpkg --purge python3-pip && ! python3 -m pip --version",
    );
    let dir = tempfile::tempdir().unwrap();
    let (bundle, marker) = ca_bundle(dir.path());
    let repository = common::unique_repository("flaskdeb");
    let metadata = dir.path().join("meta.json");
    common::build_amd64(
        "3.11-bookworm",
        &source,
        &repository,
        &["--ca-bundle", bundle.to_str().unwrap()],
    )
    .args(["--metadata-file", metadata.to_str().unwrap()])
    .run();
    let base = format!("{repository}:3.11-bookworm");
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    let pips: Vec<&str> = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["builder_pip"].as_str().unwrap_or("-"))
        .collect();
    assert!(
        pips.contains(&"-") && pips.iter().any(|p| p.starts_with("apt ")),
        "the -buildroot record names apt's pip: {pips:?}"
    );

    let app = format!("{repository}-flask:1");
    let out = docker_build(&examples().join("simple-flask"), &app, &base, &bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serve_and_check(&app, "x86_64");
    let uv = format!("{repository}-uv:1");
    uv_app(&base, &uv, &bundle, &python_version(&base));
    assert_absent(&uv, &marker);
    docker(&["image", "rm", &uv]);
    // What chroot-pip installed keeps its .dist-info, which scanners read: syft lists
    // flask and its dependencies with their versions, beside the image's own SBOM.
    let python_packages: Vec<String> = common::syft(&app)
        .iter()
        .filter(|a| a["type"] == "python")
        .map(|a| {
            format!(
                "{} {}",
                a["name"].as_str().unwrap(),
                a["version"].as_str().unwrap()
            )
        })
        .collect();
    for name in ["flask ", "werkzeug ", "jinja2 ", "itsdangerous "] {
        assert!(
            python_packages
                .iter()
                .any(|p| p.to_lowercase().starts_with(name)),
            "{name} in {python_packages:?}"
        );
    }

    // A C extension linking a library the runtime root lacks: greenlet is C++, and its
    // manylinux wheel needs the system's libstdc++, which Python itself never loads.
    let graft = dir.path().join("graft");
    std::fs::create_dir_all(&graft).unwrap();
    std::fs::write(
        graft.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}-buildroot AS build\n\
         RUN --mount=type=secret,id=ca chroot-pip install --no-cache-dir greenlet 2>&1 | tee /tmp/pip.log; grep grafted /tmp/pip.log\n\
         FROM ${BASE}\nCOPY --from=build /opt/buildroot-diff/ /\n",
    )
    .unwrap();
    let graft_image = format!("{repository}-graft:1");
    // Uncached: the graft is asserted on chroot-pip's own output.
    let out = docker_build_with(&graft, &graft_image, &base, &bundle, &["--no-cache"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("grafted libstdc++.so.6"), "{log}");
    let imported = docker_ok(&[
        "run",
        "--rm",
        &graft_image,
        "-c",
        "import greenlet; print(greenlet.getcurrent() is not None)",
    ]);
    assert_eq!(imported.trim(), "True");
    // The grafted library's package (libstdc++6) joins the image's dpkg records, so
    // scanners see it: package-db fails on a shared library no record owns.
    let recorded = log
        .lines()
        .find(|l| l.contains("recorded the packages of what it added:"))
        .unwrap_or_else(|| panic!("no packages recorded: {log}"));
    assert!(recorded.contains("libstdc++6"), "{recorded}");
    Test::new()
        .args(["test", &graft_image, "--source-image", &source])
        .stdout_contains("ok   package-db: dpkg:")
        .stdout_contains(" 0 failed")
        .run();

    for image in [
        base.clone(),
        format!("{base}-buildroot"),
        app.clone(),
        graft_image.clone(),
    ] {
        assert_absent(&image, &marker);
    }
    for image in [app, graft_image, format!("{base}-buildroot"), base] {
        docker(&["image", "rm", &image]);
    }
}

#[test]
fn flask_and_a_console_script_on_alpine() {
    if !common::engine("buildroot::alpine") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let dir = tempfile::tempdir().unwrap();
    let (bundle, marker) = ca_bundle(dir.path());
    let repository = common::unique_repository("flaskalp");
    dpy_build("3.13-alpine3.20", &source, &repository, &bundle);
    let base = format!("{repository}:3.13-alpine3.20");

    let app = format!("{repository}-flask:1");
    let out = docker_build(&examples().join("simple-flask"), &app, &base, &bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // pip in the musl builder picked a musllinux wheel for MarkupSafe (its C speedups);
    // asked of the image, since a cached build prints no pip log.
    let wheel = docker_ok(&[
        "run",
        "--rm",
        &app,
        "-c",
        "import importlib.metadata as m; print(m.distribution('MarkupSafe').read_text('WHEEL'))",
    ]);
    assert!(wheel.contains("musllinux"), "{wheel}");
    serve_and_check(&app, "x86_64");
    let uv = format!("{repository}-uv:1");
    uv_app(&base, &uv, &bundle, &python_version(&base));

    let cli = format!("{repository}-cli:1");
    let out = docker_build(&examples().join("cli"), &cli, &base, &bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::assert_cli_example_answers(&cli);

    for image in [app.clone(), cli.clone(), uv.clone()] {
        assert_absent(&image, &marker);
    }
    for image in [app, cli, uv, format!("{base}-buildroot"), base] {
        docker(&["image", "rm", &image]);
    }
}

#[test]
fn helpers_fail_clearly_and_leave_build_root_unchanged() {
    if !common::engine("buildroot::helpers") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let dir = tempfile::tempdir().unwrap();
    let (bundle, _) = ca_bundle(dir.path());
    let repository = common::unique_repository("helpers");
    dpy_build("3.11-bookworm", &source, &repository, &bundle);
    let buildroot = format!("{repository}:3.11-bookworm-buildroot");
    let script = "snapshot() { find \"$BUILD_ROOT\" -printf '%p %s\\n' | sort | md5sum; }; \
        before=$(snapshot); \
        DPY_CA_FILE=/ca.pem chroot-pip install --no-cache-dir dpy-no-such-package-0xdead; echo \"pip=$?\"; \
        chroot-apt install dpy-no-such-package; echo \"apt=$?\"; \
        env -u BUILD_ROOT chroot-pip install x; echo \"unset=$?\"; \
        chroot-exec -h >/dev/null; echo \"exec-help=$?\"; \
        rm -rf /usr/lib/python3/dist-packages/pip; chroot-pip install x 2>/tmp/e; echo \"nopip=$?\"; \
        echo \"lines=$(wc -l </tmp/e)\"; cat /tmp/e >&2; \
        [ \"$before\" = \"$(snapshot)\" ] && echo unchanged";
    let out = Command::new("/usr/bin/docker")
        .args(["run", "--rm", "-v"])
        .arg(format!("{}:/ca.pem:ro", bundle.display()))
        .args(["--entrypoint", "/bin/sh", &buildroot, "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "pip=1",
        "apt=3",
        "unset=2",
        "exec-help=0",
        "nopip=2",
        "lines=1",
        "unchanged",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains("dpy-no-such-package-0xdead"),
        "pip's own error: {stderr}"
    );
    assert!(
        stderr.contains("chroot-apt: ") && stderr.contains("BUILD_ROOT is not set"),
        "{stderr}"
    );
    // A builder without pip: one line that says what is missing and how to add it.
    assert!(
        stderr.contains("chroot-pip: the builder's /usr/bin/python3 has no pip")
            && stderr.contains("apt-get install -y python3-pip"),
        "{stderr}"
    );
    uv_refuses_bad_projects_and_installs_offline(&buildroot, &bundle);
    docker(&[
        "image",
        "rm",
        &buildroot,
        &format!("{repository}:3.11-bookworm"),
    ]);
}

/// chroot-uv's bad inputs, each one line, with `$BUILD_ROOT` unchanged after them: a
/// project without uv.lock under --frozen, a lock that no longer matches pyproject.toml,
/// a package that does not exist, no package index reachable (with and without uv).
/// Then offline with what a user supplies (the uv wheel, a wheel directory): uv-app into
/// a venv inside the root, which the runtime's interpreter runs.
fn uv_refuses_bad_projects_and_installs_offline(buildroot: &str, bundle: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("b");
    let app = examples().join("uv-app");
    for (name, files) in [
        ("nolock", &["pyproject.toml"][..]),
        ("stale", &["pyproject.toml", "uv.lock"][..]),
        ("app", &["pyproject.toml", "uv.lock", "app.py"][..]),
    ] {
        std::fs::create_dir_all(projects.join(name)).unwrap();
        for file in files {
            std::fs::copy(app.join(file), projects.join(name).join(file)).unwrap();
        }
    }
    let stale = projects.join("stale/pyproject.toml");
    let text = std::fs::read_to_string(&stale).unwrap();
    std::fs::write(
        &stale,
        text.replace(
            "\"werkzeug>=3,<4\",",
            "\"werkzeug>=3,<4\",\n    \"itsdangerous>=2\",",
        ),
    )
    .unwrap();
    // A project that is a package (a build backend, a console script): sync installs it
    // too, after its locked dependencies (none here).
    let package = projects.join("pkg");
    std::fs::create_dir_all(package.join("src/uvpkg")).unwrap();
    std::fs::write(
        package.join("pyproject.toml"),
        "[project]\nname = \"uvpkg\"\nversion = \"1.0.0\"\nrequires-python = \">=3.9\"\n\
         dependencies = []\n\n[project.scripts]\nuvpkg-hello = \"uvpkg:hello\"\n\n\
         [build-system]\nrequires = [\"uv_build>=0.9,<0.14\"]\nbuild-backend = \"uv_build\"\n",
    )
    .unwrap();
    std::fs::write(
        package.join("src/uvpkg/__init__.py"),
        "def hello():\n    print('hello from uvpkg')\n",
    )
    .unwrap();
    let locked = Command::new("uv")
        .args(["lock", "--project"])
        .arg(&package)
        .output()
        .expect("uv runs (scripts/testbed installs it)");
    assert!(locked.status.success(), "{locked:?}");
    let wheels = dir.path().join("w");
    std::fs::create_dir_all(&wheels).unwrap();
    let run = |network: &str, script: &str| {
        let out = Command::new("/usr/bin/docker")
            .args(["run", "--rm", "--network", network, "-v"])
            .arg(format!("{}:/b:ro", projects.display()))
            .arg("-v")
            .arg(format!("{}:/w", wheels.display()))
            .arg("-v")
            .arg(format!("{}:/ca.pem:ro", bundle.display()))
            .args(["-e", "DPY_CA_FILE=/ca.pem", "--entrypoint", "/bin/sh", buildroot, "-c"])
            .arg(format!(
                "snapshot() {{ find \"$BUILD_ROOT\" -printf '%p %s\\n' | sort | md5sum; }}; before=$(snapshot); {script}"
            ))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let unchanged = "[ \"$before\" = \"$(snapshot)\" ] && echo unchanged";
    let (stdout, stderr) = run(
        "bridge",
        &format!(
            "chroot-uv sync --frozen --project /b/nolock; echo \"nolock=$?\"; \
             chroot-uv sync --project /b/stale; echo \"stale=$?\"; \
             chroot-uv pip install dpy-no-such-package-0xdead; echo \"nosuch=$?\"; \
             chroot-uv sync --frozen --project /b/app --venv app-venv; echo \"relative=$?\"; \
             UV_OFFLINE=1 chroot-uv sync --frozen --project /b/app; echo \"offline=$?\"; \
             {unchanged}; \
             chroot-uv sync --frozen --project /b/pkg && chroot-exec uvpkg-hello \
               && find \"$BUILD_ROOT\" -name uvpkg-hello -exec head -n 1 {{}} +; \
             PIP_CERT=/ca.pem python3 -m pip download -q --only-binary :all: -d /w uv \
               jinja2==3.1.6 markupsafe==3.0.4 werkzeug==3.1.9 >/dev/null && echo fetched"
        ),
    );
    for expected in [
        "nolock=2",
        "stale=2",
        "nosuch=1",
        "relative=2",
        "offline=1",
        "unchanged",
        "fetched",
        "hello from uvpkg\n#!/usr/bin/python3\n",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}\n{stderr}");
    }
    for line in [
        "chroot-uv: /b/nolock has no uv.lock, and --frozen installs exactly what it pins; run 'uv lock' and COPY uv.lock in beside pyproject.toml\n",
        "chroot-uv: /b/stale/uv.lock: error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided. hint: To update the lockfile, run `uv lock`.\n",
        "chroot-uv: --venv takes an absolute path (where the venv is in the runtime image), not 'app-venv'\n",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
    assert!(
        stderr.contains("dpy-no-such-package-0xdead was not found"),
        "{stderr}"
    );

    let (stdout, stderr) = run(
        "none",
        &format!(
            "chroot-uv sync --frozen --project /b/app; echo \"noindex=$?\"; {unchanged}; \
             UV_OFFLINE=1 UV_FIND_LINKS=/w chroot-uv --uv-wheel \"$(ls /w/uv-*.whl)\" \
               sync --frozen --project /b/app --venv /srv/venv && echo \"venv=$?\"; \
             chroot-exec /srv/venv/bin/python -c \
               'import sys, markupsafe._speedups, jinja2; print(sys.prefix, sys.base_prefix != sys.prefix)'; \
             [ -z \"$(find \"$BUILD_ROOT\" -name uv -type f)\" ] && echo no-uv-in-root"
        ),
    );
    for expected in [
        "noindex=3",
        "unchanged",
        "venv=0",
        "/srv/venv True",
        "no-uv-in-root",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains("chroot-uv: no uv: the builder has none and PyPI did not answer ("),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("chroot-uv: no uv"))
            .count(),
        1
    );
}
