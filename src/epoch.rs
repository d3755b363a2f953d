//! The build's epoch, and images whose bytes depend on their inputs, not on the clock.
//!
//! BuildKit writes the wall clock into every image config it exports (`created` and each
//! history entry), so two builds of the same inputs got two image ids, and every
//! scheduled rebuild moved every digest. The engine's built-in BuildKit (20.10) ignores
//! SOURCE_DATE_EPOCH, so dpy pins the times itself, the same way on old and new engines:
//! it takes the image BuildKit made (`docker save` through the Engine API), writes every
//! time of its config as the epoch, and loads the result back (`docker load`). Only the
//! config changes; the layers go back as they came.
//!
//! Why rewrite rather than assemble the runtime image from root.tar: the config stays
//! the one the runtime Dockerfile declares (one place for ENV, USER, ENTRYPOINT), and
//! the same step serves any image whose layers are already reproducible.
//!
//! The epoch is SOURCE_DATE_EPOCH when set, otherwise the source image's own `created`:
//! a rebuild from the same source gives the same bytes, and a new source moves the date.

use std::collections::HashSet;
use std::io::Read;

use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// SOURCE_DATE_EPOCH, when set to a number of seconds: the one reader of it.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// The one time every image of a build carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(OffsetDateTime);

impl Epoch {
    /// SOURCE_DATE_EPOCH when set, else the source image's `created`, else 1970.
    pub fn of(source_created: Option<OffsetDateTime>) -> Self {
        let from_env =
            source_date_epoch().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        Epoch(
            from_env
                .or(source_created)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// Seconds since 1970 (0 for anything earlier): what tar headers carry.
    pub fn seconds(&self) -> u64 {
        self.0.unix_timestamp().max(0) as u64
    }

    /// RFC 3339, whole seconds, UTC: `2024-06-01T12:00:00Z`.
    pub fn rfc3339(&self) -> String {
        self.0
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }
}

/// Pins every time in the config of the image `id` (held by the tag `hold`) to `epoch`:
/// the image is saved, its config rewritten, and loaded back under the same hold tag.
/// Returns the new image id; the old image, now untagged, is removed.
pub async fn pin(
    engine: &Engine,
    id: &str,
    hold: &str,
    epoch: &Epoch,
    kept: &[String],
) -> Result<String> {
    let mut saved = Vec::new();
    let mut stream = engine.docker().export_image(id);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.map_err(|e| Error::engine(&format!("saving {id}"), e))?);
    }
    let (archive, new_id) = rewrite(&saved, hold, epoch, kept)?;
    if new_id != id {
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut answer =
            engine
                .docker()
                .import_image(options, bollard::body_full(archive.into()), None);
        while let Some(item) = answer.next().await {
            let info = item.map_err(|e| Error::engine(&format!("loading {hold}"), e))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::Engine(format!("loading {hold}: {message}")));
            }
        }
        engine.remove_quietly(id).await;
    }
    Ok(new_id)
}

