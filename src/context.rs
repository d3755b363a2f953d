//! A build context: the files BuildKit sees, with their modes.
//!
//! Only dpy's own small files (Dockerfiles, helper scripts, the CA bundle): the layers
//! dpy writes never go through BuildKit (crate::assemble). It is streamed to the engine
//! (crate::tar_stream) with fixed headers, so the same files give the same bytes, which
//! keeps BuildKit's cache keys stable.

use std::collections::BTreeMap;
use std::path::Path;

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

    /// The context as an uncompressed tar, streamed: entries sorted by path, owners
    /// and times fixed.
    pub fn stream(&self) -> Chunks {
        let entries = self
            .files
            .iter()
            .map(|(path, file)| Entry {
                name: path.clone(),
                mode: file.mode,
                data: Data::Bytes(file.data.clone().into()),
            })
            .collect();
        crate::tar_stream::archive(entries)
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
        let mut a = BuildContext::new();
        a.add("b", 0o644, "2");
        a.add("a/x", 0o755, "1");
        let mut b = BuildContext::new();
        b.add("a/x", 0o755, "1");
        b.add("b", 0o644, "2");
        let tar = |c: &BuildContext| crate::tar_stream::collect(c.stream());
        let bytes = tar(&a).await.unwrap();
        assert_eq!(bytes, tar(&b).await.unwrap());
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/x", "b"]);
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
