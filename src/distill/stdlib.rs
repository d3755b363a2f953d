//! The stdlib zip, `pythonXY-stdlib.zip`: every byte-compiled stdlib module. What a bare
//! start imports stays on disk in the stdlib directory as well, beside the stdlib zip's
//! directory as an index and its top-level names (images/zip.toml says why).
//!
//! The gather stage compiled each module with the source's own interpreter and recorded
//! `<stdlib zip path>/<module path>.py` as its file name, so tracebacks name real paths.
//! Here the `.pyc` files and data files move into the zip, sorted and with one fixed
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
use crate::tree::{Kind, Tree};

/// What goes into the zip: archive name -> where the file is in the export.
#[derive(Debug, Default)]
pub struct Entries {
    files: BTreeMap<String, Entry>,
}

/// One file of the zip, as paths relative to the export's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it sits (a link, when the source linked the module in from elsewhere).
    pub at: PathBuf,
    /// The regular file its bytes come from: `at`, or where its link leads inside the
    /// root. Never a file outside the export.
    pub from: PathBuf,
}

impl Entries {
    /// Every file under `stdlib` (relative to `export`, and under `root`, the export's
    /// `root/` tree) except the directories in `keep_out` (stdlib-relative names). A link
    /// counts as the file it leads to inside the root (Debian links sitecustomize.py in
    /// from /etc); a link that leads nowhere inside it is refused.
    pub fn collect(
        export: &Tree,
        root: &Tree,
        stdlib: &Path,
        keep_out: &[PathBuf],
    ) -> Result<Self> {
        let left_out: Vec<PathBuf> = keep_out.iter().map(|k| stdlib.join(k)).collect();
        let skip = |p: &Path| left_out.iter().any(|k| k == p);
        let in_root = stdlib.strip_prefix("root").map_err(|_| {
            Error::Distill(format!(
                "{}: the stdlib is not in the root",
                stdlib.display()
            ))
        })?;
        let mut files = BTreeMap::new();
        for walked in export.walk(stdlib, &skip)? {
            let relative = walked.path.strip_prefix(stdlib).expect("walked under it");
            let from = match walked.kind {
                Kind::Dir => continue,
                Kind::File => walked.path.clone(),
                Kind::Link => {
                    let inside = format!("/{}", in_root.join(relative).display());
                    match root.resolve(&inside) {
                        Some(found) if root.kind(&found) == Some(Kind::File) => {
                            Path::new("root").join(found)
                        }
                        _ => {
                            return Err(Error::SourceUnfit(format!(
                                "the stdlib file {inside} is a link to {} that leads to no file of the root; dpy reads no file outside the image",
                                export.read_link(&walked.path)?.display()
                            )))
                        }
                    }
                }
                Kind::Other => {
                    return Err(Error::SourceUnfit(format!(
                        "the stdlib holds a device, fifo or socket ({}); the source image is not one dpy can distill",
                        export.show(&walked.path)
                    )))
                }
            };
            files.insert(
                archive_name(relative),
                Entry {
                    at: walked.path.clone(),
                    from,
                },
            );
        }
        Ok(Entries { files })
    }

    /// Adds (or replaces) every file under `dir` (relative to `export`) as
    /// `<prefix>/<relative path>`. Links there are refused: dpy's stubs are files.
    pub fn overlay(&mut self, export: &Tree, dir: &Path, prefix: &str) -> Result<()> {
        self.files
            .retain(|name, _| name != prefix && !name.starts_with(&format!("{prefix}/")));
        for walked in export.walk(dir, &|_: &Path| false)? {
            match walked.kind {
                Kind::Dir => continue,
                Kind::File => {}
                _ => {
                    return Err(Error::Distill(format!(
                        "{} is not a file; the stubs are dpy's own files",
                        export.show(&walked.path)
                    )))
                }
            }
            let relative = walked.path.strip_prefix(dir).expect("walked under it");
            self.files.insert(
                format!("{prefix}/{}", archive_name(relative)),
                Entry {
                    at: walked.path.clone(),
                    from: walked.path.clone(),
                },
            );
        }
        Ok(())
    }

    /// Adds (or replaces) one regular file, `path` relative to the export, as `name`.
    pub fn insert(&mut self, name: &str, path: &Path) {
        self.files.insert(
            name.to_string(),
            Entry {
                at: path.to_path_buf(),
                from: path.to_path_buf(),
            },
        );
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

    /// Where each entry sits in the export.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.values().map(|e| e.at.as_path())
    }

