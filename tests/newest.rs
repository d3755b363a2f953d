//! The newest Pythons, 3.14 and 3.15, in Debian's own layout (interpreter and stdlib
//! under /usr), from Debian unstable's packages (scripts/testbed-sid): each builds, and
//! `dpy test` passes every check on it, the stdlib zip's index among them (3.14's
//! zipimport lists a zip's implicit directories, and the index must be what it reads).

use crate::common;
use crate::common::Test;

/// Builds the runtime image of `<python>-trixie` from the sid stand-in and runs `dpy test`
/// on it; returns what `dpy test` printed.
fn builds_and_passes(python: &str) -> String {
    let source = common::sid_source(python);
    common::require_image(&source);
    let repository = common::unique_repository(&format!("newest{}", python.replace('.', "")));
    let target = format!("{python}-trixie");
    common::build_amd64(&target, &source, &repository, &[])
        .args(["--variants", "runtime", "--metadata-file", "/dev/null"])
        .run();
    let image = format!("{repository}:{target}");
    let out = Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .stdout_contains("ok   startup-zip")
        .run();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn python_3_14_builds_and_passes_dpy_test() {
    if !common::engine("newest::3.14") {
        return;
    }
    let report = builds_and_passes("3.14");
    // The index holds the implicit directories 3.14's zipimport adds (json/, ...), so
    // it has more names than the zip has entries.
    assert!(report.contains("equals zipimport's reading"), "{report}");
}

#[test]
fn python_3_15_builds_and_passes_dpy_test() {
    if !common::engine("newest::3.15") {
        return;
    }
    builds_and_passes("3.15");
}

/// A 3.15 source given for a 3.14 target is refused by the gather stage, naming both.
#[test]
fn a_3_15_source_is_not_built_as_3_14() {
    if !common::engine("newest::mislabel") {
        return;
    }
    let source = common::sid_source("3.15");
    common::require_image(&source);
    let repository = common::unique_repository("mislabel");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv("3.14-trixie", &source, &repository))
        .args(["--metadata-file", "/dev/null"])
        .status(12)
        .stderr_contains(
            "the target is Python 3.14 but the source image's interpreter is Python 3.15.",
        )
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}
