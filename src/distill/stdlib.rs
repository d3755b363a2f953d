//! The stdlib zips: every byte-compiled stdlib module in `pythonXY-stdlib.zip`, and in
//! `pythonXY.zip`, the zip sys.path names first, only what a bare start imports plus the
//! stdlib zip's directory as an index (images/zip.toml says why).
//!
//! The gather stage compiled each module with the source's own interpreter and recorded
//! `<stdlib zip path>/<module path>.py` as its file name, so tracebacks name real paths.
//! Here the `.pyc` files and data files move into the zips, sorted and with one fixed
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

    /// Only the entries named in `names` (those of them it has).
    pub fn subset(&self, names: &BTreeSet<String>) -> Entries {
        Entries {
            files: self
                .files
                .iter()
                .filter(|(name, _)| names.contains(*name))
                .map(|(name, path)| (name.clone(), path.clone()))
                .collect(),
        }
    }
}

/// The name of the index in the first zip. templates/context/_dpy_zipimport.py reads it
/// by the same name (a test below holds the two together).
pub const INDEX_NAME: &str = "_dpy_stdlib.index";

/// The top-level module and package names of the stdlib zip, in the first zip: the hook
/// answers "not here" for any other name (site's search for sitecustomize at every
/// start) without loading the index.
pub const TOPS_NAME: &str = "_dpy_stdlib.tops";

/// Every top-level name an import can find in `entries`: `x` for `x.pyc` and for `x/...`.
pub fn tops(entries: &Entries) -> Vec<u8> {
    use super::marshal::Value;
    let names: BTreeSet<&str> = entries
        .names()
        .filter_map(|name| match name.split_once('/') {
            Some((dir, _)) => Some(dir),
            None => name.strip_suffix(".pyc"),
        })
        .collect();
    super::marshal::dumps(&Value::Tuple(
        names
            .into_iter()
            .map(|n| Value::Str(n.to_string()))
            .collect(),
    ))
}

/// The directory of the zip at `file` (whose path in the image is `archive`) as
/// zipimport's `_read_directory` returns it: `{name: (path, compress, data_size,
/// file_size, file_offset, time, date, crc)}`, inside `{"archive", "size", "files"}`,
/// marshalled. The hook loads it instead of reading every central directory entry in
/// pure Python; the conformance check `startup-zip` compares it with zipimport's own
/// reading in every image. It is read back from the written file, not taken from the
/// writer's bookkeeping, because it must be what zipimport reads from those bytes.
pub fn index(file: &Path, archive: &str) -> Result<Vec<u8>> {
    use super::marshal::Value;
    let failed =
        |e: &dyn std::fmt::Display| Error::Distill(format!("indexing {}: {e}", file.display()));
    let size = std::fs::metadata(file)
        .map_err(|e| Error::io(file, e))?
        .len();
    let reader = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| failed(&e))?;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| failed(&e))?;
        let name = entry.name().map_err(|e| failed(&e))?.to_string();
        let compress = match entry.compression() {
            CompressionMethod::Stored => 0,
            CompressionMethod::Deflated => 8,
            other => return Err(failed(&format!("{name}: {other:?}"))),
        };
        let (date, time): (u16, u16) = entry.last_modified().unwrap_or_default().into();
        files.push((
            Value::Str(name.clone()),
            Value::Tuple(vec![
                Value::Str(format!("{archive}/{name}")),
                Value::Int(compress),
                Value::Int(entry.compressed_size() as i64),
                Value::Int(entry.size() as i64),
                Value::Int(entry.header_start() as i64),
                Value::Int(i64::from(time)),
                Value::Int(i64::from(date)),
                Value::Int(i64::from(entry.crc32())),
            ]),
        ));
    }
    Ok(super::marshal::dumps(&Value::Dict(vec![
        (Value::Str("archive".into()), Value::Str(archive.into())),
        (Value::Str("size".into()), Value::Int(size as i64)),
        (Value::Str("files".into()), Value::Dict(files)),
    ])))
}