    /// Writes the zip: the names in `hot` (what a start and the common imports load)
    /// stored, so importing them inflates nothing; the rest deflated, for size.
    /// images/zip.toml has the figures behind this split. CPython's zipimport reads only
    /// stored and deflated entries.
    pub fn write(&self, export: &Tree, out: &Path, hot: &BTreeSet<String>) -> Result<u64> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::Distill(format!("writing {}: {e}", export.show(out)))
        };
        let file = export.create_file(out, 0o644)?;
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
        for (name, entry) in &self.files {
            let options = if hot.contains(name) { stored } else { deflated };
            let data = export.read(&entry.from)?;
            zip.start_file(name.as_str(), options)
                .and_then(|_| zip.write_all(&data).map_err(Into::into))
                .map_err(|e| failed(&e))?;
        }
        let mut writer = zip.finish().map_err(|e| failed(&e))?;
        writer.flush().map_err(|e| Error::io(export.show(out), e))?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(export.show(out), e.error()))?;
        Ok(file
            .metadata()
            .map_err(|e| Error::io(export.show(out), e))?
            .len())
    }

    /// Only the entries named in `names` (those of them it has).
    pub fn subset(&self, names: &BTreeSet<String>) -> Entries {
        Entries {
            files: self
                .files
                .iter()
                .filter(|(name, _)| names.contains(*name))
                .map(|(name, entry)| (name.clone(), entry.clone()))
                .collect(),
        }
    }
}

/// The name of the index in the stdlib directory. templates/context/_dpy_zipimport.py
/// reads it by the same name (a test below holds the two together).
pub const INDEX_NAME: &str = "_dpy_stdlib.index";

