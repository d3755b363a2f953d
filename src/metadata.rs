//! Build metadata: one JSON record per image, merged into a file that `dpy readme` reads.
//!
//! Several dpy processes may write the same file (one per platform or target in CI), so
//! every update takes a lock, rewrites a temporary file and renames it into place. The
//! files beside it (SBOMs, provenance) are written the same way (`replace`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const SCHEMA: u32 = 1;
/// Where the runtime images' SBOMs go, beside the metadata file.
pub const SBOM: (&str, &str) = ("dpy-sbom", ".spdx.json");
/// Where each image's provenance statement goes, beside the metadata file.
pub const PROVENANCE: (&str, &str) = ("dpy-provenance", ".intoto.json");
pub const DEFAULT_FILE: &str = "dpy-metadata.json";

/// Which image a record is: runtime, buildroot or debug (serialized lowercase).
pub type Kind = crate::runtime::Variant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    /// `docker.io`, `ghcr.io`, `localhost:5000`, ...
    pub registry: String,
    /// The repository path inside the registry, e.g. `library/python` or `me/dpy`.
    pub repository: String,
    /// The last component of the repository path.
    pub name: String,
    pub tag: String,
    /// `repository:tag` as the user wrote it.
    pub reference: String,
    /// The index digest when pushed, the image id otherwise.
    pub digest: String,
    pub size: u64,
    pub platforms: Vec<String>,
    pub source_image: String,
    pub source_digest: String,
    pub python_version: String,
    pub os_release: String,
    /// RFC 3339.
    pub built_at: String,
    #[serde(default)]
    pub site_packages: Option<String>,
    /// The runtime image's SBOM, written beside the metadata file (a path relative to
    /// that file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// The image's in-toto provenance statement, beside the metadata file (relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// With `--sign-key`: `sha256:` of the public key whose signatures and attestations
    /// were pushed beside every digest of this record (cosign's `sha256-<hex>.sig`/`.att`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_with: Option<String>,
    /// The digest of what the image was made of (crate::inputs): `--if-changed`
    /// compares it with the next build's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// The -buildroot image's pip and where it came from (`source 24.0`, `apt 23.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_pip: Option<String>,
    /// Stdlib extension modules left out because they do not import in the source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken_modules: Vec<String>,
    /// When pushed: each platform's manifest digest under the index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<PlatformManifest>,
    /// When pushed: how the layers are compressed (`size` is what a pull downloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<crate::compression::Compression>,
    /// The runtime image only: the debug sections dpy removed from the source's ELF
    /// files (distill::strip), and by what; absent when the source was stripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_info_stripped: Option<crate::distill::strip::Stripped>,
    /// Seconds per stage of the build that made it (crate::stages): the same for every
    /// record of one target's build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<crate::stages::StageTimes>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformManifest {
    pub platform: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetadataFile {
    /// Absent in files older than the field: those are schema 1 too.
    #[serde(default = "first_schema")]
    pub schema: u32,
    pub images: Vec<Record>,
}

fn first_schema() -> u32 {
    1
}

/// Splits `localhost:5000/me/py` into (`localhost:5000`, `me/py`), defaulting to Docker Hub
/// the way the docker CLI does (`python` is `docker.io/library/python`).
pub fn split_repository(repository: &str) -> (String, String) {
    match crate::repository::registry_host(repository) {
        Some(host) => (host.to_string(), repository[host.len() + 1..].to_string()),
        None if repository.contains('/') => ("docker.io".to_string(), repository.to_string()),
        None => ("docker.io".to_string(), format!("library/{repository}")),
    }
}

pub fn load(path: &Path) -> Result<MetadataFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: format!("line {}: not a dpy metadata file: {e}", e.line()),
    })
}

/// Where records go: a regular file (made when missing), or a device that discards them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    File,
    /// `--metadata-file /dev/null`: a lock file and a rename next to a device would be
    /// wrong, and nothing is to be kept.
    Discard,
}

/// Checks, before anything is built, that records can be written to `path`: a regular
/// file that is a metadata file already, or a new file in a writable directory; or a
/// character device such as /dev/null. A directory is refused: writing "into" it would
/// lose the records.
pub fn check_writable(path: &Path) -> Result<()> {
    if destination(path)? == Destination::Discard {
        return Ok(());
    }
    if path.is_file() {
        load(path)?;
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(Error::io(
            path,
            format!(
                "its directory {} does not exist; create it or give --metadata-file another path",
                dir.display()
            ),
        ));
    }
    // The file is replaced by a rename: the directory must take a new file.
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        Error::io(
            path,
            format!(
                "cannot write in {}: {e}; give --metadata-file a writable place",
                dir.display()
            ),
        )
    })?;
    Ok(())
}

