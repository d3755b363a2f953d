//! The stdlib zip: every byte-compiled stdlib module in one `pythonXY.zip`.
//!
//! The gather stage compiled each module with the source's own interpreter and recorded
//! `<zip path>/<module path>.py` as its file name, so tracebacks name real paths. Here
//! the `.pyc` files and data files move into the zip, sorted and with one fixed
//! timestamp, so two builds give byte-identical archives.
//!
//! There are no directory entries: zipimport finds packages by their `__init__.pyc`,
//! `zipfile.Path` (behind importlib.resources) infers directories, and every entry
//! costs each interpreter start about 2 µs, as zipimport reads the central directory
//! in pure Python.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::{Error, Result};

/// What goes into the zip: archive name -> file on the host.
#[derive(Debug, Default)]
pub struct Entries {
    files: BTreeMap<String, PathBuf>,
}

impl Entries {
    /// Every file under `stdlib` except the directories in `keep_out` (relative names).
    pub fn collect(stdlib: &Path, keep_out: &[PathBuf]) -> Result<Self> {
        let mut files = BTreeMap::new();
        let walker = walkdir::WalkDir::new(stdlib)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !keep_out.iter().any(|k| e.path() == stdlib.join(k)));
        for entry in walker {
            let entry = entry.map_err(|e| Error::Distill(format!("reading the stdlib: {e}")))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(stdlib)
                .expect("walkdir stays under its root");
            files.insert(archive_name(relative), entry.path().to_path_buf());
        }
        Ok(Entries { files })
    }

    /// Adds (or replaces) every file under `dir` as `<prefix>/<relative path>`.
    pub fn overlay(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        self.files
            .retain(|name, _| name != prefix && !name.starts_with(&format!("{prefix}/")));
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::Distill(format!("reading {prefix}: {e}")))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let relative = entry.path().strip_prefix(dir).expect("under its root");
            self.files.insert(
                format!("{prefix}/{}", archive_name(relative)),
                entry.path().to_path_buf(),
            );
        }
        Ok(())
    }

    /// Adds (or replaces) one file as `name`.
    pub fn insert(&mut self, name: &str, path: &Path) {
        self.files.insert(name.to_string(), path.to_path_buf());
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.values().map(PathBuf::as_path)
    }

    /// Writes the zip: the names in `hot` (what a start and the common imports load)
    /// stored, so importing them inflates nothing; the rest deflated, for size.
    /// images/zip.toml has the figures behind this split. CPython's zipimport reads only
    /// stored and deflated entries.
    pub fn write(&self, out: &Path, hot: &BTreeSet<String>) -> Result<u64> {
        let failed =
            |e: &dyn std::fmt::Display| Error::Distill(format!("writing {}: {e}", out.display()));
        let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
        let mut zip = ZipWriter::new(std::io::BufWriter::new(file));
        let base = SimpleFileOptions::default()
            .last_modified_time(DateTime::default()) // 1980-01-01 00:00, the earliest zip time
            .unix_permissions(0o644)
            .large_file(false);
        let stored = base
            .compression_method(CompressionMethod::Stored)
            .compression_level(None);
        let deflated = base
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(9));
        for (name, path) in &self.files {
            let options = if hot.contains(name) { stored } else { deflated };
            let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            zip.start_file(name.as_str(), options)
                .and_then(|_| zip.write_all(&data).map_err(Into::into))
                .map_err(|e| failed(&e))?;
        }
        let mut writer = zip.finish().map_err(|e| failed(&e))?;
        writer.flush().map_err(|e| Error::io(out, e))?;
        drop(writer);
        Ok(std::fs::metadata(out).map_err(|e| Error::io(out, e))?.len())
    }
}

fn archive_name(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for (path, body) in [
            ("os.pyc", "os"),
            ("json/__init__.pyc", "j"),
            ("json/decoder.pyc", "d"),
            ("lib-dynload/_json.so", "so"),
            ("site-packages/README.txt", "r"),
            ("ensurepip/__init__.pyc", "original"),
        ] {
            std::fs::create_dir_all(p.join(path).parent().unwrap()).unwrap();
            std::fs::write(p.join(path), body).unwrap();
        }
        dir
    }

    #[test]
    fn collects_everything_but_the_kept_out_dirs_sorted() {
        let dir = tree();
        let entries =
            Entries::collect(dir.path(), &["lib-dynload".into(), "site-packages".into()]).unwrap();
        let names: Vec<&str> = entries.names().collect();
        assert_eq!(
            names,
            [
                "ensurepip/__init__.pyc",
                "json/__init__.pyc",
                "json/decoder.pyc",
                "os.pyc"
            ]
        );
    }

    #[test]
    fn an_overlay_replaces_a_whole_package() {
        let dir = tree();
        let stub = tempfile::tempdir().unwrap();
        std::fs::write(stub.path().join("__main__.pyc"), "stub").unwrap();
        let mut entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        entries.overlay(stub.path(), "ensurepip").unwrap();
        let names: Vec<&str> = entries.names().collect();
        assert!(names.contains(&"ensurepip/__main__.pyc"));
        assert!(!names.contains(&"ensurepip/__init__.pyc"));
    }

    fn read(
        archive: &mut zip::ZipArchive<std::fs::File>,
        name: &str,
    ) -> (String, CompressionMethod) {
        let mut entry = archive.by_name(name).unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
        (body, entry.compression())
    }

    #[test]
    fn the_zip_is_deterministic_and_readable() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let out = tempfile::tempdir().unwrap();
        let hot = BTreeSet::from(["os.pyc".to_string()]);
        let a = out.path().join("a.zip");
        let b = out.path().join("b.zip");
        entries.write(&a, &hot).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        entries.write(&b, &hot).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&a).unwrap()).unwrap();
        assert_eq!(read(&mut archive, "json/decoder.pyc").0, "d");
        assert!(archive.by_name("json/").is_err(), "no directory entries");
    }

    #[test]
    fn hot_entries_are_stored_and_the_rest_deflated() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("hot.zip");
        let hot = BTreeSet::from(["json/decoder.pyc".to_string()]);
        entries.write(&out, &hot).unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
        assert_eq!(
            read(&mut archive, "json/decoder.pyc"),
            ("d".to_string(), CompressionMethod::Stored)
        );
        assert_eq!(
            read(&mut archive, "json/__init__.pyc"),
            ("j".to_string(), CompressionMethod::Deflated)
        );
    }
}