/// The top-level module and package names of the stdlib zip, in the stdlib directory:
/// encodings' inserted code answers "not here" for any other name (site's search for
/// sitecustomize at every start) without importing the hook or loading the index.
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
pub fn index(export: &Tree, file: &Path, archive: &str, implicit_dirs: bool) -> Result<Vec<u8>> {
    use super::marshal::Value;
    let failed =
        |e: &dyn std::fmt::Display| Error::Distill(format!("indexing {}: {e}", export.show(file)));
    let reader = export.open_file(file)?;
    let size = reader
        .metadata()
        .map_err(|e| Error::io(export.show(file), e))?
        .len();
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
    if implicit_dirs {
        // As zipimport (3.14+) adds them after the entries: every directory above an
        // entry that the zip does not list itself, `a/` for `a/b.pyc`, with None.
        let mut listed: BTreeSet<String> = files
            .iter()
            .filter_map(|(name, _)| match name {
                Value::Str(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let names: Vec<String> = listed.iter().cloned().collect();
        for name in names {
            let mut above = name.trim_end_matches('/');
            while let Some(at) = above.rfind('/') {
                let dir = format!("{}/", &above[..at]);
                if !listed.insert(dir.clone()) {
                    break;
                }
                files.push((Value::Str(dir), Value::None));
                above = &above[..at];
            }
        }
    }
    Ok(super::marshal::dumps(&Value::Dict(vec![
        (Value::Str("archive".into()), Value::Str(archive.into())),
        (Value::Str("size".into()), Value::Int(size as i64)),
        (Value::Str("files".into()), Value::Dict(files)),
    ])))
}

/// Lays out what a bare start reads in the stdlib directory `dir`: the entries of
/// `startup` (what is not there already, such as dpy's hook, is copied in), and the
/// stdlib zip's index and top-level names. Returns the number of files and their size.
pub fn write_startup(
    export: &Tree,
    startup: &Entries,
    dir: &Path,
    index: &[u8],
    tops: &[u8],
) -> Result<(usize, u64)> {
    let mut bytes = 0;
    for (name, entry) in &startup.files {
        let to = dir.join(name);
        if entry.at != to {
            export.copy_from(export, &entry.from, &to)?;
        }
        bytes += export.size(&entry.from)?;
    }
    for (name, data) in [(INDEX_NAME, index), (TOPS_NAME, tops)] {
        export.write(dir.join(name), 0o644, data)?;
        bytes += data.len() as u64;
    }
    Ok((startup.len() + 2, bytes))
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

    /// An export whose stdlib is `root/stdlib`.
    struct Export {
        dir: tempfile::TempDir,
        tree: Tree,
        root: Tree,
    }

    const STDLIB: &str = "root/stdlib";

    impl Export {
        fn collect(&self, keep_out: &[&str]) -> Result<Entries> {
            let keep: Vec<PathBuf> = keep_out.iter().map(PathBuf::from).collect();
            Entries::collect(&self.tree, &self.root, Path::new(STDLIB), &keep)
        }

        fn host(&self, relative: &str) -> PathBuf {
            self.dir.path().join(relative)
        }
    }

    fn tree() -> Export {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(STDLIB);
        let p = p.as_path();
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
        let tree = Tree::open(dir.path()).unwrap();
        let root = tree.subtree("root").unwrap();
        Export { dir, tree, root }
    }

    #[test]
    fn collects_everything_but_the_kept_out_dirs_sorted() {
        let dir = tree();
        let entries = dir.collect(&["lib-dynload", "site-packages"]).unwrap();
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

    /// A module linked in from elsewhere in the root is read from there; a link that
    /// leads out of the root (or nowhere) is refused, and the host file stays unread.
    #[test]
    fn a_linked_module_is_read_inside_the_root_only() {
        let dir = tree();
        std::fs::create_dir_all(dir.host("root/etc/python")).unwrap();
        std::fs::write(dir.host("root/etc/python/sitecustomize.pyc"), "site").unwrap();
        std::os::unix::fs::symlink(
            "/etc/python/sitecustomize.pyc",
            dir.host("root/stdlib/sitecustomize.pyc"),
        )
        .unwrap();
        let entries = dir.collect(&["lib-dynload", "site-packages"]).unwrap();
        let out = Path::new("linked.zip");
        entries.write(&dir.tree, out, &BTreeSet::new()).unwrap();
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(dir.host("linked.zip")).unwrap()).unwrap();
        assert_eq!(read(&mut archive, "sitecustomize.pyc").0, "site");

        let host = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(host.path(), "host secret").unwrap();
        for target in [
            host.path().to_path_buf(),
            PathBuf::from("../../../../../../../..").join(host.path().strip_prefix("/").unwrap()),
        ] {
            let link = dir.host("root/stdlib/json/tool.pyc");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let message = dir
                .collect(&["lib-dynload", "site-packages"])
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("leads to no file of the root"),
                "{message}"
            );
        }
        // A linked directory is listed as a link and refused the same way, not entered.
        std::fs::remove_file(dir.host("root/stdlib/json/tool.pyc")).unwrap();
        std::os::unix::fs::symlink(host.path().parent().unwrap(), dir.host("root/stdlib/more"))
            .unwrap();
        assert!(dir.collect(&["lib-dynload", "site-packages"]).is_err());
    }

    #[test]
    fn an_overlay_replaces_a_whole_package() {
        let dir = tree();
        std::fs::create_dir_all(dir.host("stubs/ensurepip")).unwrap();
        std::fs::write(dir.host("stubs/ensurepip/__main__.pyc"), "stub").unwrap();
        let mut entries = dir.collect(&["lib-dynload"]).unwrap();
        entries
            .overlay(&dir.tree, Path::new("stubs/ensurepip"), "ensurepip")
            .unwrap();
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
        let entries = dir.collect(&["lib-dynload"]).unwrap();
        let hot = BTreeSet::from(["os.pyc".to_string()]);
        let size = entries.write(&dir.tree, Path::new("a.zip"), &hot).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        entries.write(&dir.tree, Path::new("b.zip"), &hot).unwrap();
        let (a, b) = (dir.host("a.zip"), dir.host("b.zip"));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(size, std::fs::metadata(&a).unwrap().len());
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&a).unwrap()).unwrap();
        assert_eq!(read(&mut archive, "json/decoder.pyc").0, "d");
        assert!(archive.by_name("json/").is_err(), "no directory entries");
    }

    #[test]
    fn hot_entries_are_stored_and_the_rest_deflated() {
        let dir = tree();
        let entries = dir.collect(&["lib-dynload"]).unwrap();
        let out = dir.host("hot.zip");
        let hot = BTreeSet::from(["json/decoder.pyc".to_string()]);
        entries
            .write(&dir.tree, Path::new("hot.zip"), &hot)
            .unwrap();
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
    /// (the conformance check `startup-zip` does the same in every image). Whether it
    /// lists implicit directories is asked of that Python by the gather stage's own
    /// probe; written the other way, the index must differ, so the flag is what decides.
    #[test]
    fn the_index_is_what_zipimport_reads() {
        let dir = tree();
        let entries = dir.collect(&["lib-dynload"]).unwrap();
        let zip = dir.host("python312-stdlib.zip");
        let hot = BTreeSet::from(["os.pyc".to_string()]);
        let name = Path::new("python312-stdlib.zip");
        entries.write(&dir.tree, name, &hot).unwrap();
        let archive = zip.to_str().unwrap();
        let asked = std::process::Command::new("python3")
            .args([
                "-c",
                "from dpy_gather.probe import zipimport_lists_directories as f; print(f())",
            ])
            .env(
                "PYTHONPATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/templates/context"),
            )
            .output()
            .expect("python3 runs");
        assert!(asked.status.success(), "{asked:?}");
        let host_lists_dirs = String::from_utf8_lossy(&asked.stdout).trim() == "True";
        let compare = "import marshal, sys, zipimport\n\
            index = marshal.loads(open(sys.argv[1], 'rb').read())\n\
            assert index['archive'] == sys.argv[2] and index['size'] == __import__('os').path.getsize(sys.argv[2])\n\
            parsed = zipimport._read_directory(sys.argv[2])\n\
            print(index['files'] == parsed, len(index['files']), len(parsed))";
        for implicit_dirs in [host_lists_dirs, !host_lists_dirs] {
            let index_file = dir.host("index");
            let written = index(&dir.tree, name, archive, implicit_dirs).unwrap();
            std::fs::write(&index_file, written).unwrap();
            let run = std::process::Command::new("python3")
                .args(["-c", compare, index_file.to_str().unwrap(), archive])
                .output()
                .expect("python3 runs");
            assert!(run.status.success(), "{run:?}");
            let answer = String::from_utf8_lossy(&run.stdout);
            let words: Vec<&str> = answer.split_whitespace().collect();
            // 5 entries; with implicit directories also ensurepip/, json/, site-packages/.
            let listed = if implicit_dirs { "8" } else { "5" };
            let equal = if implicit_dirs == host_lists_dirs {
                "True"
            } else {
                "False"
            };
            assert_eq!(words[..2], [equal, listed], "{answer}");
        }
    }

    /// The hook reads the index, and encodings' inserted code the top-level names, by the
    /// names this module writes.
    #[test]
    fn the_hook_reads_the_index_and_encodings_the_tops_by_their_names() {
        let hook = include_str!("../../templates/context/_dpy_zipimport.py");
        assert!(hook.contains(&format!("INDEX = \"{INDEX_NAME}\"")));
        let encodings = include_str!("../../templates/context/dpy_gather/compile.py");
        assert!(encodings.contains(&format!("TOPS = \"{TOPS_NAME}\"")));
    }

    #[test]
    fn tops_are_the_top_level_modules_and_packages() {
        let dir = tree();
        let entries = dir.collect(&["lib-dynload"]).unwrap();
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
    fn the_startup_files_stay_on_disk_beside_the_index() {
        let dir = tree();
        let entries = dir.collect(&["lib-dynload"]).unwrap();
        std::fs::create_dir_all(dir.host("stubs")).unwrap();
        std::fs::write(dir.host("stubs/_dpy_zipimport.pyc"), "hook").unwrap();
        let mut startup = entries.subset(&BTreeSet::from(["json/decoder.pyc".to_string()]));
        startup.insert("_dpy_zipimport.pyc", Path::new("stubs/_dpy_zipimport.pyc"));
        let (count, bytes) = write_startup(
            &dir.tree,
            &startup,
            Path::new(STDLIB),
            b"index",
            &tops(&entries),
        )
        .unwrap();
        assert_eq!(count, 4);
        let read = |name: &str| std::fs::read(dir.host(STDLIB).join(name)).unwrap();
        assert_eq!(read("json/decoder.pyc"), b"d");
        assert_eq!(read("_dpy_zipimport.pyc"), b"hook");
        assert_eq!(read(INDEX_NAME), b"index");
        assert_eq!(read(TOPS_NAME), tops(&entries));
        assert_eq!(bytes, 1 + 4 + 5 + tops(&entries).len() as u64);
    }
}
