//! How pushed layers are compressed: a leaf that the records, the inputs, the
//! provenance statement and the push all name, so none of them needs the others.

/// How pushed layers are compressed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// The engine's own push: Docker's gzip media types, as every client reads.
    Gzip,
    /// dpy's push: OCI zstd layers, smaller to pull; Docker 20.10 and later pull them
    /// (tests/publish.rs pulls and runs one).
    Zstd,
}

impl Compression {
    /// What the layers of a manifest are, from their media types.
    pub fn of_media_types<'a>(mut types: impl Iterator<Item = &'a str>) -> Compression {
        if types.any(|t| t.ends_with("+zstd") || t.ends_with(".zstd")) {
            Compression::Zstd
        } else {
            Compression::Gzip
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compression_of_a_manifest_is_read_from_its_layer_types() {
        let docker = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert_eq!(
            Compression::of_media_types([docker].into_iter()),
            Compression::Gzip
        );
        assert_eq!(
            Compression::of_media_types([docker, zstd].into_iter()),
            Compression::Zstd
        );
    }
}
