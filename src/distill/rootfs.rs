//! Paths inside a root directory on the host, resolved the way the container will see them.
//!
//! A root gathered from a merged-/usr image holds symlinks such as `lib64 -> usr/lib64`
//! and absolute ones such as `/etc/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt`.
//! Following them with the host's resolver would leave the root; these helpers keep every
//! lookup inside it.

use std::path::{Component, Path, PathBuf};

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
    fn a_link_loop_does_not_hang() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(resolve(root.path(), "/a").is_none());
    }
}
