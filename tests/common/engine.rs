//! The engine gate, and what a failed build must not leave in the engine.

use super::{containers, docker_ok, images_of, BIN};

/// Whether the tests must find an engine (CI) rather than skip.
pub fn engine_required() -> bool {
    std::env::var("DPY_REQUIRE_ENGINE").is_ok_and(|v| v == "1")
}

/// A test that cannot do what it is for on this machine: a failure when the suite is
/// required to test everything (DPY_REQUIRE_ENGINE=1, as CI runs it), else a line that
/// says so. Never a silent pass.
pub fn cannot_test(test: &str, why: &str) {
    assert!(
        !engine_required(),
        "{test}: cannot test here: {why} (DPY_REQUIRE_ENGINE=1 makes that a failure)"
    );
    eprintln!("SKIPPED {test}: {why}");
}

/// A platform (`linux/<arch>`) this machine has no binfmt handler for, so that the engine
/// cannot run it, or None when it can run every one dpy knows of besides its own.
pub fn unrunnable_platform() -> Option<&'static str> {
    // (platform, the qemu machine name its handler is registered under)
    [
        ("linux/s390x", "s390x"),
        ("linux/riscv64", "riscv64"),
        ("linux/ppc64le", "ppc64le"),
    ]
    .into_iter()
    .find(|(_, machine)| {
        !std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{machine}")).exists()
    })
    .map(|(platform, _)| platform)
}

/// `true` when a Docker engine answers. Without one: fails when required, else skips.
pub fn engine(test: &str) -> bool {
    let answered = std::process::Command::new(BIN)
        .args(["doctor"])
        .output()
        .map(|o| {
            o.status.code() != Some(10)
                && !String::from_utf8_lossy(&o.stdout).contains("MISSING engine")
        })
        .unwrap_or(false);
    if !answered {
        assert!(
            !engine_required(),
            "{test}: DPY_REQUIRE_ENGINE=1 but no Docker engine answers; run scripts/testbed"
        );
        eprintln!("SKIPPED {test}: no Docker engine (set DPY_REQUIRE_ENGINE=1 to fail instead)");
    }
    answered
}

/// What the engine holds that a failed build must not add to: containers, and untagged
/// images that dpy built (they carry its io.dpy.profile label; a test-bed image left
/// untagged by a rebuild does not count).
pub struct Engine {
    containers: Vec<String>,
    dangling: Vec<String>,
}

fn dpy_dangling() -> Vec<String> {
    docker_ok(&[
        "image",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        "label=io.dpy.profile",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

impl Engine {
    pub fn now() -> Self {
        Engine {
            containers: containers(),
            dangling: dpy_dangling(),
        }
    }

    /// No tag in `repository`, no new container, no new dangling image of dpy's.
    pub fn assert_nothing_left(&self, repository: &str) {
        assert!(
            images_of(repository).is_empty(),
            "no image tagged in {repository}"
        );
        assert_no_new_containers(&self.containers);
        self.assert_no_new_dangling();
    }

    /// The engine creates a built image before it tags it, so another test's build in
    /// flight shows an untagged image for a moment: a leak is one there for a whole window.
    pub fn assert_no_new_dangling(&self) {
        let left = persisting(&self.dangling, dpy_dangling);
        assert!(left.is_empty(), "dangling images left: {left:?}");
    }
}

/// No container created since `before` is left. Tests run two at a time and the other
/// one may have containers of its own running (dpy test removes its containers when they
/// exit; a survey of a large stdlib under load runs for tens of seconds), so a leak is a
/// container that stays through a whole window, not one seen at some moment.
pub fn assert_no_new_containers(before: &[String]) {
    let left = persisting(before, containers);
    assert!(left.is_empty(), "stray containers: {left:?}");
}

/// What `list` holds beyond `before` at every look over 90 s, ending early when nothing
/// is new. Each look keeps only what every earlier look saw too: another test's
/// short-lived containers come and go, and one that went is not a leak, even when
/// another has taken its place.
fn persisting(before: &[String], list: fn() -> Vec<String>) -> Vec<String> {
    let new = || -> Vec<String> {
        list()
            .into_iter()
            .filter(|item| !before.contains(item))
            .collect()
    };
    let mut left = new();
    for _ in 0..180 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = new();
        left.retain(|item| now.contains(item));
    }
    left
}
