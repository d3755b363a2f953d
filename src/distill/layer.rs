//! The runtime root as one deterministic tar: the single layer of the runtime image.
//!
//! Entries are sorted, every timestamp is SOURCE_DATE_EPOCH, owners are root except the
//! nonroot home. Two builds of the same source therefore give the same layer digest.
//!
//! The layer goes straight to a file, its digest (the image's diff id) taken on the way:
//! nothing of it is held in memory, and it is read once more only when the image is
//! loaded (crate::assemble).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::runtime::NONROOT_UID;
use crate::tree::{Kind, Tree};

/// A layer written to a file: where, its diff id (`sha256:` of its bytes), its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    pub path: PathBuf,
    pub diff_id: String,
    pub size: u64,
}

/// Archives `root` (its contents, not the directory itself) into the file `path`.
pub fn write_root(
    root: &Tree,
    owned_by_nonroot: &[&str],
    mtime: u64,
    path: &Path,
) -> Result<LayerFile> {
    tar_root(root, owned_by_nonroot, mtime, Digesting::create(path)?)?.into_layer(path)
}

/// The -buildroot image's own layer: empty directories `dirs`, the files `files` (dpy's
/// helpers: path, mode, bytes) and the runtime root as `root` archived it, under
/// `prefix`. Every time is `mtime`, every owner root but the root's own; the same
/// inputs give the same bytes.
pub fn write_buildroot(
    root: &LayerFile,
    prefix: &str,
    files: &[(String, u32, &[u8])],
    dirs: &[&str],
    mtime: u64,
    path: &Path,
) -> Result<LayerFile> {
    let broken = |e: std::io::Error| Error::Distill(format!("writing the -buildroot layer: {e}"));
    let mut builder = tar::Builder::new(Digesting::create(path)?);
    builder.follow_symlinks(false);
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
    };
    // Every directory first, parents before children: those named, the prefix, and
    // each file's.
    let mut all_dirs = std::collections::BTreeSet::new();
    let named = dirs
        .iter()
        .chain([&prefix])
        .map(|d| d.trim_end_matches('/'));
    for dir in named.clone() {
        all_dirs.insert(dir.to_string());
    }
    for mut at in named.chain(files.iter().map(|(name, _, _)| name.as_str())) {
        while let Some((parent, _)) = at.rsplit_once('/') {
            all_dirs.insert(parent.to_string());
            at = parent;
        }
    }
    for dir in &all_dirs {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut h, format!("{dir}/"), std::io::empty())
            .map_err(broken)?;
    }
    let mut sorted: Vec<&(String, u32, &[u8])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mode, data) in sorted {
        let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
        builder.append_data(&mut h, name, *data).map_err(broken)?;
    }
    // The root's entries as they are, each under the prefix.
    let prefix = prefix.trim_end_matches('/');
    let tar = std::fs::File::open(&root.path).map_err(|e| Error::io(&root.path, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(tar));
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let name = format!("{prefix}/{}", entry.path().map_err(broken)?.display());
        let mut h = entry.header().clone();
        if entry.header().entry_type() == tar::EntryType::Symlink {
            let target = entry
                .link_name()
                .map_err(broken)?
                .ok_or_else(|| Error::Distill(format!("{name}: a link without a target")))?
                .into_owned();
            builder.append_link(&mut h, &name, target).map_err(broken)?;
        } else {
            builder
                .append_data(&mut h, &name, &mut entry)
                .map_err(broken)?;
        }
    }
    builder.into_inner().map_err(broken)?.into_layer(path)
}

/// A writer that hashes and counts what passes through it.
struct Digesting<W> {
    out: W,
    hash: Sha256,
    size: u64,
}

