//! Users and groups of the runtime image: root and the unprivileged `nonroot` (65532).
//!
//! 65532 is the uid distroless images use, so volume permissions and Kubernetes
//! `runAsUser` settings carry over from them unchanged.

use std::path::Path;

use crate::error::{Error, Result};
use crate::runtime::{HOME, NONROOT_UID};

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
pub fn write(root: &Path) -> Result<()> {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| Error::io(&etc, e))?;
    for (name, body) in [("passwd", passwd()), ("group", group())] {
        let path = etc.join(name);
        // The gather stage never copies the source's accounts, but a -buildroot user
        // may have: ours replace them so the uid is always 65532.
        std::fs::write(&path, body).map_err(|e| Error::io(&path, e))?;
    }
    let home = super::rootfs::join(root, HOME);
    std::fs::create_dir_all(&home).map_err(|e| Error::io(&home, e))?;
    Ok(())
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
}
