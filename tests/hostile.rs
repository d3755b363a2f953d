//! A hostile source image cannot reach the host. The gather stage runs the source's own
//! interpreter as root inside BuildKit, and dpy unpacks and works on what it exported as
//! root on the host. scripts/testbed-hostile builds one source per class of attack, each
//! the Debian source plus a .pth hook (tests/data/hostile/dpy_hostile.py) that tampers
//! with the gather stage's output at exit and rewrites its manifest to match. Every host
//! path a hook aims at is a canary of random content under CANARY/<class>/.
//!
//! For each class: the canaries are all there, byte for byte, with nothing added beside
//! them; no image of the test's repository holds their content; dpy refused the source
//! (exit 12, one line naming it) or, where the hostile part can be dropped safely, built
//! it without that part; and nothing is left in the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common;

/// Where the hooks aim: a fixture path of these tests, baked into the hostile images.
/// Each class has its own directory, so tests running side by side never share one.
const CANARY: &str = "/var/tmp/dpy-hostile-canary";

/// A class's canary files, of random content, checked after the build.
struct Canary {
    dir: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    /// The random part of every file's content: found in an image, a canary leaked.
    marker: String,
}

impl Canary {
    /// Writes `names` (relative paths) afresh under CANARY/<class>/.
    fn new(class: &str, names: &[&str]) -> Self {
        let dir = Path::new(CANARY).join(class);
        if std::fs::symlink_metadata(&dir).is_ok() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let marker = random_hex();
        let mut files = BTreeMap::new();
        for name in names {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            // Python source: compiled, it still carries the marker, as a constant.
            let body = format!("SECRET = \"{marker}\"  # canary {class}/{name}\n").into_bytes();
            std::fs::write(&path, &body).unwrap();
            files.insert(name.to_string(), body);
        }
        Canary { dir, files, marker }
    }