impl Digesting<std::io::BufWriter<std::fs::File>> {
    /// A new file at `path`, written through a buffer.
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Digesting {
            out: std::io::BufWriter::new(file),
            hash: Sha256::new(),
            size: 0,
        })
    }

    /// The layer written to `path`, flushed and synced.
    fn into_layer(self, path: &Path) -> Result<LayerFile> {
        self.out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_data())
            .map_err(|e| Error::io(path, e))?;
        Ok(LayerFile {
            path: path.to_path_buf(),
            diff_id: format!("sha256:{:x}", self.hash.finalize()),
            size: self.size,
        })
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Archives `root` into `out`, file by file (each file streamed from its handle).
fn tar_root<W: Write>(root: &Tree, owned_by_nonroot: &[&str], mtime: u64, out: W) -> Result<W> {
    let mut builder = tar::Builder::new(out);
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
                let file = root.open_file(relative)?;
                let size = file
                    .metadata()
                    .map_err(|e| Error::Distill(format!("archiving {inside}: {e}")))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                // Exactly the size the header says, even if the file were to change.
                let mut data = std::io::Read::take(file, size);
                builder.append_data(&mut header, relative, &mut data)
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
        let out = tempfile::tempdir().unwrap();
        let one = write_root(
            &Tree::open(r).unwrap(),
            &["/home/nonroot"],
            7,
            &out.path().join("1.tar"),
        )
        .unwrap();
        std::fs::write(r.join("a"), "x").unwrap(); // new mtime on disk
        let two = write_root(
            &Tree::open(r).unwrap(),
            &["/home/nonroot"],
            7,
            &out.path().join("2.tar"),
        )
        .unwrap();
        assert_eq!((&one.diff_id, one.size), (&two.diff_id, two.size));
        let one = std::fs::read(&one.path).unwrap();
        assert_eq!(one, std::fs::read(&two.path).unwrap());
        // The diff id is the digest of the bytes written, the size their length.
        assert_eq!(two.diff_id, format!("sha256:{:x}", Sha256::digest(&one)));
        assert_eq!(two.size, one.len() as u64);

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

    /// The -buildroot layer: the directories, the helpers, and the root's entries under
    /// the prefix as they were (owners, modes, times, link targets, contents).
    #[test]
    fn the_buildroot_layer_holds_the_root_under_its_prefix() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("home/nonroot")).unwrap();
        std::fs::write(r.join("a"), "x").unwrap();
        let long = "d".repeat(120);
        std::fs::write(r.join(&long), "long").unwrap();
        symlink("a", r.join("b")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let tree = Tree::open(r).unwrap();
        let root_tar =
            write_root(&tree, &["/home/nonroot"], 7, &out.path().join("root.tar")).unwrap();
        let helper: &[u8] = b"#!/bin/sh\n";
        let files = [("opt/dpy/bin/chroot-pip".to_string(), 0o755, helper)];
        let write = |name: &str| {
            write_buildroot(
                &root_tar,
                "opt/buildroot",
                &files,
                &["opt/buildroot-diff"],
                7,
                &out.path().join(name),
            )
            .unwrap()
        };
        let one = write("1.tar");
        assert_eq!(one.diff_id, write("2.tar").diff_id);
        let bytes = std::fs::read(&one.path).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            let path = entry.path().unwrap().display().to_string();
            let mut data = String::new();
            std::io::Read::read_to_string(&mut entry, &mut data).unwrap();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            assert_eq!(h.mtime().unwrap(), 7, "{path}");
            seen.push((path, h.uid().unwrap(), h.mode().unwrap(), data, link));
        }
        let find = |p: &str| {
            seen.iter()
                .find(|s| s.0 == p)
                .unwrap_or_else(|| panic!("{p} in {seen:?}"))
        };
        for dir in [
            "opt/",
            "opt/buildroot/",
            "opt/buildroot-diff/",
            "opt/dpy/",
            "opt/dpy/bin/",
        ] {
            assert_eq!(find(dir).2, 0o755);
        }
        assert_eq!(find("opt/dpy/bin/chroot-pip").2, 0o755);
        assert_eq!(find("opt/dpy/bin/chroot-pip").3, "#!/bin/sh\n");
        assert_eq!(find("opt/buildroot/a").3, "x");
        assert_eq!(find(&format!("opt/buildroot/{long}")).3, "long");
        assert_eq!(find("opt/buildroot/b").4.as_deref(), Some("a"));
        assert_eq!(find("opt/buildroot/home/nonroot").1, 65532);
        assert_eq!(seen.len(), 5 + 5 + 1, "{seen:?}");
    }
}