/// The saved image archive with its config's times pinned and `tag` as its only tag,
/// and the id of the image it holds (the digest of the new config).
fn rewrite(saved: &[u8], tag: &str, epoch: &Epoch, kept: &[String]) -> Result<(Vec<u8>, String)> {
    let broken = |what: &str| Error::Engine(format!("the saved image is not readable: {what}"));
    // (path, header, bytes) of every file of the archive, in order.
    let mut files: Vec<(String, tar::Header, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(saved);
    for entry in archive.entries().map_err(|e| broken(&e.to_string()))? {
        let mut entry = entry.map_err(|e| broken(&e.to_string()))?;
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| broken(&e.to_string()))?;
        let path = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        files.push((path, entry.header().clone(), data));
    }
    let find = |files: &[(String, tar::Header, Vec<u8>)], wanted: &str| {
        files.iter().position(|(path, _, _)| path == wanted)
    };
    let manifest_at = find(&files, "manifest.json").ok_or_else(|| broken("no manifest.json"))?;
    let mut manifest: Value =
        serde_json::from_slice(&files[manifest_at].2).map_err(|e| broken(&e.to_string()))?;
    let config_name = manifest[0]["Config"]
        .as_str()
        .ok_or_else(|| broken("no config in manifest.json"))?
        .to_string();
    let config_at = find(&files, &config_name)
        .ok_or_else(|| broken("the config named by manifest.json is missing"))?;
    let mut config: Value =
        serde_json::from_slice(&files[config_at].2).map_err(|e| broken(&e.to_string()))?;

    // The layers the image added to its base: their file times clamped to the epoch.
    let layer_paths: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if layer_paths.len() != diff_ids.len() {
        return Err(broken("manifest.json and the config name different layers"));
    }
    let mut new_paths = layer_paths.clone();
    for i in 0..layer_paths.len() {
        if kept.contains(&diff_ids[i]) {
            continue;
        }
        if let Some(j) = (0..i).find(|&j| layer_paths[j] == layer_paths[i]) {
            // The same file named twice (empty layers): rewritten once.
            diff_ids[i] = diff_ids[j].clone();
            new_paths[i] = new_paths[j].clone();
            continue;
        }
        let at = find(&files, &layer_paths[i])
            .ok_or_else(|| broken("a layer named by manifest.json is missing"))?;
        let Some(clamped) =
            clamp_times(&files[at].2, epoch.seconds()).map_err(|e| broken(&e.to_string()))?
        else {
            continue;
        };
        let digest = format!("{:x}", Sha256::digest(&clamped));
        diff_ids[i] = format!("sha256:{digest}");
        // An OCI-layout archive names blobs by their digest, so the name moves with it.
        if layer_paths[i].starts_with("blobs/sha256/") {
            new_paths[i] = format!("blobs/sha256/{digest}");
        }
        files[at].0 = new_paths[i].clone();
        files[at].1.set_size(clamped.len() as u64);
        files[at].2 = clamped;
    }
    config["rootfs"]["diff_ids"] = serde_json::json!(diff_ids);
    manifest[0]["Layers"] = serde_json::json!(new_paths);

    pin_config(&mut config, epoch);
    let config_bytes = serde_json::to_vec(&config).expect("a config serializes");
    let digest = format!("{:x}", Sha256::digest(&config_bytes));
    // Where the config sits: `<digest>.json` (docker-archive) or `blobs/sha256/<digest>`.
    let new_config_name = match config_name.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{digest}"),
        None => format!("{digest}.json"),
    };
    manifest[0]["Config"] = Value::String(new_config_name.clone());
    manifest[0]["RepoTags"] = serde_json::json!([tag]);
    let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    // The layers (clamped or as they came); the old config, tags and the OCI index go
    // (docker load then reads manifest.json, the one place that names the new config).
    let dropped = [
        config_name.as_str(),
        "manifest.json",
        "repositories",
        "index.json",
        "oci-layout",
    ];
    let mut out = tar::Builder::new(Vec::new());
    let append = |out: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        out.append_data(&mut header, path, data)
    };
    let mut written: HashSet<String> = HashSet::new();
    for (path, header, data) in &files {
        if dropped.contains(&path.as_str()) || !written.insert(path.clone()) {
            continue;
        }
        let mut header = header.clone();
        out.append_data(&mut header, path, data.as_slice())
            .map_err(|e| broken(&e.to_string()))?;
    }
    append(&mut out, &new_config_name, &config_bytes).map_err(|e| broken(&e.to_string()))?;
    append(&mut out, "manifest.json", &manifest_bytes).map_err(|e| broken(&e.to_string()))?;
    let archive = out.into_inner().map_err(|e| broken(&e.to_string()))?;
    Ok((archive, format!("sha256:{digest}")))
}

/// A layer with every file time later than `epoch` set to `epoch`, or None when none
/// is later. Only those headers change (in place, with their checksums): names, modes,
/// contents and order stay byte for byte, so a layer with nothing to clamp keeps its
/// diff id. BuildKit writes the wall clock into what COPY and RUN create, and the
/// engine's 20.10 BuildKit cannot be told otherwise. A gzip'd layer (an OCI-layout
/// save) is clamped uncompressed, which docker load takes as well.
fn clamp_times(layer: &[u8], epoch: u64) -> std::io::Result<Option<Vec<u8>>> {
    let plain: std::borrow::Cow<[u8]> = if layer.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(layer).read_to_end(&mut out)?;
        out.into()
    } else {
        layer.into()
    };
    let mut clamped: Option<Vec<u8>> = None;
    let mut archive = tar::Archive::new(&plain[..]);
    // Raw: long-name and PAX entries come as they are, each with its own header.
    for entry in archive.entries()?.raw(true) {
        let entry = entry?;
        if entry.header().mtime()? <= epoch {
            continue;
        }
        let mut header = entry.header().clone();
        header.set_mtime(epoch);
        header.set_cksum();
        let at = entry.raw_header_position() as usize;
        clamped.get_or_insert_with(|| plain.to_vec())[at..at + 512]
            .copy_from_slice(header.as_bytes());
    }
    Ok(clamped)
}

