//! `_dpy_zipimport` on every Python this machine has: encodings, as gather.py compiles it,
//! leaves the zip alone until its first import (3.9 installs the hook at start); modules
//! from the zip are unmarshalled once per import from 3.10 on, with the zip's directory
//! from the index beside the hook, and 3.9 (whose zipimporter loads through load_module)
//! is left as it was; and the compiled encodings keeps every line. No engine needed: a
//! zip built by each interpreter.

use std::path::Path;
use std::process::Command;

const HOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/context/_dpy_zipimport.py"
);
const GATHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/context/gather.py");
const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/zip_reads_probe.py");

/// `python3.9` … `python3.14` on PATH, /usr/bin/python3, and pyenv's installs
/// ($PYENV_ROOT or ~/.pyenv), one per version.
fn interpreters() -> Vec<String> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut candidates: Vec<String> = (9..=14).map(|minor| format!("python3.{minor}")).collect();
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
        // dpy's matrix: 3.9 to 3.14.
        let supported = version
            .strip_prefix("3.")
            .and_then(|minor| minor.parse::<u32>().ok())
            .is_some_and(|minor| (9..=14).contains(&minor));
        if out.status.success() && supported && !found.iter().any(|(v, _)| *v == version) {
            found.push((version, candidate));
        }
    }
    found.into_iter().map(|(_, path)| path).collect()
}

#[test]
fn each_module_is_unmarshalled_once_from_3_10_on() {
    assert!(Path::new(HOOK).exists() && Path::new(PROBE).exists());
    let pythons = interpreters();
    assert!(
        !pythons.is_empty(),
        "no Python 3 on this machine to try _dpy_zipimport with (scripts/testbed installs one)"
    );
    for python in pythons {
        let out = Command::new(&python)
            .args([PROBE, HOOK, GATHER])
            .output()
            .unwrap();
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
    }
}
