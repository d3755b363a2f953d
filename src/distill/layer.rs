//! The runtime root as one deterministic tar: the single layer of the runtime image.
//!
//! Entries are sorted, every timestamp is SOURCE_DATE_EPOCH, owners are root except the
//! nonroot home. Two builds of the same source therefore give the same layer digest.

use std::path::Path;

use crate::error::{Error, Result};
use crate::runtime::NONROOT_UID;
use crate::tree::{Kind, Tree};

/// Archives `root` (its contents, not the directory itself).
pub fn tar_root(root: &Tree, owned_by_nonroot: &[&str], mtime: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for walked in root.walk("", &|_: &Path| false)? {
        let relative = walked.path.as_path();
        let inside = format!("/{}", relative.display());
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        let owner = if owned_by_nonroot.iter().any(|p| *p == inside) {
            NONROOT_UID
        } else {
            0
        };
        header.set_uid(owner.into());
        header.set_gid(owner.into());
        header.set_mode(walked.mode);
        let result = match walked.kind {
            Kind::Link => {
                let target = root.read_link(relative)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, relative, &target)
            }
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, relative, std::io::empty())
            }
            Kind::File => {
                let data = root.read(relative)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, relative, data.as_slice())
            }
            // Device nodes, sockets and fifos have no place in an image root.
            Kind::Other => continue,
        };
        result.map_err(|e| Error::Distill(format!("archiving {inside}: {e}")))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::Distill(format!("archiving the root: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn same_tree_same_bytes_with_fixed_owners_and_times() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("home/nonroot")).unwrap();
        std::fs::create_dir_all(r.join("tmp")).unwrap();
        std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::write(r.join("a"), "x").unwrap();
        symlink("a", r.join("b")).unwrap();
        let one = tar_root(&Tree::open(r).unwrap(), &["/home/nonroot"], 7).unwrap();
        std::fs::write(r.join("a"), "x").unwrap(); // new mtime on disk
        let two = tar_root(&Tree::open(r).unwrap(), &["/home/nonroot"], 7).unwrap();
        assert_eq!(one, two);

        let mut archive = tar::Archive::new(one.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            let path = entry.path().unwrap().display().to_string();
            assert_eq!(h.mtime().unwrap(), 7);
            match path.trim_end_matches('/') {
                "home/nonroot" => assert_eq!(h.uid().unwrap(), 65532),
                "tmp" => assert_eq!(h.mode().unwrap(), 0o1777),
                "b" => assert_eq!(entry.link_name().unwrap().unwrap().to_str(), Some("a")),
                _ => assert_eq!(h.uid().unwrap(), 0),
            }
            seen.push(path);
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
    }
}
