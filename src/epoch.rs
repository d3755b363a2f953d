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
pub async fn pin(engine: &Engine, id: &str, hold: &str, epoch: &Epoch) -> Result<String> {
    let mut saved = Vec::new();
    let mut stream = engine.docker().export_image(id);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.map_err(|e| Error::engine(&format!("saving {id}"), e))?);
    }
    let (archive, new_id) = rewrite(&saved, hold, epoch)?;
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
fn rewrite(saved: &[u8], tag: &str, epoch: &Epoch) -> Result<(Vec<u8>, String)> {
    let broken = |what: &str| Error::Engine(format!("the saved image is not readable: {what}"));
    let mut files: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(saved);
    for entry in archive.entries().map_err(|e| broken(&e.to_string()))? {
        let mut entry = entry.map_err(|e| broken(&e.to_string()))?;
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| broken(&e.to_string()))?;
        files.push((entry.header().clone(), data));
    }
    let name = |h: &tar::Header| {
        h.path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let manifest_at = files
        .iter()
        .position(|(h, _)| name(h) == "manifest.json")
        .ok_or_else(|| broken("no manifest.json"))?;
    let mut manifest: Value =
        serde_json::from_slice(&files[manifest_at].1).map_err(|e| broken(&e.to_string()))?;
    let config_name = manifest[0]["Config"]
        .as_str()
        .ok_or_else(|| broken("no config in manifest.json"))?
        .to_string();
    let config_at = files
        .iter()
        .position(|(h, _)| name(h) == config_name)
        .ok_or_else(|| broken("the config named by manifest.json is missing"))?;
    let mut config: Value =
        serde_json::from_slice(&files[config_at].1).map_err(|e| broken(&e.to_string()))?;
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

    // The layers as they came; the old config, tags and the OCI index go (docker load
    // then reads manifest.json, the one place that names the new config).
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
    for (header, data) in &files {
        let path = name(header);
        if dropped.contains(&path.as_str()) || !written.insert(path.clone()) {
            continue;
        }
        let mut header = header.clone();
        out.append_data(&mut header, &path, data.as_slice())
            .map_err(|e| broken(&e.to_string()))?;
    }
    append(&mut out, &new_config_name, &config_bytes).map_err(|e| broken(&e.to_string()))?;
    append(&mut out, "manifest.json", &manifest_bytes).map_err(|e| broken(&e.to_string()))?;
    let archive = out.into_inner().map_err(|e| broken(&e.to_string()))?;
    Ok((archive, format!("sha256:{digest}")))
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

    fn saved(config: &Value) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        let config_bytes = serde_json::to_vec(config).unwrap();
        let manifest = serde_json::json!([{
            "Config": "abc.json", "RepoTags": ["dpy-hold/x:runtime"], "Layers": ["l1/layer.tar"]
        }]);
        for (path, data) in [
            ("l1/layer.tar", b"layer bytes".to_vec()),
            ("abc.json", config_bytes),
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

    fn config_at(created: &str) -> Value {
        serde_json::json!({
            "architecture": "amd64",
            "created": created,
            "history": [{"created": created, "created_by": "ADD root.tar / # buildkit"}],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:1"]}
        })
    }

    #[test]
    fn two_builds_at_two_times_give_one_image_id() {
        let epoch = Epoch(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let (a, id_a) =
            rewrite(&saved(&config_at("2026-01-01T10:00:00.1Z")), "t:1", &epoch).unwrap();
        let (_, id_b) =
            rewrite(&saved(&config_at("2026-02-02T11:11:11.2Z")), "t:1", &epoch).unwrap();
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
                assert_eq!(manifest[0]["Layers"], serde_json::json!(["l1/layer.tar"]));
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
