//! A build context: the files BuildKit sees, with their modes.
//!
//! dpy's own files (Dockerfiles, helper scripts) are small and held in memory; the
//! distilled root the -buildroot stage adds is a file on disk, streamed from there as
//! the engine reads the context (crate::tar_stream). The tar's headers are fixed, so the
//! same files give the same bytes, which keeps BuildKit's cache keys stable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tar_stream::{Chunks, Data, Entry};

/// Every file in a context carries this mtime, so the tar never depends on the clock.
pub const EPOCH: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub mode: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildContext {
    files: BTreeMap<String, ContextFile>,
    /// Files of dpy's own on disk: (mode, where, size).
    on_disk: BTreeMap<String, (u32, PathBuf, u64)>,
}

impl BuildContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) {
        self.files.insert(
            path.into(),
            ContextFile {
                mode,
                data: data.into(),
            },
        );
    }

    pub fn get(&self, path: &str) -> Option<&ContextFile> {
        self.files.get(path)
    }

    pub fn files(&self) -> impl Iterator<Item = (&str, &ContextFile)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Adds the file at `on_disk` (`size` bytes, dpy's own) as `path`: it is read when
    /// the context is sent, never held.
    pub fn add_from_disk(&mut self, path: impl Into<String>, mode: u32, on_disk: &Path, size: u64) {
        self.on_disk
            .insert(path.into(), (mode, on_disk.to_path_buf(), size));
    }

    /// The context as an uncompressed tar, streamed: entries sorted by path, owners
    /// and times fixed.
    pub fn stream(&self) -> Chunks {
        let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
        for (path, file) in &self.files {
            entries.insert(
                path,
                Entry {
                    name: path.clone(),
                    mode: file.mode,
                    data: Data::Bytes(file.data.clone().into()),
                },
            );
        }
        for (path, (mode, on_disk, size)) in &self.on_disk {
            entries.insert(
                path,
                Entry {
                    name: path.clone(),
                    mode: *mode,
                    data: Data::File(on_disk.clone(), *size),
                },
            );
        }
        crate::tar_stream::archive(entries.into_values().collect())
    }

    /// One line per file: mode, size and path, for `dpy render` without `-o`.
    pub fn listing(&self) -> String {
        self.files
            .iter()
            .map(|(path, file)| format!("{:04o} {:>8} {path}\n", file.mode, file.data.len()))
            .collect()
    }

    /// Writes the context under `dir`, which must be empty or absent unless `force`.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<()> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if entries.next().is_some() && !force {
                return Err(Error::Usage(format!(
                    "{} is not empty: choose an empty directory or pass --force to overwrite",
                    dir.display()
                )));
            }
        }
        for (path, file) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&target, &file.data).map_err(|e| Error::io(&target, e))?;
            set_mode(&target, file.mode)?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tar_is_reproducible_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("root.tar");
        std::fs::write(&on_disk, "3").unwrap();
        let mut a = BuildContext::new();
        a.add("b", 0o644, "2");
        a.add_from_disk("a/y", 0o644, &on_disk, 1);
        a.add("a/x", 0o755, "1");
        let mut b = BuildContext::new();
        b.add("a/x", 0o755, "1");
        b.add("b", 0o644, "2");
        b.add_from_disk("a/y", 0o644, &on_disk, 1);
        let tar = |c: &BuildContext| crate::tar_stream::collect(c.stream());
        let bytes = tar(&a).await.unwrap();
        assert_eq!(bytes, tar(&b).await.unwrap());
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/x", "a/y", "b"]);
    }

    #[test]
    fn refuses_a_non_empty_directory_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), "x").unwrap();
        let mut context = BuildContext::new();
        context.add("Dockerfile", 0o644, "FROM scratch\n");
        let err = context.write_to(dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("--force"));
        assert!(!dir.path().join("Dockerfile").exists());
        context.write_to(dir.path(), true).unwrap();
        assert!(dir.path().join("Dockerfile").exists());
    }
}
