//! A tree of files that someone else wrote, reached only through a directory handle.
//!
//! What the gather stage exports was written by the source image's own interpreter, and
//! a hostile image can put anything there: a link named `etc/passwd` that points at the
//! host's, a stdlib "module" that is a link to a host secret, a directory that is a link
//! climbing out. dpy runs as root on the host, so a path string joined onto the export
//! and handed to `std::fs` would follow those links out of it.
//!
//! A [`Tree`] holds a `cap_std::fs::Dir`: every open resolves beneath that directory
//! (openat2's RESOLVE_BENEATH where the kernel has it), so no absolute link, no `..` and
//! no link chain can reach a file outside, whatever the names say. On top of it:
//! - reads take regular files only: a link is never read through by accident;
//! - writes replace what is at a name (a link there is removed, not written through);
//! - links are resolved the way the container will see them ([`Tree::resolve`]: an
//!   absolute target means the tree's root), by reading each link's text, never by
//!   asking the host to follow it;
//! - walks never descend into a link.
//!
//! The one place that opens a directory with the process's ambient authority is
//! [`Tree::open`], on a directory dpy made itself.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, Permissions, PermissionsExt};

use crate::error::{Error, Result};

/// How many links one resolution may follow, as Linux's own limit.
const MAX_LINKS: usize = 40;

/// A directory of untrusted files.
#[derive(Debug)]
pub struct Tree {
    dir: Dir,
    /// Where it is on the host: for messages only, never to reach a file.
    shown: PathBuf,
}

/// What a walk found: a path relative to the tree, what it is (links are not
/// followed), its permission bits and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    pub path: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Link,
    /// Devices, fifos and sockets: no place in an image root.
    Other,
}

