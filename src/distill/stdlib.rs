//! The stdlib zip: every byte-compiled stdlib module in one `pythonXY.zip`.
//!
//! The gather stage compiled each module with the source's own interpreter and recorded
//! `<zip path>/<module path>.py` as its file name, so tracebacks name real paths. Here
//! the `.pyc` files and data files move into the zip, sorted and with one fixed
//! timestamp, so two builds give byte-identical archives.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::{Error, Result};

/// How entries are stored. CPython's zipimport reads only stored and deflated entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Fastest to import: no inflate on every import; layers are compressed on the wire anyway.
    Stored,
    Deflated,
}

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

    /// Writes the zip. Directory entries are included (as `zip -r` does) so that
    /// importlib.resources and namespace lookups see package directories.
    pub fn write(&self, out: &Path, compression: Compression) -> Result<u64> {
        let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
        let mut zip = ZipWriter::new(std::io::BufWriter::new(file));
        let epoch = DateTime::default(); // 1980-01-01 00:00, the earliest zip time
        let options = match compression {
            Compression::Stored => SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .compression_level(None),
            Compression::Deflated => SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(9)),
        }
        .last_modified_time(epoch)
        .unix_permissions(0o644)
        .large_file(false);
        let dir_options = SimpleFileOptions::default()
            .last_modified_time(epoch)
            .unix_permissions(0o755);

        let mut dirs_done = std::collections::BTreeSet::new();
        for (name, path) in &self.files {
            let mut parent = String::new();
            for part in name
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                parent.push_str(part);
                parent.push('/');
                if dirs_done.insert(parent.clone()) {
                    zip.add_directory(parent.as_str(), dir_options)
                        .map_err(|e| Error::Distill(format!("writing {}: {e}", out.display())))?;
                }
            }
            let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            zip.start_file(name.as_str(), options)
                .and_then(|_| zip.write_all(&data).map_err(Into::into))
                .map_err(|e| Error::Distill(format!("writing {}: {e}", out.display())))?;
        }
        let mut writer = zip
            .finish()
            .map_err(|e| Error::Distill(format!("writing {}: {e}", out.display())))?;
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

    #[test]
    fn the_zip_is_deterministic_and_readable() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let out = tempfile::tempdir().unwrap();
        for compression in [Compression::Stored, Compression::Deflated] {
            let a = out.path().join("a.zip");
            let b = out.path().join("b.zip");
            entries.write(&a, compression).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1100));
            entries.write(&b, compression).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            let mut archive = zip::ZipArchive::new(std::fs::File::open(&a).unwrap()).unwrap();
            let mut decoder = archive.by_name("json/decoder.pyc").unwrap();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut decoder, &mut body).unwrap();
            assert_eq!(body, "d");
            drop(decoder);
            assert!(
                archive.by_name("json/").is_ok(),
                "directory entries are present"
            );
        }
    }
}
