//! A check that every ELF file in the root can be loaded from the root alone.
//!
//! The gather stage copies the shared-library closure from the source image; this check
//! reads the result back with goblin and resolves every DT_NEEDED the way the loader
//! will (RPATH/RUNPATH with $ORIGIN, then the libc's own search path). A miss here is
//! a container that dies with "no such file or directory" at start, so it fails the build.

use goblin::elf::Elf;

use crate::error::{Error, Result};
use crate::tree::{Kind, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    Glibc,
    Musl,
}

/// The loader's default directories for `libc`, read from the root's own configuration.
pub fn search_dirs(root: &Tree, libc: Libc) -> Vec<String> {
    match libc {
        Libc::Musl => {
            let configured = root
                .names("etc")
                .into_iter()
                .find(|name| name.starts_with("ld-musl-") && name.ends_with(".path"))
                .and_then(|name| root.read_inside(&format!("/etc/{name}")));
            match configured {
                Some(text) => text
                    .split([':', '\n'])
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect(),
                None => ["/lib", "/usr/local/lib", "/usr/lib"]
                    .map(String::from)
                    .to_vec(),
            }
        }
        Libc::Glibc => {
            let mut dirs = Vec::new();
            read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, 0);
            for d in ["/lib", "/usr/lib", "/lib64", "/usr/lib64"] {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_string());
                }
            }
            dirs
        }
    }
}

fn read_ld_so_conf(root: &Tree, file: &str, dirs: &mut Vec<String>, depth: usize) {
    let Some(text) = root.read_inside(file) else {
        return;
    };
    if depth > 8 {
        return;
    }
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for included in expand_glob(root, pattern.trim()) {
                read_ld_so_conf(root, &included, dirs, depth + 1);
            }
        } else if line.starts_with('/') && !dirs.iter().any(|d| d == line) {
            dirs.push(line.to_string());
        }
    }
}

/// `include` lines use a `*` in the file name only (e.g. /etc/ld.so.conf.d/*.conf).
fn expand_glob(root: &Tree, pattern: &str) -> Vec<String> {
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    let Some((head, tail)) = name.split_once('*') else {
        return vec![pattern.to_string()];
    };
    let mut found: Vec<String> = root
        .resolve(dir)
        .map(|p| root.names(p))
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(head) && n.ends_with(tail) && n.len() >= head.len() + tail.len())
        .map(|n| format!("{dir}/{n}"))
        .collect();
    found.sort();
    found
}

/// Names musl's loader answers for itself (`libc.so`, `libm.so`, ...): all of them are
/// the one libc that is the loader, so they never need a file of their own.
pub fn musl_reserved(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    let Some((stem, tail)) = rest.split_once(".so") else {
        return false;
    };
    ["c", "pthread", "rt", "m", "dl", "util", "xnet"].contains(&stem)
        && (tail.is_empty() || tail.starts_with('.'))
}

/// The directories the loader tries for a DT_NEEDED name, in order: DT_RPATH unless
/// there is a DT_RUNPATH, then DT_RUNPATH, then the defaults; `$ORIGIN` is the directory
/// of the object that needs it, and empty entries are skipped. The gather stage collects
/// by the same rule (dpy_gather/probe.py): tests/data/loader_cases.json is the table of
/// cases both run.
pub fn search_order(
    rpaths: &[&str],
    runpaths: &[&str],
    origin: &str,
    defaults: &[String],
) -> Vec<String> {
    let expand = |list: &[&str]| -> Vec<String> {
        list.iter()
            .flat_map(|s| s.split(':'))
            .filter(|d| !d.is_empty())
            .map(|d| d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
            .collect()
    };
    let mut dirs = if runpaths.is_empty() {
        expand(rpaths)
    } else {
        Vec::new()
    };
    dirs.extend(expand(runpaths));
    dirs.extend(defaults.iter().cloned());
    dirs
}

/// One unresolved dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub needed: String,
    pub by: String,
}

/// Walks `root` and returns every ELF file's unresolved DT_NEEDED or PT_INTERP.
pub fn unresolved(root: &Tree, libc: Libc) -> Result<Vec<Missing>> {
    let defaults = search_dirs(root, libc);
    let mut missing = Vec::new();
    for walked in root.walk("", &|_: &std::path::Path| false)? {
        if walked.kind != Kind::File || walked.len < 64 {
            continue;
        }
        let data = root.read(&walked.path)?;
        if !data.starts_with(b"\x7fELF") {
            continue;
        }
        let Ok(elf) = Elf::parse(&data) else { continue };
        let inside = format!("/{}", walked.path.display());
        let origin = inside.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
        if let Some(interp) = elf.interpreter {
            if !root.exists(interp) {
                missing.push(Missing {
                    needed: interp.to_string(),
                    by: inside.clone(),
                });
            }
        }
        let dirs = search_order(&elf.rpaths, &elf.runpaths, origin, &defaults);
        for needed in &elf.libraries {
            if libc == Libc::Musl && musl_reserved(needed) {
                continue;
            }
            let found = if needed.contains('/') {
                root.exists(needed)
            } else {
                dirs.iter().any(|d| root.exists(&format!("{d}/{needed}")))
            };
            if !found {
                missing.push(Missing {
                    needed: needed.to_string(),
                    by: inside.clone(),
                });
            }
        }
    }
    Ok(missing)
}

