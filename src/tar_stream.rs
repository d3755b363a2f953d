//! Tar archives streamed to the engine, their files read from disk as the engine reads
//! the stream: a build context with the distilled root in it (crate::context), the
//! archive `docker load` takes (crate::assemble). Nothing large is held in memory, and
//! the headers are fixed (owners root, times 0), so the same entries give the same bytes.

use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};

/// The bytes of an archive, piece by piece.
pub type Chunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// One regular file of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Bytes(Bytes),
    /// A file of dpy's own, `size` bytes long (checked as it is read).
    File(PathBuf, u64),
}

impl Data {
    pub fn size(&self) -> u64 {
        match self {
            Data::Bytes(bytes) => bytes.len() as u64,
            Data::File(_, size) => *size,
        }
    }
}

/// The archive of `entries`, in their order, ended as tar ends.
pub fn archive(entries: Vec<Entry>) -> Chunks {
    Box::pin(
        stream::iter(entries)
            .then(Entry::chunks)
            .flatten()
            .chain(stream::once(async { Ok(Bytes::from_static(&[0; 1024])) })),
    )
}

impl Entry {
    /// The entry's header, its data and the padding to a whole block.
    async fn chunks(self) -> Chunks {
        let size = self.data.size();
        let header = match header(&self.name, self.mode, size) {
            Ok(header) => header,
            Err(e) => return Box::pin(stream::once(async { Err(e) })),
        };
        let padding = Bytes::from(vec![0; ((512 - size % 512) % 512) as usize]);
        let data: Chunks = match self.data {
            Data::Bytes(bytes) => Box::pin(stream::once(async { Ok(bytes) })),
            Data::File(path, size) => match tokio::fs::File::open(&path).await {
                Ok(file) => Box::pin(exactly(
                    tokio_util::io::ReaderStream::new(tokio::io::AsyncReadExt::take(file, size)),
                    size,
                    path,
                )),
                Err(e) => Box::pin(stream::once(async { Err(e) })),
            },
        };
        Box::pin(
            stream::once(async { Ok(header) })
                .chain(data)
                .chain(stream::once(async { Ok(padding) })),
        )
    }
}

/// `chunks`, failing at the end if they came to fewer than `size` bytes (a file that
/// shrank after its header was written would otherwise shift every entry after it).
fn exactly(
    chunks: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    size: u64,
    path: PathBuf,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = counted.clone();
    chunks
        .inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                seen.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .chain(stream::once(async move {
            let read = counted.load(std::sync::atomic::Ordering::Relaxed);
            if read == size {
                Ok(Bytes::new())
            } else {
                Err(std::io::Error::other(format!(
                    "{} was {read} bytes, not the {size} it was when it was written",
                    path.display()
                )))
            }
        }))
}

/// The header of a regular file: its name, mode and size; owners root, time 0.
fn header(name: &str, mode: u32, size: u64) -> std::io::Result<Bytes> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name)?;
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(Bytes::copy_from_slice(header.as_bytes()))
}

/// The whole stream, collected: for tests.
#[cfg(test)]
pub async fn collect(mut chunks: Chunks) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What `tar` reads back is what went in, and the bytes are those the tar crate's
    /// own builder writes for the same entries.
    #[tokio::test]
    async fn a_streamed_archive_reads_back_and_matches_the_tar_crate() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("big");
        std::fs::write(&on_disk, vec![7u8; 70_000]).unwrap();
        let entries = vec![
            Entry {
                name: "a/x".into(),
                mode: 0o755,
                data: Data::Bytes(Bytes::from_static(b"one")),
            },
            Entry {
                name: "root.tar".into(),
                mode: 0o644,
                data: Data::File(on_disk.clone(), 70_000),
            },
        ];
        let bytes = collect(archive(entries.clone())).await.unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        for (name, mode, data) in [
            ("a/x", 0o755, b"one".to_vec()),
            ("root.tar", 0o644, vec![7; 70_000]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, name, data.as_slice())
                .unwrap();
        }
        assert_eq!(bytes, builder.into_inner().unwrap());
        let mut archive_ = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive_.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            names.push((entry.path().unwrap().display().to_string(), data.len()));
        }
        assert_eq!(
            names,
            [("a/x".to_string(), 3), ("root.tar".to_string(), 70_000)]
        );

        // A file shorter than its entry says fails the stream rather than shift the rest.
        std::fs::write(&on_disk, vec![7u8; 100]).unwrap();
        let e = collect(archive(entries)).await.unwrap_err();
        assert!(
            e.to_string().contains("was 100 bytes, not the 70000"),
            "{e}"
        );
    }
}
