//! `_dpy_zipimport` on every Python this machine has: encodings, as gather.py compiles it,
//! leaves the zip alone until its first import (3.9 installs the hook at start); modules
//! from the zip are unmarshalled once per import from 3.10 on, with the zip's directory
//! from the index beside the hook, and 3.9 (whose zipimporter loads through load_module)
//! is left as it was; and the compiled encodings keeps every line. A zip built by each
//! interpreter: those of this machine (PATH, pyenv) and, with an engine, those of the test
//! bed's stand-ins (Debian's 3.11, 3.14 and 3.15, the official layout's 3.13, musl's 3.11
//! and 3.13). It says which versions it ran on; a Python of images/matrix.toml it found
//! nowhere fails the test when the engine is required (DPY_REQUIRE_ENGINE=1).

use std::path::Path;
use std::process::Command;

const HOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/context/_dpy_zipimport.py"
);
const GATHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/context/gather.py");
const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/zip_reads_probe.py");

/// The test bed's stand-ins and the interpreter each carries (scripts/testbed*).
fn stand_ins() -> Vec<(String, &'static str)> {
    vec![
        (crate::common::debian_source(), "python3"),
        (crate::common::slim_source("3.13"), "python3"),
        (crate::common::alpine_source("3.11"), "python3"),
        (crate::common::alpine_source("3.13"), "python3"),
        (crate::common::sid_source("3.14"), "python3.14"),
        (crate::common::sid_source("3.15"), "python3.15"),
    ]
}

/// A Python to try: a command of this machine, or an interpreter in a test-bed image.
enum Python {
    Host(String),
    Image {
        image: String,
        command: &'static str,
    },
}

impl Python {
    fn name(&self) -> String {
        match self {
            Python::Host(path) => path.clone(),
            Python::Image { image, command } => format!("{command} in {image}"),
        }
    }

    /// The interpreter run with `args`; paths under the repository are given as they are
    /// on this machine and mounted read-only at the same place in a container.
    fn run(&self, args: &[&str]) -> std::process::Output {
        match self {
            Python::Host(path) => Command::new(path).args(args).output().unwrap(),
            Python::Image { image, command } => {
                let root = env!("CARGO_MANIFEST_DIR");
                let mount = format!("{root}:{root}:ro");
                Command::new("/usr/bin/docker")
                    .args(["run", "--rm", "--network", "none", "-v", &mount])
                    .args(["--entrypoint", command, image])
                    .args(args)
                    .output()
                    .unwrap()
            }
        }
    }
}

/// The Pythons images/matrix.toml lists (3.9, ..., 3.15).
fn matrix_pythons() -> Vec<String> {
    let matrix: toml::Table =
        toml::from_str(include_str!("../images/matrix.toml")).expect("images/matrix.toml parses");
    matrix["python"]
        .as_array()
        .expect("`python` is a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// `python3.X` on PATH for each X of the matrix, /usr/bin/python3, and pyenv's installs
/// ($PYENV_ROOT or ~/.pyenv), one per version of the matrix.
fn host_interpreters() -> Vec<String> {
    let matrix = matrix_pythons();
    let mut found: Vec<(String, String)> = Vec::new();
    let mut candidates: Vec<String> = matrix.iter().map(|v| format!("python{v}")).collect();
    candidates.push("/usr/bin/python3".into());
    candidates.push("python3".into());
    let pyenv = std::env::var("PYENV_ROOT").ok().or_else(|| {
        std::env::var("HOME")
            .ok()
            .map(|home| format!("{home}/.pyenv"))
    });
    if let Some(Ok(versions)) =
        pyenv.map(|root| std::fs::read_dir(Path::new(&root).join("versions")))
    {
        let mut dirs: Vec<_> = versions
            .flatten()
            .map(|e| e.path().join("bin/python3"))
            .collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().map(|p| p.display().to_string()));
    }
    for candidate in candidates {
        let Ok(out) = Command::new(&candidate)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
        else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let supported = matrix.contains(&version);
        if out.status.success() && supported && !found.iter().any(|(v, _)| *v == version) {
            found.push((version, candidate));
        }
    }
    found.into_iter().map(|(_, path)| path).collect()
}

#[test]
fn each_module_is_unmarshalled_once_from_3_10_on() {
    assert!(Path::new(HOOK).exists() && Path::new(PROBE).exists());
    let mut pythons: Vec<Python> = host_interpreters().into_iter().map(Python::Host).collect();
    if crate::common::engine("zip_reads::stand-ins") {
        for (image, command) in stand_ins() {
            crate::common::require_image(&image);
            pythons.push(Python::Image { image, command });
        }
    }
    let mut tried: Vec<String> = Vec::new();
    for python in pythons {
        let out = python.run(&[PROBE, HOOK, GATHER]);
        let python = python.name();
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "{python}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 9, "{python}: {line}");
        let minor: u32 = fields[0].split('.').nth(1).unwrap().parse().unwrap();
        // From 3.10 the hook waits for the first import from the zip and then unmarshals
        // each module once, from a view of its bytes: zipimport unmarshals none of them.
        let (reads, by_zipimport, loader, start) = if minor >= 10 {
            ("3", "0", "StdlibZipImporter", "waited")
        } else {
            ("6", "6", "zipimporter", "installed-at-start")
        };
        assert_eq!(
            &fields[1..],
            [
                reads,
                by_zipimport,
                loader,
                loader,
                "traceback-ok",
                "indexed",
                "encodings-ok",
                start
            ],
            "{python} ({}): three modules imported",
            fields[0]
        );
        eprintln!("zip_reads: {python} is Python {}: {line}", fields[0]);
        let minor = fields[0]
            .splitn(3, '.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        if !tried.contains(&minor) {
            tried.push(minor);
        }
    }
    let missing: Vec<String> = matrix_pythons()
        .into_iter()
        .filter(|v| !tried.contains(v))
        .collect();
    eprintln!(
        "zip_reads: ran on Python {}; not found: {}",
        tried.join(", "),
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        }
    );
    assert!(
        !tried.is_empty(),
        "no Python 3 on this machine to try _dpy_zipimport with (scripts/testbed installs one)"
    );
    assert!(
        missing.is_empty() || !crate::common::engine_required(),
        "no interpreter of Python {} on this machine or in the test bed: install it (pyenv install 3.X) or add a stand-in (scripts/testbed)",
        missing.join(", ")
    );
}