/// Fails with one line naming the first unresolved libraries.
pub fn check_closure(root: &Tree, libc: Libc) -> Result<()> {
    let missing = unresolved(root, libc)?;
    if missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = missing
        .iter()
        .take(5)
        .map(|m| format!("{} (needed by {})", m.needed, m.by))
        .collect();
    Err(Error::Distill(format!(
        "the runtime root cannot load {} shared librar{}: {}{}; the source image lacks them or they are outside the loader's search path",
        missing.len(),
        if missing.len() == 1 { "y" } else { "ies" },
        shown.join(", "),
        if missing.len() > 5 { ", ..." } else { "" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_search_dirs_follow_ld_so_conf_includes() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(
            r.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
            "# multiarch\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/libc.conf"), "/usr/local/lib\n").unwrap();
        let dirs = search_dirs(&Tree::open(r).unwrap(), Libc::Glibc);
        assert_eq!(
            &dirs[..3],
            [
                "/usr/local/lib",
                "/usr/local/lib/x86_64-linux-gnu",
                "/lib/x86_64-linux-gnu"
            ]
        );
        assert!(dirs.contains(&"/usr/lib".to_string()));
    }

    #[test]
    fn musl_search_dirs_default_or_from_the_path_file() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            search_dirs(&Tree::open(root.path()).unwrap(), Libc::Musl),
            ["/lib", "/usr/local/lib", "/usr/lib"]
        );
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/ld-musl-x86_64.path"),
            "/opt/lib:/lib\n",
        )
        .unwrap();
        assert_eq!(
            search_dirs(&Tree::open(root.path()).unwrap(), Libc::Musl),
            ["/opt/lib", "/lib"]
        );
    }

    /// The table the gather stage's tests run too (tests/gather_py.rs).
    fn loader_cases() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/data/loader_cases.json")).unwrap()
    }

    #[test]
    fn the_search_order_follows_the_shared_table() {
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        for case in loader_cases()["search_order"].as_array().unwrap() {
            let (rpath, runpath) = (strings(&case["rpath"]), strings(&case["runpath"]));
            let rpath: Vec<&str> = rpath.iter().map(String::as_str).collect();
            let runpath: Vec<&str> = runpath.iter().map(String::as_str).collect();
            let dirs = search_order(
                &rpath,
                &runpath,
                case["origin"].as_str().unwrap(),
                &strings(&case["defaults"]),
            );
            assert_eq!(dirs, strings(&case["dirs"]), "{case}");
        }
        for case in loader_cases()["musl_reserved"].as_array().unwrap() {
            let (name, reserved) = (case[0].as_str().unwrap(), case[1].as_bool().unwrap());
            assert_eq!(musl_reserved(name), reserved, "{name}");
        }
    }

    #[test]
    fn musl_answers_for_its_reserved_names() {
        for name in ["libc.so", "libm.so", "libpthread.so", "libc.so.6"] {
            assert!(musl_reserved(name), "{name}");
        }
        for name in [
            "libcrypto.so.3",
            "libc.musl-x86_64.so.1",
            "libmagic.so",
            "c.so",
        ] {
            assert!(!musl_reserved(name), "{name}");
        }
    }

    #[test]
    fn the_host_interpreter_is_incomplete_in_an_empty_root() {
        // Copy a real dynamically linked binary from the host into an empty root:
        // its loader and libc are absent, and the check must say so.
        let root = tempfile::tempdir().unwrap();
        let host = ["/usr/bin/env", "/bin/ls"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("a host binary");
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::fs::copy(host, root.path().join("bin/tool")).unwrap();
        let missing = unresolved(&Tree::open(root.path()).unwrap(), Libc::Glibc).unwrap();
        assert!(
            missing.iter().any(|m| m.needed.starts_with("libc.so")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.needed.contains("ld-linux")),
            "{missing:?}"
        );
        let err = check_closure(&Tree::open(root.path()).unwrap(), Libc::Glibc).unwrap_err();
        assert!(err.to_string().contains("needed by /bin/tool"));
    }
}
