//! Users and groups of the runtime image: root and the unprivileged `nonroot` (65532).
//!
//! 65532 is the uid distroless images use, so volume permissions and Kubernetes
//! `runAsUser` settings carry over from them unchanged.

use std::path::Path;

use crate::error::Result;
use crate::runtime::{HOME, NONROOT_UID};
use crate::tree::Tree;

pub fn passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:{HOME}:/sbin/nologin\n"
    )
}

pub fn group() -> String {
    format!("root:x:0:\nnonroot:x:{NONROOT_UID}:\n")
}

/// Writes /etc/passwd, /etc/group and the home directory into `root`.
pub fn write(root: &Tree) -> Result<()> {
    root.create_dir_all("etc")?;
    for (name, body) in [("passwd", passwd()), ("group", group())] {
        // The gather stage never copies the source's accounts, but a -buildroot user
        // may have: ours replace them so the uid is always 65532. Whatever is at the
        // name (a link, from a hostile export) is replaced, never written through.
        root.write(Path::new("etc").join(name), 0o644, body.as_bytes())?;
    }
    root.create_dir_all(crate::tree::inside(HOME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonroot_is_65532_in_both_files() {
        assert!(passwd().contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"));
        assert!(group().contains("nonroot:x:65532:\n"));
        assert!(passwd().starts_with("root:x:0:0:"));
    }

    #[test]
    fn a_link_planted_at_passwd_is_replaced_not_written_through() {
        let base = tempfile::tempdir().unwrap();
        let host = base.path().join("host-passwd");
        std::fs::write(&host, "host").unwrap();
        std::fs::create_dir_all(base.path().join("root/etc")).unwrap();
        std::os::unix::fs::symlink(&host, base.path().join("root/etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../host-passwd", base.path().join("root/etc/group"))
            .unwrap();
        write(&Tree::open(&base.path().join("root")).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "host");
        let written = std::fs::read_to_string(base.path().join("root/etc/passwd")).unwrap();
        assert_eq!(written, passwd());
        assert!(base.path().join("root/home/nonroot").is_dir());
    }
}
