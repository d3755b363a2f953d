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
    for entry in archive
        .entries()
        .map_err(|e| format!("the exported tar: {e}"))?
    {
        let entry = entry.map_err(|e| format!("the exported tar breaks off: {e}"))?;
        let size = entry.header().entry_size().unwrap_or(0);
        end = entry.raw_file_position() + size.div_ceil(512) * 512;
        entries += 1;
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
    Ok(())
}

/// Fault injection for the tests: `DPY_FAULT_CUT_EXPORTS=N` cuts the first N exports
/// of this process in half after they arrived, as the race above did, so a test can
/// show that dpy notices, builds again, and then fails cleanly. Unset, it does nothing.
pub fn inject_cut(path: &Path) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CUT: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = std::env::var("DPY_FAULT_CUT_EXPORTS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if CUT.fetch_add(1, Ordering::SeqCst) < limit {
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
