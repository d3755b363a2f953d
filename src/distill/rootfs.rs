//! Paths inside a root directory on the host, resolved the way the container will see them.
//!
//! A root gathered from a merged-/usr image holds symlinks such as `lib64 -> usr/lib64`
//! and absolute ones such as `/etc/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt`.
//! Following them with the host's resolver would leave the root; these helpers keep every
//! lookup inside it.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute, as seen inside the container) to a host path under `root`,
/// following symlinks inside the root. `None` when it does not exist there.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." | "" => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = host_path(root, &resolved).join(&part);
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                resolved.clear();
            }
            let mut more = components(&target);
            more.reverse();
            pending.extend(more);
        } else {
            resolved.push(part);
        }
    }
    Some(host_path(root, &resolved))
}

/// Whether `path` exists inside `root` once symlinks are followed.
pub fn exists(root: &Path, path: &str) -> bool {
    resolve(root, path).is_some_and(|p| p.exists())
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn host_path(root: &Path, parts: &[String]) -> PathBuf {
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

/// The host path of an absolute in-container path, without following symlinks.
pub fn join(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Lays `upper` over `lower` as an image layer over another: files and links of
/// `upper` replace those of `lower`; directories that `lower` has (or reaches through a
/// link of the same name) are entered, not replaced.
pub fn overlay(upper: &Path, lower: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(upper)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry =
            entry.map_err(|e| Error::Distill(format!("reading {}: {e}", upper.display())))?;
        let relative = entry.path().strip_prefix(upper).expect("under upper");
        let to = lower.join(relative);
        let kind = entry.file_type();
        if kind.is_dir() {
            // In an image, a directory in the upper layer hides a link below it (a
            // merged-/usr root's /bin -> usr/bin): refused, not copied through the link.
            if to.is_symlink() {
                return Err(Error::Distill(format!(
                    "the directory {} would hide the runtime root's link of that name",
                    relative.display()
                )));
            }
            if !to.exists() {
                std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
            }
            continue;
        }
        if to.symlink_metadata().is_ok() {
            if to.is_dir() && !to.is_symlink() {
                return Err(Error::Distill(format!(
                    "{} would replace a directory of the runtime root",
                    relative.display()
                )));
            }
            std::fs::remove_file(&to).map_err(|e| Error::io(&to, e))?;
        }
        if kind.is_symlink() {
            let target =
                std::fs::read_link(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            std::os::unix::fs::symlink(&target, &to).map_err(|e| Error::io(&to, e))?;
        } else {
            std::fs::copy(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn follows_merged_usr_and_absolute_links_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/lib64")).unwrap();
        std::fs::write(r.join("usr/lib64/ld.so"), "x").unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        std::fs::create_dir_all(r.join("etc/ssl/certs")).unwrap();
        std::fs::write(r.join("etc/ssl/certs/bundle.crt"), "x").unwrap();
        symlink("/etc/ssl/certs/bundle.crt", r.join("etc/ssl/cert.pem")).unwrap();
        symlink("../../usr/lib64/ld.so", r.join("etc/ssl/up")).unwrap();

        assert_eq!(
            resolve(r, "/lib64/ld.so").unwrap(),
            r.join("usr/lib64/ld.so")
        );
        assert!(exists(r, "/etc/ssl/cert.pem"));
        assert!(exists(r, "/etc/ssl/up"));
        assert!(!exists(r, "/lib64/missing.so"));
    }

    #[test]
    fn an_overlay_replaces_files_and_links_and_enters_directories() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        let (l, u) = (lower.path(), upper.path());
        std::fs::create_dir_all(l.join("usr/bin")).unwrap();
        symlink("usr/bin", l.join("bin")).unwrap();
        std::fs::write(l.join("usr/bin/python3"), "py").unwrap();
        std::fs::write(l.join("usr/bin/status"), "old").unwrap();
        std::fs::create_dir_all(u.join("usr/bin")).unwrap();
        symlink("usr/bin", u.join("bin")).unwrap();
        std::fs::write(u.join("usr/bin/busybox"), "bb").unwrap();
        std::fs::write(u.join("usr/bin/status"), "new").unwrap();
        symlink("/usr/bin/busybox", u.join("usr/bin/ls")).unwrap();

        overlay(u, l).unwrap();
        let read = |p: &str| std::fs::read_to_string(l.join(p)).unwrap();
        assert_eq!(read("bin/python3"), "py");
        assert_eq!(read("usr/bin/busybox"), "bb");
        assert_eq!(read("usr/bin/status"), "new");
        assert_eq!(
            std::fs::read_link(l.join("usr/bin/ls")).unwrap(),
            Path::new("/usr/bin/busybox")
        );
        assert!(l.join("bin").is_symlink());

        // A real directory where the lower root has a link would hide the link.
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(upper.path().join("bin")).unwrap();
        assert!(overlay(upper.path(), l).is_err());
    }

    #[test]
    fn a_link_loop_does_not_hang() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(resolve(root.path(), "/a").is_none());
    }
}