/// What `path` is as a place for records, from its file type alone (cheap: asked again
/// each time something is written beside it).
fn destination(path: &Path) -> Result<Destination> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |message: &str| Err(Error::io(path, message));
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            refuse("is a directory, not a file; give --metadata-file a file name, e.g. DIR/dpy-metadata.json")
        }
        Ok(meta) if meta.file_type().is_char_device() => Ok(Destination::Discard),
        Ok(meta) if !meta.is_file() => {
            refuse("is not a regular file; give --metadata-file a file (or /dev/null for none)")
        }
        Ok(_) => Ok(Destination::File),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Destination::File),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `text` (an image's SBOM or provenance) beside the metadata file at `path`, as
/// `<folder>/<reference><suffix>`; returns its path relative to the metadata file's
/// directory, or None when the records are discarded (`/dev/null`).
pub fn write_beside(
    path: &Path,
    (folder, suffix): (&str, &str),
    reference: &str,
    text: &str,
) -> Result<Option<String>> {
    if destination(path)? == Destination::Discard {
        return Ok(None);
    }
    let name: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let relative = format!("{folder}/{name}{suffix}");
    let file = parent_dir(path).join(&relative);
    let dir = file.parent().expect("in its folder");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    replace(&file, text.as_bytes())?;
    Ok(Some(relative))
}

/// Writes `bytes` as the file `path`: into a new temporary file in its directory, then
/// renamed over `path`. A reader (or a build running beside this one) sees the old file
/// or the new one, never half of one; and the rename replaces whatever entry `path` is,
/// so a symbolic link planted there (a checked-out repository can hold one) is replaced
/// rather than followed into the file it names.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(path);
    // The mode a plain write would give (0666 less the umask): these files are published,
    // not secrets, and tempfile's own default (0600) would hide them from other users.
    let mut temp = tempfile::Builder::new()
        .prefix(".dpy-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    temp.write_all(bytes)
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| Error::io(temp.path(), e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Adds `records` to the file at `path`, replacing records with the same reference.
pub fn append(path: &Path, records: &[Record]) -> Result<()> {
    if destination(path)? == Destination::Discard {
        return Ok(());
    }
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;

    let mut file = if path.exists() {
        load(path)?
    } else {
        MetadataFile {
            schema: SCHEMA,
            images: Vec::new(),
        }
    };
    for record in records {
        file.images.retain(|r| r.reference != record.reference);
        file.images.push(record.clone());
    }
    file.schema = SCHEMA;
    let json = serde_json::to_string_pretty(&file).expect("metadata serializes") + "\n";
    replace(path, json.as_bytes())?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reference: &str, digest: &str) -> Record {
        let (repo, tag) = reference.rsplit_once(':').unwrap();
        let (registry, repository) = split_repository(repo);
        Record {
            kind: Kind::Runtime,
            name: repository.rsplit('/').next().unwrap().into(),
            registry,
            repository,
            tag: tag.into(),
            reference: reference.into(),
            digest: digest.into(),
            size: 1,
            platforms: vec!["linux/amd64".into()],
            source_image: "python:3.12-alpine3.20".into(),
            source_digest: "sha256:0".into(),
            python_version: "3.12.4".into(),
            os_release: "alpine 3.20".into(),
            built_at: "1970-01-01T00:00:00Z".into(),
            site_packages: None,
            broken_modules: Vec::new(),
            builder_pip: None,
            sbom: None,
            provenance: None,
            signed_with: None,
            inputs: None,
            manifests: Vec::new(),
            compression: None,
            debug_info_stripped: None,
            stages: None,
        }
    }

    #[test]
    fn repositories_split_like_the_docker_cli() {
        assert_eq!(
            split_repository("python"),
            ("docker.io".into(), "library/python".into())
        );
        assert_eq!(
            split_repository("me/py"),
            ("docker.io".into(), "me/py".into())
        );
        assert_eq!(
            split_repository("ghcr.io/me/py"),
            ("ghcr.io".into(), "me/py".into())
        );
        assert_eq!(
            split_repository("localhost:5000/py"),
            ("localhost:5000".into(), "py".into())
        );
    }

    #[test]
    fn a_record_replaces_the_one_with_its_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        append(
            &path,
            &[
                record("me/py:3.12", "sha256:1"),
                record("me/py:3.13", "sha256:2"),
            ],
        )
        .unwrap();
        append(&path, &[record("me/py:3.12", "sha256:3")]).unwrap();
        let file = load(&path).unwrap();
        assert_eq!(file.schema, SCHEMA);
        assert_eq!(file.images.len(), 2);
        let digests: Vec<&str> = file.images.iter().map(|r| r.digest.as_str()).collect();
        assert!(digests.contains(&"sha256:3") && !digests.contains(&"sha256:1"));
    }

    #[test]
    fn older_files_still_load() {
        // No schema field, no site_packages, no manifests: as the first builds wrote them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        let mut old = serde_json::to_value(MetadataFile {
            schema: SCHEMA,
            images: vec![record("me/py:3.12", "sha256:1")],
        })
        .unwrap();
        old.as_object_mut().unwrap().remove("schema");
        for image in old["images"].as_array_mut().unwrap() {
            image.as_object_mut().unwrap().remove("site_packages");
            image.as_object_mut().unwrap().remove("manifests");
        }
        std::fs::write(&path, old.to_string()).unwrap();
        let file = load(&path).unwrap();
        assert_eq!(file.schema, 1);
        assert_eq!(file.images[0].site_packages, None);
        append(&path, &[record("me/py:3.13", "sha256:2")]).unwrap();
        assert_eq!(load(&path).unwrap().images.len(), 2);
    }

    #[test]
    fn a_device_discards_the_records() {
        append(Path::new("/dev/null"), &[record("me/py:1", "sha256:x")]).unwrap();
        assert!(!Path::new("/dev/null.lock").exists());
        assert!(!Path::new("/dev/null").is_file());
    }

    #[test]
    fn an_sbom_goes_beside_the_metadata_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let written = write_beside(&path, SBOM, "127.0.0.1:5000/me/py:3.12", "{}\n").unwrap();
        assert_eq!(
            written.as_deref(),
            Some("dpy-sbom/127.0.0.1_5000_me_py_3.12.spdx.json")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(written.unwrap())).unwrap(),
            "{}\n"
        );
        assert_eq!(
            write_beside(Path::new("/dev/null"), SBOM, "me/py:1", "{}").unwrap(),
            None
        );
    }

    /// A link planted where an SBOM, a statement or the metadata file goes is replaced by
    /// the file, and what it pointed to is left as it was.
    #[test]
    fn a_link_at_the_target_is_replaced_not_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me\n").unwrap();
        std::fs::create_dir(dir.path().join("dpy-sbom")).unwrap();
        std::fs::create_dir(dir.path().join("dpy-provenance")).unwrap();
        let targets = [
            (SBOM, "dpy-sbom/me_py_3.12.spdx.json"),
            (PROVENANCE, "dpy-provenance/me_py_3.12.intoto.json"),
        ];
        for (_, relative) in targets {
            symlink(&victim, dir.path().join(relative)).unwrap();
        }
        // A dangling link too: following it would create the file it names.
        let dangling = dir.path().join("created-through-the-link");
        symlink(&dangling, dir.path().join("dpy-sbom/me_py_3.13.spdx.json")).unwrap();

        for (place, relative) in targets {
            let written = write_beside(&path, place, "me/py:3.12", "{}\n").unwrap();
            assert_eq!(written.as_deref(), Some(relative));
            let file = dir.path().join(relative);
            assert!(file.symlink_metadata().unwrap().file_type().is_file());
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}\n");
        }
        write_beside(&path, SBOM, "me/py:3.13", "{}\n").unwrap();
        assert!(!dangling.exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");

        // The metadata file: the link's target is read as the earlier records (it must
        // be metadata), and the new file takes the link's place.
        let records = dir.path().join("elsewhere.json");
        append(&records, &[record("me/py:1", "sha256:1")]).unwrap();
        let before = std::fs::read(&records).unwrap();
        symlink(&records, &path).unwrap();
        append(&path, &[record("me/py:2", "sha256:2")]).unwrap();
        assert!(path.symlink_metadata().unwrap().file_type().is_file());
        assert_eq!(load(&path).unwrap().images.len(), 2);
        assert_eq!(std::fs::read(&records).unwrap(), before);
        // No temporary file stays behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dpy-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    /// The files are published: they get the mode a plain write would, not tempfile's
    /// owner-only one.
    #[test]
    fn written_files_are_readable_by_others_as_a_plain_write_would_be() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        let path = dir.path().join("m.json");
        let relative = write_beside(&path, SBOM, "me/py:1", "{}").unwrap().unwrap();
        append(&path, &[record("me/py:1", "sha256:1")]).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(relative)), mode(&plain));
        assert_eq!(mode(&path), mode(&plain));
    }

    #[test]
    fn a_directory_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let e = append(dir.path(), &[record("me/py:1", "sha256:x")]).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::IO);
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(check_writable(dir.path()).is_err());
    }

    #[test]
    fn a_missing_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nowhere/m.json");
        let e = check_writable(&path).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::IO);
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(check_writable(&dir.path().join("m.json")).is_ok());
        assert!(
            !dir.path().join("m.json").exists(),
            "a check writes nothing"
        );
    }

    #[test]
    fn a_file_that_is_not_metadata_is_refused_before_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "my notes\n").unwrap();
        let e = check_writable(&path).unwrap_err();
        assert!(e.to_string().contains("not a dpy metadata file"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes\n");
    }

    #[test]
    fn concurrent_writers_do_not_lose_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    append(&path, &[record(&format!("me/py:{i}"), "sha256:x")]).unwrap()
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(load(&path).unwrap().images.len(), 8);
    }
}