/// Writes the first zip: `entries`, all stored (a bare start reads them all), and the
/// stdlib zip's index and top-level names. Returns its number of entries and its size.
pub fn write_first(
    entries: &Entries,
    out: &Path,
    index: &[u8],
    tops: &[u8],
) -> Result<(usize, u64)> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut first = Entries {
        files: entries.files.clone(),
    };
    for (name, data) in [(INDEX_NAME, index), (TOPS_NAME, tops)] {
        let file = dir.path().join(name);
        std::fs::write(&file, data).map_err(|e| Error::io(&file, e))?;
        first.insert(name, &file);
    }
    let all: BTreeSet<String> = first.files.keys().cloned().collect();
    Ok((first.len(), first.write(out, &all)?))
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

    /// The index is zipimport's own reading of the zip: the host's Python compares them
    /// (the conformance check `startup-zip` does the same in every image).
    #[test]
    fn the_index_is_what_zipimport_reads() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let out = tempfile::tempdir().unwrap();
        let zip = out.path().join("python312-stdlib.zip");
        let hot = BTreeSet::from(["os.pyc".to_string()]);
        entries.write(&zip, &hot).unwrap();
        let archive = zip.to_str().unwrap();
        let index_file = out.path().join("index");
        std::fs::write(&index_file, index(&zip, archive).unwrap()).unwrap();
        let compare = "import marshal, sys, zipimport\n\
            index = marshal.loads(open(sys.argv[1], 'rb').read())\n\
            assert index['archive'] == sys.argv[2] and index['size'] == __import__('os').path.getsize(sys.argv[2])\n\
            parsed = zipimport._read_directory(sys.argv[2])\n\
            assert index['files'] == parsed, (index['files'], parsed)\n\
            print(len(parsed))";
        let run = std::process::Command::new("python3")
            .args(["-c", compare, index_file.to_str().unwrap(), archive])
            .output()
            .expect("python3 runs");
        assert!(run.status.success(), "{run:?}");
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "5");
    }

    /// The hook and the gather stage name the index and the stdlib zip as this module does.
    #[test]
    fn the_hook_reads_the_index_by_its_name() {
        let hook = include_str!("../../templates/context/_dpy_zipimport.py");
        assert!(hook.contains(&format!("INDEX = \"{INDEX_NAME}\"")));
        assert!(hook.contains(&format!("TOPS = \"{TOPS_NAME}\"")));
        let compile = include_str!("../../templates/context/dpy_gather/compile.py");
        assert!(compile.contains("STDLIB_ZIP_SUFFIX = \"-stdlib.zip\""));
        assert!(hook.contains("archive[:-4] + \"-stdlib.zip\""));
    }

    #[test]
    fn tops_are_the_top_level_modules_and_packages() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let run = std::process::Command::new("python3")
            .args([
                "-c",
                "import marshal, sys; print(marshal.loads(bytes.fromhex(sys.argv[1])))",
            ])
            .arg(
                tops(&entries)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            "('ensurepip', 'json', 'os', 'site-packages')"
        );
    }

    #[test]
    fn the_first_zip_holds_its_entries_stored_and_the_index() {
        let dir = tree();
        let entries = Entries::collect(dir.path(), &["lib-dynload".into()]).unwrap();
        let out = tempfile::tempdir().unwrap();
        let first = out.path().join("python312.zip");
        let names = BTreeSet::from(["os.pyc".to_string()]);
        let (count, _) =
            write_first(&entries.subset(&names), &first, b"index", &tops(&entries)).unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&first).unwrap()).unwrap();
        let listed: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().to_string())
            .collect();
        assert_eq!(listed, [INDEX_NAME, TOPS_NAME, "os.pyc"]);
        assert_eq!(count, listed.len());
        assert_eq!(
            read(&mut archive, "os.pyc"),
            ("os".into(), CompressionMethod::Stored)
        );
        assert_eq!(read(&mut archive, INDEX_NAME).0, "index");
    }
}
