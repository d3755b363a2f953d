//! A build context held in memory: the files BuildKit sees, with their modes.
//!
//! Kept in memory because a build context is small (Dockerfiles, helper scripts, one
//! root tar) and a tar built here is byte-for-byte reproducible, which keeps BuildKit's
//! cache keys stable from one run to the next.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

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

    /// The context as an uncompressed tar, entries sorted, owners and times fixed.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, file) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(file.data.len() as u64);
            header.set_mode(file.mode);
            header.set_mtime(EPOCH);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, file.data.as_slice())
                .expect("writing a tar into memory cannot fail");
        }
        builder
            .into_inner()
            .expect("writing a tar into memory cannot fail")
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

    #[test]
    fn the_tar_is_reproducible_and_sorted() {
        let mut a = BuildContext::new();
        a.add("b", 0o644, "2");
        a.add("a/x", 0o755, "1");
        let mut b = BuildContext::new();
        b.add("a/x", 0o755, "1");
        b.add("b", 0o644, "2");
        assert_eq!(a.to_tar(), b.to_tar());
        let bytes = a.to_tar();
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