/// Every time of an image config: `created` and each history entry's.
fn pin_config(config: &mut Value, epoch: &Epoch) {
    let at = Value::String(epoch.rfc3339());
    if let Some(object) = config.as_object_mut() {
        object.insert("created".into(), at.clone());
    }
    if let Some(history) = config.get_mut("history").and_then(Value::as_array_mut) {
        for entry in history {
            if let Some(entry) = entry.as_object_mut() {
                entry.insert("created".into(), at.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer as the engine saves it: files `a` and `b` made at `mtime`.
    fn layer(mtime: u64) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        for (path, data) in [("a", b"one".as_slice()), ("b", b"two".as_slice())] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_cksum();
            out.append_data(&mut header, path, data).unwrap();
        }
        out.into_inner().unwrap()
    }

    fn diff_id(layer: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(layer))
    }

    /// A saved image: a base layer (made at 1000) and a layer made at `built`.
    fn saved(created: &str, built: u64) -> Vec<u8> {
        let (base, added) = (layer(1000), layer(built));
        let config = serde_json::json!({
            "architecture": "amd64",
            "created": created,
            "history": [{"created": created, "created_by": "ADD root.tar / # buildkit"}],
            "rootfs": {"type": "layers", "diff_ids": [diff_id(&base), diff_id(&added)]}
        });
        let manifest = serde_json::json!([{
            "Config": "abc.json", "RepoTags": ["dpy-hold/x:runtime"],
            "Layers": ["l0/layer.tar", "l1/layer.tar"]
        }]);
        let mut out = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("l0/layer.tar", base),
            ("l1/layer.tar", added),
            ("abc.json", serde_json::to_vec(&config).unwrap()),
            ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
            ("repositories", b"{}".to_vec()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_cksum();
            out.append_data(&mut header, path, data.as_slice()).unwrap();
        }
        out.into_inner().unwrap()
    }

    /// (path, bytes) of every file of an archive.
    fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(archive);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((path, data));
        }
        out
    }

    #[test]
    fn files_made_after_the_epoch_get_the_epoch_and_the_base_stays_as_it_was() {
        let epoch = Epoch(OffsetDateTime::from_unix_timestamp(5000).unwrap());
        let kept = [diff_id(&layer(1000))];
        let (a, id_a) =
            rewrite(&saved("2026-01-01T10:00:00Z", 9000), "t:1", &epoch, &kept).unwrap();
        let (_, id_b) =
            rewrite(&saved("2026-01-02T10:00:00Z", 9999), "t:1", &epoch, &kept).unwrap();
        assert_eq!(id_a, id_b);
        let files = files(&a);
        let read = |name: &str| files.iter().find(|(p, _)| p == name).unwrap().1.clone();
        assert_eq!(read("l0/layer.tar"), layer(1000));
        assert_eq!(read("l1/layer.tar"), layer(5000));
        let config_name = files
            .iter()
            .find(|(p, _)| p.ends_with(".json") && p != "manifest.json")
            .unwrap();
        let config: Value = serde_json::from_slice(&config_name.1).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([diff_id(&layer(1000)), diff_id(&layer(5000))])
        );
        // Nothing later than the epoch: the layer keeps its bytes.
        assert_eq!(clamp_times(&layer(5000), 5000).unwrap(), None);
        // Not kept: the base is clamped too.
        let (b, _) = rewrite(
            &saved("2026-01-01T10:00:00Z", 9000),
            "t:1",
            &Epoch(OffsetDateTime::from_unix_timestamp(500).unwrap()),
            &[],
        )
        .unwrap();
        let files_b = super::tests::files(&b);
        assert_eq!(
            files_b.iter().find(|(p, _)| p == "l0/layer.tar").unwrap().1,
            layer(500)
        );
    }

    #[test]
    fn two_builds_at_two_times_give_one_image_id() {
        let epoch = Epoch(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let (a, id_a) = rewrite(&saved("2026-01-01T10:00:00.1Z", 1), "t:1", &epoch, &[]).unwrap();
        let (_, id_b) = rewrite(&saved("2026-02-02T11:11:11.2Z", 1), "t:1", &epoch, &[]).unwrap();
        assert_eq!(id_a, id_b);
        let mut archive = tar::Archive::new(a.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            if path.ends_with(".json") && path != "manifest.json" {
                let config: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(config["created"], "2023-11-14T22:13:20Z");
                assert_eq!(config["history"][0]["created"], "2023-11-14T22:13:20Z");
                assert_eq!(
                    format!("sha256:{:x}", Sha256::digest(data.as_bytes())),
                    id_a
                );
            }
            if path == "manifest.json" {
                let manifest: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["t:1"]));
                assert_eq!(
                    manifest[0]["Layers"],
                    serde_json::json!(["l0/layer.tar", "l1/layer.tar"])
                );
            }
            names.push(path);
        }
        assert!(names.contains(&"l1/layer.tar".to_string()));
        assert!(!names.contains(&"abc.json".to_string()));
        assert!(!names.contains(&"repositories".to_string()));
    }

    #[test]
    fn the_epoch_is_whole_seconds_in_utc() {
        let created = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        if std::env::var("SOURCE_DATE_EPOCH").is_err() {
            assert_eq!(Epoch::of(Some(created)).rfc3339(), "2023-11-14T22:13:20Z");
            assert_eq!(Epoch::of(None).rfc3339(), "1970-01-01T00:00:00Z");
        }
    }
}