impl Tree {
    /// Opens `path`, a directory dpy made itself (the build's work directory).
    pub fn open(path: &Path) -> Result<Tree> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| Error::io(path, e))?;
        Ok(Tree {
            dir,
            shown: path.to_path_buf(),
        })
    }

    /// Creates `path` (a new directory dpy makes) and opens it.
    pub fn create(path: &Path) -> Result<Tree> {
        std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
        Tree::open(path)
    }

    /// The directory `relative` below, which must be a real directory all the way
    /// down: a subtree handed on never starts behind a link.
    pub fn subtree(&self, relative: impl AsRef<Path>) -> Result<Tree> {
        let relative = plain(relative.as_ref())?;
        let mut dir = self.dir.try_clone().map_err(|e| self.error("", e))?;
        let mut walked = PathBuf::new();
        for part in relative.components() {
            walked.push(part);
            let meta = dir
                .symlink_metadata(part)
                .map_err(|e| self.error(&walked, e))?;
            if !meta.is_dir() {
                return Err(Error::SourceUnfit(format!(
                    "{} is not a directory (a link or a file where a directory belongs)",
                    self.show(&walked)
                )));
            }
            dir = dir.open_dir(part).map_err(|e| self.error(&walked, e))?;
        }
        Ok(Tree {
            dir,
            shown: self.shown.join(relative),
        })
    }

    /// `relative` as the host shows it, for messages.
    pub fn show(&self, relative: impl AsRef<Path>) -> String {
        self.shown.join(relative).display().to_string()
    }

    fn error(&self, relative: impl AsRef<Path>, e: std::io::Error) -> Error {
        // A path that resolves outside the handle fails as EXDEV from openat2's
        // RESOLVE_BENEATH, or as cap-std's own PermissionDenied where it resolves by
        // hand: in a tree that dpy unpacked itself, as root, that is the export leading
        // out of itself, not a permissions problem of the user's.
        if matches!(
            e.kind(),
            std::io::ErrorKind::CrossesDevices | std::io::ErrorKind::PermissionDenied
        ) {
            return Error::SourceUnfit(format!(
                "{} leads outside the export ({e}); dpy follows no link out of it",
                self.show(relative)
            ));
        }
        Error::io(self.shown.join(relative), e)
    }

    /// Resolves `path` (absolute, as seen inside the container whose root this tree
    /// is) to a path relative to the tree with every link along it followed inside the
    /// tree. `None` when it does not exist there, or the links loop.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let mut pending: Vec<String> = components(path);
        pending.reverse();
        let mut resolved = PathBuf::new();
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
            let candidate = resolved.join(&part);
            let meta = self.dir.symlink_metadata(&candidate).ok()?;
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_LINKS {
                    return None;
                }
                let target = self.dir.read_link_contents(&candidate).ok()?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            } else {
                resolved = candidate;
            }
        }
        Some(resolved)
    }

    /// Whether `path` (absolute, inside the container) exists once links are followed.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// What is at `relative`, not following a link there.
    pub fn kind(&self, relative: impl AsRef<Path>) -> Option<Kind> {
        self.dir
            .symlink_metadata(relative.as_ref())
            .ok()
            .map(|m| kind_of(&m.file_type()))
    }

    /// The size of the regular file at `relative`.
    pub fn size(&self, relative: impl AsRef<Path>) -> Result<u64> {
        Ok(self.regular(relative.as_ref())?.len())
    }

    /// The permission bits of what is at `relative` (a link's own are not asked).
    pub fn mode(&self, relative: impl AsRef<Path>) -> Result<u32> {
        let relative = relative.as_ref();
        self.dir
            .symlink_metadata(relative)
            .map(|m| m.permissions().mode() & 0o7777)
            .map_err(|e| self.error(relative, e))
    }

    /// The bytes of the regular file at `relative`; a link or anything else there is
    /// an error, never followed.
    pub fn read(&self, relative: impl AsRef<Path>) -> Result<Vec<u8>> {
        let relative = relative.as_ref();
        self.regular(relative)?;
        self.dir.read(relative).map_err(|e| self.error(relative, e))
    }

    /// The regular file at `absolute` (inside the container) as text, links followed
    /// inside the tree; `None` when there is none or it is not UTF-8.
    pub fn read_inside(&self, absolute: &str) -> Option<String> {
        let found = self.resolve(absolute)?;
        String::from_utf8(self.read(found).ok()?).ok()
    }

    /// The text of the link at `relative`, as it is (absolute targets included).
    pub fn read_link(&self, relative: impl AsRef<Path>) -> Result<PathBuf> {
        let relative = relative.as_ref();
        self.dir
            .read_link_contents(relative)
            .map_err(|e| self.error(relative, e))
    }

    /// Opens the regular file at `relative` for reading.
    pub fn open_file(&self, relative: impl AsRef<Path>) -> Result<std::fs::File> {
        let relative = relative.as_ref();
        self.regular(relative)?;
        self.dir
            .open(relative)
            .map(cap_std::fs::File::into_std)
            .map_err(|e| self.error(relative, e))
    }

    /// What is at `relative`, if it is a regular file (a link is not followed).
    fn regular(&self, relative: &Path) -> Result<cap_std::fs::Metadata> {
        let meta = self
            .dir
            .symlink_metadata(relative)
            .map_err(|e| self.error(relative, e))?;
        if meta.is_file() {
            return Ok(meta);
        }
        Err(Error::SourceUnfit(format!(
            "{} is not a regular file ({}); dpy reads no file through a link",
            self.show(relative),
            describe(kind_of(&meta.file_type()))
        )))
    }

    /// Makes a new regular file at `relative` with `mode`, replacing whatever file or
    /// link was there (a link is removed, never written through), and returns it open
    /// for writing.
    pub fn create_file(&self, relative: impl AsRef<Path>, mode: u32) -> Result<std::fs::File> {
        let relative = relative.as_ref();
        self.clear(relative)?;
        let file = self
            .dir
            .open_with(relative, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| self.error(relative, e))?;
        self.chmod(relative, mode)?;
        Ok(file.into_std())
    }

    /// Writes `data` as a new regular file at `relative` (see [`Tree::create_file`]).
    pub fn write(&self, relative: impl AsRef<Path>, mode: u32, data: &[u8]) -> Result<()> {
        let relative = relative.as_ref();
        let mut file = self.create_file(relative, mode)?;
        file.write_all(data).map_err(|e| self.error(relative, e))
    }

    /// Rewrites the regular file at `relative` in place with `data`: the same file
    /// (hard links to it see the change), the same mode.
    pub fn overwrite(&self, relative: impl AsRef<Path>, data: &[u8]) -> Result<()> {
        let relative = relative.as_ref();
        self.regular(relative)?;
        let mut file = self
            .dir
            .open_with(relative, OpenOptions::new().write(true).truncate(true))
            .map_err(|e| self.error(relative, e))?;
        file.write_all(data).map_err(|e| self.error(relative, e))
    }

    /// The names in the directory `relative` (a real one), sorted; none when there is
    /// no such directory.
    pub fn names(&self, relative: impl AsRef<Path>) -> Vec<String> {
        let Ok(sub) = self.subtree(relative) else {
            return Vec::new();
        };
        let Ok(entries) = sub.dir.entries() else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Where the absolute in-container path `absolute` is in this tree: its parent
    /// directory resolved inside the tree, then its own name, not followed. For a
    /// file dpy is about to write or remove there.
    pub fn place(&self, absolute: &str) -> Option<PathBuf> {
        let (parent, name) = absolute.trim_end_matches('/').rsplit_once('/')?;
        if matches!(name, "" | "." | "..") {
            return None;
        }
        let parent = if parent.is_empty() { "/" } else { parent };
        Some(self.resolve(parent)?.join(name))
    }

    /// Removes what is at `relative` unless it is a directory; nothing there is fine.
    fn clear(&self, relative: &Path) -> Result<()> {
        match self.kind(relative) {
            None => Ok(()),
            Some(Kind::Dir) => Err(Error::SourceUnfit(format!(
                "{} is a directory where dpy writes a file",
                self.show(relative)
            ))),
            Some(_) => self.remove_file(relative),
        }
    }

    /// Creates the directory `relative` and its missing parents.
    pub fn create_dir_all(&self, relative: impl AsRef<Path>) -> Result<()> {
        let relative = relative.as_ref();
        if relative.as_os_str().is_empty() {
            return Ok(());
        }
        self.dir
            .create_dir_all(relative)
            .map_err(|e| self.error(relative, e))
    }

    /// Removes the file or link at `relative` (a link itself, not what it names).
    pub fn remove_file(&self, relative: impl AsRef<Path>) -> Result<()> {
        let relative = relative.as_ref();
        self.dir
            .remove_file(relative)
            .map_err(|e| self.error(relative, e))
    }

    /// Removes the directory at `relative` if it is empty; false when it is not.
    pub fn remove_empty_dir(&self, relative: impl AsRef<Path>) -> bool {
        self.dir.remove_dir(relative.as_ref()).is_ok()
    }

    /// Sets the permission bits of the file or directory at `relative`.
    pub fn chmod(&self, relative: impl AsRef<Path>, mode: u32) -> Result<()> {
        let relative = relative.as_ref();
        self.dir
            .set_permissions(relative, Permissions::from_mode(mode))
            .map_err(|e| self.error(relative, e))
    }

    /// Makes a link at `relative` whose text is `target`, as it is: a link is data
    /// for the image, and its target is never looked at here.
    pub fn symlink(&self, target: impl AsRef<Path>, relative: impl AsRef<Path>) -> Result<()> {
        let relative = relative.as_ref();
        self.clear(relative)?;
        self.dir
            .symlink_contents(target.as_ref(), relative)
            .map_err(|e| self.error(relative, e))
    }

    /// Makes `relative` a hard link to the regular file `existing`, both in this tree.
    pub fn hard_link(&self, existing: impl AsRef<Path>, relative: impl AsRef<Path>) -> Result<()> {
        let (existing, relative) = (existing.as_ref(), relative.as_ref());
        self.regular(existing)?;
        self.clear(relative)?;
        self.dir
            .hard_link(existing, &self.dir, relative)
            .map_err(|e| self.error(relative, e))
    }

    /// Copies the regular file `from` of `source` to `to` here, with its mode.
    pub fn copy_from(&self, source: &Tree, from: &Path, to: &Path) -> Result<()> {
        let data = source.read(from)?;
        let mode = source.mode(from)?;
        if let Some(parent) = to.parent() {
            self.create_dir_all(parent)?;
        }
        self.write(to, mode, &data)
    }

    /// Everything below `relative` (a real directory: see [`Tree::subtree`]), parents
    /// before their children, each directory's entries sorted by name, paths relative
    /// to this tree. Links are listed, never entered; `skip` leaves out a directory
    /// (given relative to this tree) with all it holds.
    pub fn walk(
        &self,
        relative: impl AsRef<Path>,
        skip: &dyn Fn(&Path) -> bool,
    ) -> Result<Vec<Walked>> {
        let relative = relative.as_ref();
        let start = self.subtree(relative)?;
        let mut out = Vec::new();
        self.walk_in(&start.dir, relative, skip, &mut out)?;
        Ok(out)
    }

    fn walk_in(
        &self,
        dir: &Dir,
        at: &Path,
        skip: &dyn Fn(&Path) -> bool,
        out: &mut Vec<Walked>,
    ) -> Result<()> {
        let mut entries: Vec<(std::ffi::OsString, cap_std::fs::Metadata)> = Vec::new();
        for entry in dir.entries().map_err(|e| self.error(at, e))? {
            let entry = entry.map_err(|e| self.error(at, e))?;
            let name = entry.file_name();
            let meta = entry
                .metadata()
                .map_err(|e| self.error(at.join(&name), e))?;
            entries.push((name, meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in entries {
            let path = at.join(&name);
            let kind = kind_of(&meta.file_type());
            if kind == Kind::Dir && skip(&path) {
                continue;
            }
            out.push(Walked {
                path: path.clone(),
                kind,
                mode: meta.permissions().mode() & 0o7777,
                len: meta.len(),
            });
            if kind == Kind::Dir {
                // The entry was a directory when listed, and nothing else writes to the
                // tree while dpy works on it.
                let sub = dir.open_dir(&name).map_err(|e| self.error(&path, e))?;
                self.walk_in(&sub, &path, skip, out)?;
            }
        }
        Ok(())
    }
}

fn kind_of(file_type: &cap_std::fs::FileType) -> Kind {
    if file_type.is_symlink() {
        Kind::Link
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Dir => "a directory",
        Kind::File => "a file",
        Kind::Link => "a link",
        Kind::Other => "a device, fifo or socket",
    }
}

/// `relative` if it is made of plain names only: no root, no `.`, no `..`.
pub fn plain(relative: &Path) -> Result<&Path> {
    let ok = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if ok {
        return Ok(relative);
    }
    Err(Error::SourceUnfit(format!(
        "{}: not a relative path of plain names",
        relative.display()
    )))
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

/// The in-container absolute path `absolute` as a path relative to the root, without
/// following anything: for names dpy itself chose (`/etc/passwd`, `/tmp`).
pub fn inside(absolute: &str) -> PathBuf {
    PathBuf::from(absolute.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root, and beside it (outside) a "host" file that no operation may reach.
    fn planted() -> (tempfile::TempDir, Tree, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let host = base.path().join("host-secret");
        std::fs::write(&host, "secret").unwrap();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let tree = Tree::open(&root).unwrap();
        (base, tree, host)
    }

    #[test]
    fn follows_merged_usr_and_absolute_links_inside_the_root() {
        let (base, t, _) = planted();
        let r = base.path().join("root");
        std::fs::create_dir_all(r.join("usr/lib64")).unwrap();
        std::fs::write(r.join("usr/lib64/ld.so"), "x").unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        std::fs::create_dir_all(r.join("etc/ssl/certs")).unwrap();
        std::fs::write(r.join("etc/ssl/certs/bundle.crt"), "x").unwrap();
        symlink("/etc/ssl/certs/bundle.crt", r.join("etc/ssl/cert.pem")).unwrap();
        symlink("../../usr/lib64/ld.so", r.join("etc/ssl/up")).unwrap();

        assert_eq!(
            t.resolve("/lib64/ld.so").unwrap(),
            Path::new("usr/lib64/ld.so")
        );
        assert!(t.exists("/etc/ssl/cert.pem"));
        assert!(t.exists("/etc/ssl/up"));
        assert!(!t.exists("/lib64/missing.so"));
        assert_eq!(t.read_inside("/etc/ssl/cert.pem").unwrap(), "x");
    }

    #[test]
    fn a_link_loop_does_not_hang() {
        let (base, t, _) = planted();
        let r = base.path().join("root");
        symlink("b", r.join("a")).unwrap();
        symlink("a", r.join("b")).unwrap();
        assert!(t.resolve("/a").is_none());
    }

    #[test]
    fn no_link_reaches_a_file_outside() {
        let (base, t, host) = planted();
        let r = base.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        symlink(&host, r.join("etc/passwd")).unwrap();
        symlink("../host-secret", r.join("etc/group")).unwrap();
        symlink(base.path(), r.join("up")).unwrap();
        symlink("..", r.join("dotdot")).unwrap();

        // Reads: a link is never read through, in or out.
        for name in [
            "etc/passwd",
            "etc/group",
            "up/host-secret",
            "dotdot/host-secret",
        ] {
            assert!(t.read(name).is_err(), "{name} was read");
            assert!(t.open_file(name).is_err(), "{name} was opened");
        }
        // Resolved the container's way, an absolute link names the tree's own root,
        // and `..` stops at it.
        assert!(t.read_inside("/etc/passwd").is_none());
        assert_eq!(t.resolve("/dotdot/dotdot/etc").unwrap(), Path::new("etc"));
        // Writes replace the link; the host file is untouched.
        t.write("etc/passwd", 0o644, b"root:x:0:0\n").unwrap();
        t.write("etc/group", 0o644, b"root:x:0:\n").unwrap();
        assert_eq!(std::fs::read_to_string(&host).unwrap(), "secret");
        assert_eq!(t.kind("etc/passwd"), Some(Kind::File));
        // Nothing can be made through a link that leaves the tree.
        assert!(t.write("up/new", 0o644, b"x").is_err());
        assert!(t.create_dir_all("up/d").is_err());
        assert!(t.subtree("up").is_err());
        assert!(!base.path().join("new").exists() && !base.path().join("d").exists());
        // Nor through a path that climbs.
        assert!(t.write("../escaped", 0o644, b"x").is_err());
        assert!(!base.path().join("escaped").exists());
    }

    #[test]
    fn a_walk_lists_links_and_never_enters_them() {
        let (base, t, _) = planted();
        let r = base.path().join("root");
        std::fs::create_dir_all(r.join("lib/b")).unwrap();
        std::fs::write(r.join("lib/b/z"), "zz").unwrap();
        std::fs::write(r.join("lib/a"), "a").unwrap();
        symlink(base.path(), r.join("lib/out")).unwrap();
        std::fs::create_dir_all(r.join("lib/skip")).unwrap();
        std::fs::write(r.join("lib/skip/x"), "").unwrap();
        let walked = t
            .walk("lib", &|p: &Path| p == Path::new("lib/skip"))
            .unwrap();
        let listed: Vec<(String, Kind)> = walked
            .iter()
            .map(|w| (w.path.display().to_string(), w.kind))
            .collect();
        assert_eq!(
            listed,
            [
                ("lib/a".to_string(), Kind::File),
                ("lib/b".to_string(), Kind::Dir),
                ("lib/b/z".to_string(), Kind::File),
                ("lib/out".to_string(), Kind::Link),
            ]
        );
        assert_eq!(walked[2].len, 2);
        // A walk never starts behind a link.
        symlink("lib", r.join("liblink")).unwrap();
        assert!(t.walk("liblink", &|_: &Path| false).is_err());
    }

    #[test]
    fn plain_paths_only() {
        assert!(plain(Path::new("a/b")).is_ok());
        for bad in ["/a", "../a", "a/../b", "./a", "a/./b"] {
            // `Path` folds a `.` in the middle away: those stay plain, as they are.
            if bad.contains("/./") {
                continue;
            }
            assert!(plain(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
