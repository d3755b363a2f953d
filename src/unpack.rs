//! An exported tar into a [`Tree`], entry by entry, each one checked first.
//!
//! The archive comes out of BuildKit's sandbox, but what is in it was written by the
//! source image's own code (the gather stage runs its interpreter, with its `.pth` files
//! and sitecustomize). So every entry is data from an adversary:
//! - its path must be relative and made of plain names, and must not pass through a
//!   link the archive made earlier (a later entry would land wherever the link points);
//! - a link is made with its text as it is: links are data for the image, and nothing
//!   on the host ever follows one (see `tree`);
//! - a hard link must name a regular file the archive already holds, by a plain path:
//!   it can only share bytes inside the export;
//! - device nodes and fifos are refused: the gather stage copies files, links and
//!   directories only, and the engine gives every container its own /dev;
//! - setuid and setgid bits are dropped from files, and the build says which: a runtime
//!   image runs as `nonroot` and has no use for a way back to root;
//! - bounds: at most [`Bounds::bytes`] of file data and [`Bounds::entries`] entries.
//!
//! A refusal names the source image and the entry, in one line (exit 12: a source dpy
//! cannot distill).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::tree::Tree;

/// How much an export may hold. An ordinary export is 30-40 MB in 2,000-3,000 entries
/// (the Debian and musl stand-ins: 40.2 MB in 2,791, 32.0 MB in 2,281); the defaults leave
/// room for sources a hundred times larger and still stop one that fills the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub bytes: u64,
    pub entries: u64,
}

/// The environment variables that change the bounds (README.rst documents them).
pub const MAX_BYTES_ENV: &str = "DPY_MAX_EXPORT_BYTES";
pub const MAX_ENTRIES_ENV: &str = "DPY_MAX_EXPORT_FILES";

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            bytes: 4 << 30,
            entries: 200_000,
        }
    }
}

impl Bounds {
    /// The defaults, or what the environment says; a value that is not a whole number
    /// is refused (exit 2) rather than silently ignored.
    pub fn from_env() -> Result<Bounds> {
        let mut bounds = Bounds::default();
        for (name, slot) in [
            (MAX_BYTES_ENV, &mut bounds.bytes),
            (MAX_ENTRIES_ENV, &mut bounds.entries),
        ] {
            if let Ok(text) = std::env::var(name) {
                *slot = text.trim().parse().map_err(|_| {
                    Error::Usage(format!(
                        "{name}={text:?} is not a whole number; give a count (bytes or entries) or unset it"
                    ))
                })?;
            }
        }
        Ok(bounds)
    }
}

/// What an unpack dropped on purpose, for the build's warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Files whose setuid or setgid bit was dropped.
    pub privileged: Vec<String>,
    pub entries: u64,
    pub bytes: u64,
}