    /// Every canary is still a regular file with its bytes, and nothing was added to or
    /// removed from the directory.
    fn assert_intact(&self) {
        for (name, body) in &self.files {
            let path = self.dir.join(name);
            let meta = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("the canary {} is gone: {e}", path.display()));
            assert!(
                meta.file_type().is_file(),
                "the canary {} was replaced",
                path.display()
            );
            assert!(
                std::fs::read(&path).unwrap() == *body,
                "the canary {} was overwritten",
                path.display()
            );
        }
        let mut expected = BTreeSet::new();
        for name in self.files.keys() {
            let mut path = PathBuf::new();
            for part in Path::new(name).components() {
                path.push(part);
                expected.insert(path.clone());
            }
        }
        let found: BTreeSet<PathBuf> = walkdir::WalkDir::new(&self.dir)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(&self.dir)
                    .unwrap()
                    .to_path_buf()
            })
            .collect();
        assert_eq!(
            found,
            expected,
            "files were added to or removed from {}",
            self.dir.display()
        );
    }

    /// No image tagged in `repository` holds a canary's content.
    fn assert_not_in_images(&self, repository: &str) {
        for image in common::images_of(repository) {
            let found = common::found_in_image(&image, self.marker.as_bytes());
            assert!(
                found.is_empty(),
                "a canary's content leaked into {image} ({repository}): {found:?}"
            );
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The runtime image alone of 3.11-bookworm for linux/amd64 from `source`, whatever the
/// outcome.
fn build(source: &str, repository: &str, env: &[(&str, &str)]) -> Output {
    env.iter()
        .fold(
            common::build_amd64("3.11-bookworm", source, repository, &[])
                .args(["--variants", "runtime"])
                .any_status(),
            |test, (k, v)| test.env(k, v),
        )
        .run()
}

fn show(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// dpy refused `source`: exit 12, and one `dpy: error:` line, the last, naming it.
fn assert_refused(out: &Output, source: &str) {
    assert_eq!(out.status.code(), Some(12), "exit code\n{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("dpy: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line\n{}", show(out));
    assert!(
        stderr.trim_end().ends_with(errors[0]),
        "the error is the last line\n{}",
        show(out)
    );
    assert!(
        errors[0].contains(source),
        "the error names {source}\n{}",
        show(out)
    );
}

fn assert_built(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "exit code\n{}", show(out));
}

/// The runtime image's /etc/passwd and /etc/group are regular files, dpy's own.
fn assert_own_accounts(image: &str) {
    let seen = common::python_in(
        image,
        &[
            "-c",
            "import os\nfor p in ('/etc/passwd', '/etc/group'):\n    print(p, os.path.islink(p), os.path.isfile(p))\nprint(open('/etc/passwd').read())",
        ],
    );
    let seen = String::from_utf8_lossy(&seen.stdout);
    for expected in [
        "/etc/passwd False True",
        "/etc/group False True",
        "nonroot:x:65532:65532:",
    ] {
        assert!(seen.contains(expected), "{image}: {expected:?} in {seen}");
    }
}

/// The class's source, built: the canaries hold and did not leak, dpy refused it, and
/// nothing is left.
fn refused(class: &str, canaries: &[&str]) {
    let source = common::hostile_source(class, "amd64");
    common::require_image(&source);
    let canary = Canary::new(class, canaries);
    let repository = common::unique_repository(&format!("hostile-{class}"));
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    assert_refused(&out, &source);
    before.assert_nothing_left(&repository);
}

#[test]
fn links_to_host_files_are_never_written_through() {
    if !common::engine("hostile::write-link") {
        return;
    }
    // Dropped safely rather than refused: a link, absolute or climbing, is at home in an
    // image root, and dpy writes its own /etc/passwd and /etc/group in place of whatever
    // is there. root/etc/passwd links to the canary by its absolute path, root/etc/group
    // by one that climbs out of the export; the image is built, and both files in it
    // are dpy's own, regular files.
    let source = common::hostile_source("write-link", "amd64");
    common::require_image(&source);
    let canary = Canary::new("write-link", &["passwd", "group"]);
    let repository = common::unique_repository("hostile-write-link");
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    assert_built(&out);
    let image = format!("{repository}:3.11-bookworm");
    assert_own_accounts(&image);
    common::docker_ok(&["image", "rm", &image]);
    before.assert_nothing_left(&repository);
}

#[test]
fn links_to_host_files_are_never_read_into_an_image() {
    if !common::engine("hostile::read-link") {
        return;
    }
    // The stdlib's json/tool.pyc links to a host file, its xmlrpc package to a host
    // directory (a climbing link), and the ensurepip stub package (stubs/ensurepip) to
    // another (an absolute link): all three go into the stdlib zip.
    refused(
        "read-link",
        &[
            "secret",
            "package/__init__.pyc",
            "package/client.pyc",
            "stub/__init__.pyc",
            "stub/__main__.pyc",
        ],
    );
}

#[test]
fn a_layout_naming_a_host_directory_as_the_stdlib_is_refused() {
    if !common::engine("hostile::layout-path") {
        return;
    }
    // layout.json's python.stdlib climbs to a host directory that dpy would zip, empty
    // and write its start-up files into; stdlib_keep_out and hot gain climbing entries.
    refused(
        "layout-path",
        &[
            "stdlib/os.pyc",
            "stdlib/json/__init__.pyc",
            "keep-out/secret",
            "hot.pyc",
        ],
    );
}

#[test]
fn a_layout_naming_host_paths_for_what_dpy_writes_is_refused() {
    if !common::engine("hostile::layout-zip") {
        return;
    }
    // layout.json's python.stdlib_zip climbs to a host file that dpy would overwrite
    // with the stdlib zip, python.purelib to a host directory it would make
    // (made-by-dpy: nothing may appear beside the canaries).
    refused("layout-zip", &["python311-stdlib.zip", "secret"]);
}

#[test]
fn a_stdlib_list_naming_host_files_is_refused() {
    if !common::engine("hostile::stdlib-json") {
        return;
    }
    // Compile once (src/bytecode.rs) fills the emulated platform's stdlib from the native
    // platform's bytecode: for every source that platform's stdlib.json lists, it reads
    // the source, has it compiled natively and removes it. The hook poisons the platform
    // whose gather stage copied its sources (arm64 here): two keys name host files, one
    // absolute, one climbing; each has its .pyc beside it, as the check after compiling
    // looks for. The native platform's list is the gather stage's own.
    let template = common::hostile_source("stdlib-json", "{arch}");
    for arch in ["amd64", "arm64"] {
        common::require_image(&common::hostile_source("stdlib-json", arch));
    }
    let canary = Canary::new(
        "stdlib-json",
        &["secret.py", "secret.pyc", "climb.py", "climb.pyc"],
    );
    let repository = common::unique_repository("hostile-stdlib-json");
    let before = common::Engine::now();
    let out = common::Test::new()
        .args(common::build_argv("3.11-bookworm", &template, &repository))
        .args([
            "--platform",
            "linux/amd64,linux/arm64",
            "--variants",
            "runtime",
        ])
        .any_status()
        .run();
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    assert_refused(&out, &common::hostile_source("stdlib-json", "arm64"));
    before.assert_nothing_left(&repository);
}

#[test]
fn hard_links_never_reach_a_host_file() {
    if !common::engine("hostile::hard-link") {
        return;
    }
    // The hook makes root/etc/passwd, which dpy writes, a second name of a symlink to
    // the canary (etc/opasswd), hard-links the source's /etc/shadow (outside /dpy-out)
    // into the root and gives that a second name there. What BuildKit (Docker 20.10)
    // exports: two symlinks (a hard link to a symlink is not kept), a regular file (the
    // other name is outside the copy) and a hard link entry to it, which dpy may take.
    // So the engine decides what reaches dpy: built, with dpy's own /etc/passwd in place
    // of the link, as for write-link; or, from an engine that exports the hard link to
    // the symlink, refused in one line. (A hard link entry that climbs out of the export
    // cannot come out of BuildKit; the unit tests of the export's reader cover it.)
    let source = common::hostile_source("hard-link", "amd64");
    common::require_image(&source);
    let canary = Canary::new("hard-link", &["passwd"]);
    let repository = common::unique_repository("hostile-hard-link");
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    if out.status.code() == Some(0) {
        let image = format!("{repository}:3.11-bookworm");
        assert_own_accounts(&image);
        common::docker_ok(&["image", "rm", &image]);
    } else {
        assert_refused(&out, &source);
    }
    before.assert_nothing_left(&repository);
}

#[test]
fn setuid_and_setgid_bits_never_reach_the_runtime_image() {
    if !common::engine("hostile::setuid") {
        return;
    }
    // Dropped safely rather than refused: the root gets copies of dash with mode 04755
    // (su-dash) and 02755 (sg-dash); the runtime image is built, and no file in it has
    // a setuid or setgid bit (whether dpy keeps the files without them is its choice).
    let source = common::hostile_source("setuid", "amd64");
    common::require_image(&source);
    let canary = Canary::new("setuid", &["secret"]);
    let repository = common::unique_repository("hostile-setuid");
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    assert_built(&out);
    let image = format!("{repository}:3.11-bookworm");
    let entries = common::layer_entries(&image);
    assert!(
        entries.iter().any(|e| e.path.ends_with("usr/bin/dash")),
        "{image}: the layer holds dash ({} entries)",
        entries.len()
    );
    let special: Vec<String> = entries
        .iter()
        .filter(|e| e.mode & 0o6000 != 0)
        .map(|e| format!("{} {:o}", e.path, e.mode))
        .collect();
    assert!(
        special.is_empty(),
        "{image} has setuid or setgid files: {special:?}"
    );
    common::docker_ok(&["image", "rm", &image]);
    before.assert_nothing_left(&repository);
}

#[test]
fn a_device_node_never_reaches_an_image() {
    if !common::engine("hostile::device") {
        return;
    }
    // mknod works in BuildKit's RUN (the hook makes a character device 1,3 in the root),
    // but the export stage's COPY turns the node into an empty regular file (the
    // engine's BuildKit, Docker 20.10): no device entry reaches dpy through this engine,
    // which builds the image. An engine that exported the node would have it refused in
    // one line. Either way, no image may carry a device node.
    let source = common::hostile_source("device", "amd64");
    common::require_image(&source);
    let canary = Canary::new("device", &["secret"]);
    let repository = common::unique_repository("hostile-device");
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    for image in common::images_of(&repository) {
        let devices: Vec<String> = common::layer_entries(&image)
            .into_iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
                )
            })
            .map(|e| e.path)
            .collect();
        assert!(devices.is_empty(), "{image} carries {devices:?}");
    }
    if out.status.code() == Some(0) {
        common::docker_ok(&["image", "rm", &format!("{repository}:3.11-bookworm")]);
    } else {
        assert_refused(&out, &source);
    }
    before.assert_nothing_left(&repository);
}

