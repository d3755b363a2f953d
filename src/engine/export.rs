//! A tar export proves itself complete before anyone reads it.
//!
//! The cause of the partial exports seen under load (1 in 30 `dpy doctor` probes run
//! side by side): bollard's session handler for `type=tar` outputs writes the archive
//! with `tokio::fs::File::write_all` and returns without `flush`. tokio's file hands each
//! write to a blocking thread and reports it done at once, so when BuildKit ends the
//! build the last chunk can still be on its way to disk, and a reader that opens the
//! file right then sees it cut short: no error anywhere, just a tar that stops early.
//!
//! So dpy waits for the archive's own end: the two zero blocks that a tar writer puts
//! after the last entry. An archive whose entries run to a proper end marker is whole;
//! one that stays short past a grace period is reported, and the build is started again.
//! An export that carries a `manifest.json` (the gather stage writes one last, listing
//! every file it wrote with its size) must also hold each file it lists, at that size.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a late last chunk may take to land. It is milliseconds in practice; this is
/// generous because a loaded 2-core machine can starve the blocking pool for a while.
const GRACE: Duration = Duration::from_secs(10);

/// Waits until the tar at `path` is whole; returns why it is not after the grace period.
pub async fn settle(path: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let why = match complete(path) {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if started.elapsed() > GRACE {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the archive at `path` runs through its entries to an end-of-archive marker.
pub fn complete(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("the exported tar: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("the exported tar: {e}"))?
        .len();
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    // Where the last entry's data ends, rounded up to a block.
    let mut end = 0u64;
    let mut entries = 0usize;
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut manifest = None;
    for entry in archive
        .entries()
        .map_err(|e| format!("the exported tar: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("the exported tar breaks off: {e}"))?;
        let size = entry.header().entry_size().unwrap_or(0);
        end = entry.raw_file_position() + size.div_ceil(512) * 512;
        entries += 1;
        let name = entry
            .path()
            .map(|p| normal(&p.to_string_lossy()))
            .unwrap_or_default();
        let kind = entry.header().entry_type();
        if name == MANIFEST {
            // Written by the source's own code like the rest: read no more of it than
            // a manifest of an ordinary export holds.
            let mut text = String::new();
            (&mut entry)
                .take(MANIFEST_MAX)
                .read_to_string(&mut text)
                .map_err(|e| format!("the exported tar breaks off in {MANIFEST}: {e}"))?;
            manifest = Some(text);
        } else if kind.is_symlink() || kind.is_hard_link() {
            found.insert(name, Found::Link);
        } else if kind.is_file() {
            found.insert(name, Found::File(size));
        }
    }
    if end + 1024 > len {
        return Err(format!(
            "the exported tar breaks off after {entries} entries ({len} bytes, no end-of-archive marker)"
        ));
    }
    let mut tail = [0u8; 1024];
    let mut file = std::fs::File::open(path).map_err(|e| format!("the exported tar: {e}"))?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(end))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| format!("the exported tar: {e}"))?;
    if tail.iter().any(|b| *b != 0) {
        return Err(format!(
            "the exported tar has no end-of-archive marker after its {entries} entries"
        ));
    }
    match manifest {
        Some(text) => against_manifest(&text, &found),
        None => Ok(()),
    }
}

/// The gather stage's list of what it wrote, as the export must hold it.
pub const MANIFEST: &str = "manifest.json";

/// The most of a manifest that is read: an ordinary one is under 2 MB.
const MANIFEST_MAX: u64 = 64 << 20;

#[derive(serde::Deserialize)]
struct Manifest {
    /// Path (relative to the export's root) → size in bytes.
    files: HashMap<String, u64>,
    links: Vec<String>,
}

enum Found {
    File(u64),
    Link,
}

fn normal(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

fn against_manifest(text: &str, found: &HashMap<String, Found>) -> Result<(), String> {
    let manifest: Manifest = serde_json::from_str(text)
        .map_err(|e| format!("the export's {MANIFEST} is not readable: {e}"))?;
    let mut wrong = Vec::new();
    for (path, size) in &manifest.files {
        match found.get(path.as_str()) {
            Some(Found::File(have)) if have == size => {}
            // A hard link's data is its target's, checked under the target's name.
            Some(Found::Link) => {}
            Some(Found::File(have)) => wrong.push(format!("{path} ({have} of {size} bytes)")),
            None => wrong.push(format!("{path} (missing)")),
        }
    }
    for path in &manifest.links {
        if !found.contains_key(path.as_str()) {
            wrong.push(format!("{path} (missing link)"));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    wrong.sort();
    Err(format!(
        "the export lacks {} of the {} files its {MANIFEST} lists, e.g. {}",
        wrong.len(),
        manifest.files.len() + manifest.links.len(),
        wrong[0]
    ))
}

/// Fault injection for the tests: `DPY_FAULT_CUT_EXPORTS=N` cuts the first N gather
/// exports (target `export`) of this process in half after they arrived, as the race
/// above did, so a test can show that dpy notices, builds again, and then fails cleanly.
/// Unset, it does nothing.
pub fn inject_cut(target: &str, path: &Path) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CUT: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = std::env::var("DPY_FAULT_CUT_EXPORTS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if target == "export" && CUT.fetch_add(1, Ordering::SeqCst) < limit {
        if let Ok(meta) = std::fs::metadata(path) {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(meta.len() / 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, usize)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, size) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(*size as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, vec![7u8; *size].as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_whole_archive_is_complete_and_every_cut_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let whole = archive(&[("a", 10), ("b/c", 3000), ("d", 0), ("e", 512)]);
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(complete(&path), Ok(()));
        // Every cut, at a block boundary (where a late chunk would end) or inside one.
        for cut in (0..whole.len())
            .step_by(97)
            .chain((0..whole.len()).step_by(512))
        {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(complete(&path).is_err(), "cut at {cut} of {}", whole.len());
        }
    }

    #[test]
    fn a_manifest_names_what_the_export_must_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let listed = |files: &str| {
            let manifest = format!("{{\"files\": {{{files}}}, \"links\": []}}");
            let mut builder = tar::Builder::new(Vec::new());
            for (name, data) in [("a", &b"12345"[..]), ("root/b", &b"xy"[..])] {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append_data(&mut header, name, data).unwrap();
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(manifest.len() as u64);
            header.set_cksum();
            builder
                .append_data(&mut header, MANIFEST, manifest.as_bytes())
                .unwrap();
            builder.into_inner().unwrap()
        };
        std::fs::write(&path, listed(r#""a": 5, "root/b": 2"#)).unwrap();
        assert_eq!(complete(&path), Ok(()));
        std::fs::write(&path, listed(r#""a": 5, "root/b": 3"#)).unwrap();
        assert!(complete(&path)
            .unwrap_err()
            .contains("root/b (2 of 3 bytes)"));
        std::fs::write(&path, listed(r#""a": 5, "root/c": 1"#)).unwrap();
        assert!(complete(&path).unwrap_err().contains("root/c (missing)"));
    }

    #[tokio::test]
    async fn settle_waits_for_a_late_last_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let whole = archive(&[("a", 100_000)]);
        std::fs::write(&path, &whole[..whole.len() - 1024]).unwrap();
        let late = path.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::fs::write(&late, &whole).unwrap();
        });
        assert_eq!(settle(&path).await, Ok(()));
        writer.await.unwrap();
    }
}