/// Unpacks the tar `archive` into `into`. `source` names the image in refusals.
pub fn unpack(archive: impl Read, into: &Tree, bounds: Bounds, source: &str) -> Result<Unpacked> {
    let refuse = |path: &str, why: &str| {
        Error::SourceUnfit(format!(
            "the export of {source} holds {why} ({path}); the source image tampered with what dpy's gather stage wrote, so dpy builds nothing from it"
        ))
    };
    let mut archive = tar::Archive::new(archive);
    let mut done = Unpacked::default();
    let mut links: BTreeSet<PathBuf> = BTreeSet::new();
    // Directory modes are set last, so that a read-only directory can still be filled.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::SourceUnfit(format!("reading the export of {source}: {e}")))?;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| Error::SourceUnfit(format!("reading the export of {source}: {e}")))?;
        done.entries += 1;
        if done.entries > bounds.entries {
            return Err(Error::SourceUnfit(format!(
                "the export of {source} holds more than {} entries; a gather stage writes far fewer, so the source image is not one dpy can distill (raise {MAX_ENTRIES_ENV} if it really is that large)",
                bounds.entries
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let Some(path) = checked(&raw) else {
            return Err(refuse(&shown, "a path that is not relative and plain"));
        };
        if path.as_os_str().is_empty() {
            continue; // the archive's own root, "./"
        }
        if path.ancestors().skip(1).any(|a| links.contains(a)) {
            return Err(refuse(&shown, "a path that goes through a link"));
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let size = header.entry_size().unwrap_or(0);
        if kind.is_file() || kind == tar::EntryType::Continuous {
            done.bytes += size;
            if done.bytes > bounds.bytes {
                return Err(Error::SourceUnfit(format!(
                    "the export of {source} holds more than {} bytes; a gather stage writes far fewer, so the source image is not one dpy can distill (raise {MAX_BYTES_ENV} if it really is that large)",
                    bounds.bytes
                )));
            }
            let mode = if mode & 0o6000 != 0 {
                done.privileged
                    .push(format!("/{}", strip_root(&path).display()));
                mode & !0o6000
            } else {
                mode
            };
            parent_dirs(into, &path)?;
            let mut file = into.create_file(&path, 0o600)?;
            std::io::copy(&mut (&mut entry).take(size), &mut file)
                .map_err(|e| Error::io(into.show(&path), e))?;
            into.chmod(&path, mode)?;
        } else if kind.is_dir() {
            if !matches!(into.kind(&path), Some(crate::tree::Kind::Dir)) {
                parent_dirs(into, &path)?;
                into.create_dir_all(&path)?;
            }
            into.chmod(&path, 0o755)?;
            dir_modes.push((path, mode & !0o4000));
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            if target.is_empty() || target.contains(&0) {
                return Err(refuse(&shown, "a link with no target"));
            }
            parent_dirs(into, &path)?;
            use std::os::unix::ffi::OsStrExt;
            into.symlink(std::ffi::OsStr::from_bytes(&target), &path)?;
            links.insert(path);
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let shown_target = String::from_utf8_lossy(&target).into_owned();
            let Some(existing) = checked(&target).filter(|t| !t.as_os_str().is_empty()) else {
                return Err(refuse(
                    &format!("{shown} => {shown_target}"),
                    "a hard link to a path that is not relative and plain",
                ));
            };
            if existing.ancestors().any(|a| links.contains(a))
                || into.kind(&existing) != Some(crate::tree::Kind::File)
            {
                return Err(refuse(
                    &format!("{shown} => {shown_target}"),
                    "a hard link to something that is not a file of the export",
                ));
            }
            parent_dirs(into, &path)?;
            into.hard_link(&existing, &path)?;
            // The file it shares may have had its setuid bit; it was dropped then.
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(refuse(&shown, "a device node or fifo"));
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            return Err(refuse(&shown, "an entry of a kind dpy does not unpack"));
        }
    }
    dir_modes.sort();
    for (path, mode) in dir_modes.iter().rev() {
        into.chmod(path, *mode)?;
    }
    Ok(done)
}

/// The entry's path as plain relative names (a leading `./` allowed), or None.
fn checked(raw: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if raw.contains(&0) || raw.len() > 4096 {
        return None;
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The in-container path of an export entry: the root's entries sit under `root/`.
fn strip_root(path: &Path) -> &Path {
    path.strip_prefix("root").unwrap_or(path)
}

/// Creates the missing parents of `path` (0755 until the archive's own modes are set).
fn parent_dirs(into: &Tree, path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            if into.kind(parent) != Some(crate::tree::Kind::Dir) {
                into.create_dir_all(parent)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        File(&'a str, u32, &'a [u8]),
        Dir(&'a str, u32),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
        Device(&'a str),
        /// A name written raw into the header, past the tar crate's own checks.
        RawFile(&'a [u8]),
    }

    fn archive(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            match e {
                E::File(p, mode, data) => {
                    h.set_size(data.len() as u64);
                    h.set_mode(*mode);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_cksum();
                    b.append_data(&mut h, p, *data).unwrap();
                }
                E::Dir(p, mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    h.set_cksum();
                    b.append_data(&mut h, p, std::io::empty()).unwrap();
                }
                E::Link(p, t) | E::Hard(p, t) => {
                    h.set_entry_type(if matches!(e, E::Link(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    h.set_mode(0o777);
                    // Raw names: the tar crate refuses `..` in link names it writes.
                    h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                    h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                E::Device(p) => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_size(0);
                    h.set_mode(0o666);
                    h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                E::RawFile(p) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(1);
                    h.set_mode(0o644);
                    h.as_old_mut().name[..p.len()].copy_from_slice(p);
                    h.set_cksum();
                    b.append(&h, &b"x"[..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// Unpacks into `base/export`; `base/host` is a host file nothing may touch.
    fn run(entries: &[E], bounds: Bounds) -> (tempfile::TempDir, Result<Unpacked>) {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("host"), "host bytes").unwrap();
        let tree = Tree::create(&base.path().join("export")).unwrap();
        let result = unpack(archive(entries).as_slice(), &tree, bounds, "src:1");
        assert_eq!(
            std::fs::read_to_string(base.path().join("host")).unwrap(),
            "host bytes"
        );
        (base, result)
    }

    fn refused(entries: &[E], why: &str) {
        let (base, result) = run(entries, Bounds::default());
        let message = result.expect_err("refused").to_string();
        assert!(message.contains(why), "{message}");
        assert!(message.contains("src:1"), "{message}");
        assert!(!message.contains('\n'));
        // Nothing landed beside the export.
        let mut names: Vec<String> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["export", "host"]);
    }

    #[test]
    fn an_ordinary_export_unpacks_as_it_was() {
        let (base, result) = run(
            &[
                E::Dir("root/", 0o755),
                E::Dir("root/usr/lib", 0o755),
                E::File("root/usr/lib/libpython.so", 0o755, b"\x7fELF"),
                E::Link("root/lib", "usr/lib"),
                E::Link("root/etc/ssl/cert.pem", "/etc/ssl/certs/ca.crt"),
                E::Hard("root/usr/lib/again.so", "root/usr/lib/libpython.so"),
                E::Dir("root/tmp", 0o1777),
                E::File("./layout.json", 0o644, b"{}"),
            ],
            Bounds::default(),
        );
        let done = result.unwrap();
        assert!(done.privileged.is_empty());
        let export = base.path().join("export");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(
            std::fs::read_link(export.join("root/etc/ssl/cert.pem")).unwrap(),
            Path::new("/etc/ssl/certs/ca.crt")
        );
        let a = std::fs::metadata(export.join("root/usr/lib/libpython.so")).unwrap();
        let b = std::fs::metadata(export.join("root/usr/lib/again.so")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.permissions().mode() & 0o7777, 0o755);
        let tmp = std::fs::metadata(export.join("root/tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        assert_eq!(std::fs::read(export.join("layout.json")).unwrap(), b"{}");
    }

    #[test]
    fn a_path_that_leaves_the_export_is_refused() {
        refused(&[E::RawFile(b"../host")], "not relative and plain");
        refused(&[E::RawFile(b"/tmp/x")], "not relative and plain");
        refused(&[E::RawFile(b"root/../../host")], "not relative and plain");
    }

    #[test]
    fn nothing_is_written_through_a_link() {
        // An absolute link, then a file "inside" it.
        refused(
            &[
                E::Link("root/etc", "/"),
                E::File("root/etc/passwd", 0o644, b"x"),
            ],
            "goes through a link",
        );
        // A relative one that climbs.
        refused(
            &[
                E::Link("root/up", "../.."),
                E::File("root/up/host", 0o644, b"x"),
            ],
            "goes through a link",
        );
        // A link where a file follows under the same name is replaced, not written
        // through: the file lands in the export.
        let (base, result) = run(
            &[
                E::Link("root/passwd", "../../host"),
                E::File("root/passwd", 0o644, b"mine"),
            ],
            Bounds::default(),
        );
        result.unwrap();
        assert_eq!(
            std::fs::read(base.path().join("export/root/passwd")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn a_hard_link_shares_only_a_file_of_the_export() {
        refused(&[E::Hard("root/x", "../host")], "hard link to a path");
        refused(&[E::Hard("root/x", "/etc/shadow")], "hard link to a path");
        refused(
            &[E::Hard("root/x", "root/missing")],
            "hard link to something",
        );
        refused(
            &[
                E::Link("root/l", "/etc/shadow"),
                E::Hard("root/x", "root/l"),
            ],
            "hard link to something",
        );
    }

    #[test]
    fn devices_are_refused_and_setuid_bits_dropped() {
        refused(&[E::Device("root/dev/mem")], "device node");
        let (base, result) = run(
            &[
                E::File("root/bin/su", 0o4755, b"x"),
                E::File("root/bin/wall", 0o2755, b"y"),
                E::File("root/bin/ok", 0o755, b"z"),
            ],
            Bounds::default(),
        );
        let done = result.unwrap();
        assert_eq!(done.privileged, ["/bin/su", "/bin/wall"]);
        use std::os::unix::fs::PermissionsExt;
        for name in ["su", "wall", "ok"] {
            let meta = std::fs::metadata(base.path().join("export/root/bin").join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{name}");
        }
    }

    #[test]
    fn bounds_stop_an_oversized_export() {
        let big = vec![0u8; 3000];
        let files = [
            E::File("a", 0o644, &big),
            E::File("b", 0o644, &big),
            E::File("c", 0o644, b"x"),
        ];
        let (_, result) = run(
            &files,
            Bounds {
                bytes: 5000,
                entries: 100,
            },
        );
        let message = result.unwrap_err().to_string();
        assert!(message.contains("more than 5000 bytes") && message.contains(MAX_BYTES_ENV));
        let (_, result) = run(
            &files,
            Bounds {
                bytes: 1 << 20,
                entries: 2,
            },
        );
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("more than 2 entries"));
        let (_, result) = run(
            &files,
            Bounds {
                bytes: 6001,
                entries: 3,
            },
        );
        assert_eq!(result.unwrap().bytes, 6001);
    }
}