#[test]
fn an_entrypoint_that_would_inject_dockerfile_steps_is_refused() {
    if !common::engine("hostile::entrypoint") {
        return;
    }
    // layout.json's python.entrypoint closes the ENTRYPOINT line of the runtime
    // Dockerfile and adds `USER 0`, `RUN echo pwned > pwned` (dash's echo, in the
    // working directory) and an ENTRYPOINT of its own after it.
    let source = common::hostile_source("entrypoint", "amd64");
    common::require_image(&source);
    let canary = Canary::new("entrypoint", &["secret"]);
    let repository = common::unique_repository("hostile-entrypoint");
    let before = common::Engine::now();
    let out = build(&source, &repository, &[]);
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    for image in common::images_of(&repository) {
        assert!(
            !common::layer_entries(&image).iter().any(|e| e
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                == Some("pwned")),
            "the injected RUN step ran: {image} has a file named pwned"
        );
    }
    assert_refused(&out, &source);
    before.assert_nothing_left(&repository);
}

#[test]
fn an_export_over_the_limits_is_refused() {
    if !common::engine("hostile::oversized") {
        return;
    }
    // An ordinary export of the Debian source is 41.2 MB in about 2,500 entries
    // (measured); the hook adds a 64 MiB file and 6,000 empty ones. The limits sit
    // between the two, and the ordinary source passes them (last).
    const MAX_BYTES: (&str, &str) = ("DPY_MAX_EXPORT_BYTES", "80000000");
    const MAX_FILES: (&str, &str) = ("DPY_MAX_EXPORT_FILES", "5000");
    let source = common::hostile_source("oversized", "amd64");
    common::require_image(&source);
    let canary = Canary::new("oversized", &["secret"]);
    let repository = common::unique_repository("hostile-oversized");
    let before = common::Engine::now();
    for limit in [MAX_BYTES, MAX_FILES] {
        let out = build(&source, &repository, &[limit]);
        canary.assert_intact();
        canary.assert_not_in_images(&repository);
        assert_refused(&out, &source);
        before.assert_nothing_left(&repository);
    }
    let debian = common::debian_source();
    common::require_image(&debian);
    let out = build(&debian, &repository, &[MAX_BYTES, MAX_FILES]);
    assert_built(&out);
    common::docker_ok(&["image", "rm", &format!("{repository}:3.11-bookworm")]);
    before.assert_nothing_left(&repository);
}

#[test]
fn terminal_escapes_from_the_source_never_reach_the_terminal() {
    if !common::engine("hostile::escapes") {
        return;
    }
    // Dropped safely rather than refused: the hook prints a window title (OSC 0), clear
    // screen (CSI 2J), an OSC 8 hyperlink, a carriage return, a right-to-left override
    // and C1's CSI (as U+009B and as a bare 0x9b byte) on stdout and stderr, in plain
    // lines and in DPY-WARN lines, and tampers with nothing. The image is built, and
    // none of it reaches dpy's output; the warning itself is still shown.
    let source = common::hostile_source("escapes", "amd64");
    common::require_image(&source);
    let canary = Canary::new("escapes", &["secret"]);
    let repository = common::unique_repository("hostile-escapes");
    let before = common::Engine::now();
    // No cache: the hook's lines show only when the gather step runs.
    let out = common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .args(["--variants", "runtime", "--no-cache"])
        .any_status()
        .run();
    canary.assert_intact();
    canary.assert_not_in_images(&repository);
    assert_built(&out);
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
            panic!(
                "dpy's {stream} is not UTF-8 ({e}): a bare byte of the source passed\n{}",
                show(&out)
            )
        });
        for (what, c) in [
            ("ESC", '\u{1b}'),
            ("C1 CSI", '\u{9b}'),
            ("a carriage return", '\r'),
            ("a right-to-left override", '\u{202e}'),
        ] {
            assert!(
                !text.contains(c),
                "{what} from the source reached dpy's {stream}: {text:?}"
            );
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("dpy-hostile at start")),
        "the source's warning is shown\n{}",
        show(&out)
    );
    common::docker_ok(&["image", "rm", &format!("{repository}:3.11-bookworm")]);
    before.assert_nothing_left(&repository);
}

#[test]
fn a_pip_version_that_is_no_word_is_refused() {
    if !common::engine("hostile::pip-version") {
        return;
    }
    // The source's pip says its version is `23"; RUN id`. The gather's own_pip writes it
    // into layout.json on every platform (an emulated one takes its -buildroot's base
    // from it), where it would reach the metadata, the image and the terminal: refused,
    // natively and under qemu alike.
    const PIP: &str = r#"printf '__version__ = "23\"; RUN id"\n' >> "$(python3 -c 'import pip; print(pip.__file__)')""#;
    let amd64 = common::derived_image("pip-version-amd64", &common::debian_source(), PIP);
    let arm64 = common::image_tagged(
        "dpy-test/pip-version-arm64:1",
        &format!("FROM --platform=linux/arm64 dpy-testbed/python:3.11-bookworm-arm64\nRUN {PIP}\n"),
    );
    let repository = common::unique_repository("hostile-pip");
    let before = common::Engine::now();
    for (source, platform) in [(&amd64, "linux/amd64"), (&arm64, "linux/arm64")] {
        let out = common::build_amd64("3.11-bookworm", source, &repository, &[])
            .args(["--platform", platform])
            .any_status()
            .run();
        assert_refused(&out, source);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r#"layout.json dpy refuses: pip "23\"; RUN id""#),
            "{}",
            show(&out)
        );
        before.assert_nothing_left(&repository);
    }
}
