//! The images' configs: the one place that declares what the runtime image runs as
//! (ENV, USER, WORKDIR, ENTRYPOINT) and what the -buildroot image sets over its builder
//! (BUILD_ROOT, PATH, ...), and the OCI image configs dpy writes from them.
//!
//! The runtime and -debug images are assembled by dpy (crate::assemble) from the layers
//! the distill wrote, so their config is written here rather than by a Dockerfile
//! through BuildKit. ARCHITECTURE.md shows [`RuntimeConfig::markdown`] for a source in
//! the official layout, and a test keeps the two equal.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::epoch::Epoch;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::platform::Platform;
use crate::runtime::{BUILD_ROOT, HOME, NONROOT_UID};

/// What a runtime image runs as. The values come from the source's layout, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// In this order: PATH, LANG, then what keeps the image as it was built.
    pub env: Vec<(&'static str, String)>,
    pub user: String,
    pub working_dir: &'static str,
    pub entrypoint: Vec<String>,
}

impl RuntimeConfig {
    /// The config of an image made from a source of this layout. Its entrypoint is
    /// checked once more here, where it becomes the image's ENTRYPOINT and its directory
    /// the head of PATH.
    pub fn of(layout: &Layout) -> Result<Self> {
        let entrypoint = &layout.python.entrypoint;
        crate::shape::entrypoint(entrypoint).map_err(|why| {
            Error::SourceUnfit(format!(
                "the source image's layout.json names the entrypoint {}: {why}; build from an unaltered source image",
                crate::shape::show(entrypoint)
            ))
        })?;
        Ok(RuntimeConfig {
            env: vec![
                ("PATH", runtime_path(layout.bin_dir())),
                // Every official image sets it; without it, Python's locale is "C".
                ("LANG", "C.UTF-8".into()),
                // The stdlib is compiled into the zip; writing .pyc files at run time
                // would fail on a read-only root and only add to a writable one.
                ("PYTHONDONTWRITEBYTECODE", "1".into()),
                // Logs reach `docker logs` as they are written.
                ("PYTHONUNBUFFERED", "1".into()),
            ],
            user: format!("{NONROOT_UID}:{NONROOT_UID}"),
            working_dir: HOME,
            entrypoint: vec![entrypoint.clone()],
        })
    }

    /// The OCI image config of an image of `layers` (their diff ids, each described by
    /// its history line), made at `epoch`, with `labels`. Its bytes depend on nothing
    /// else: the same inputs give the same image id.
    pub fn image(
        &self,
        platform: &Platform,
        labels: &HashMap<String, String>,
        epoch: &Epoch,
        layers: &[(&str, &str)],
    ) -> Vec<u8> {
        let created = epoch.rfc3339();
        let (architecture, variant) = match platform.arch.split_once('/') {
            Some((architecture, variant)) => (architecture, Some(variant)),
            None => (platform.arch.as_str(), None),
        };
        let labels: BTreeMap<&String, &String> = labels.iter().collect();
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut config = json!({
            "architecture": architecture,
            "os": "linux",
            "created": created,
            "config": {
                "User": self.user,
                "Env": env,
                "Entrypoint": self.entrypoint,
                "WorkingDir": self.working_dir,
                "Labels": labels,
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|(diff_id, _)| diff_id).collect::<Vec<_>>(),
            },
            "history": layers.iter().map(|(_, step)| json!({
                "created": created,
                "created_by": step,
                "comment": "dpy",
            })).collect::<Vec<Value>>(),
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        // serde_json's maps are sorted: the keys' order is fixed too.
        serde_json::to_vec(&config).expect("a config serializes")
    }

    /// The config as ARCHITECTURE.md shows it: one row per setting.
    pub fn markdown(&self) -> String {
        let mut rows = vec!["| setting | value |".to_string(), "|---|---|".to_string()];
        for (key, value) in &self.env {
            rows.push(format!("| ENV {key} | `{value}` |"));
        }
        rows.push(format!("| USER | `{}` |", self.user));
        rows.push(format!("| WORKDIR | `{}` |", self.working_dir));
        rows.push(format!(
            "| ENTRYPOINT | `{}` |",
            serde_json::to_string(&self.entrypoint).expect("strings serialize")
        ));
        rows.join("\n") + "\n"
    }
}

/// The -buildroot image's config: its builder's (the source plus a pip, as BuildKit made
/// and dpy pinned it) with what users of `FROM …-buildroot` rely on set over it, the
/// labels of every image, the epoch's time, and one more layer (dpy's: the helpers in
/// /opt/dpy, the runtime root in $BUILD_ROOT, an empty $BUILD_ROOT_DIFF).
pub fn buildroot(
    builder: &[u8],
    layout: &Layout,
    labels: &HashMap<String, String>,
    epoch: &Epoch,
    layer: &str,
) -> Result<Vec<u8>> {
    let broken = |why: &str| Error::Engine(format!("the builder image's config {why}"));
    let mut config: Value =
        serde_json::from_slice(builder).map_err(|e| broken(&format!("is not JSON: {e}")))?;
    let created = epoch.rfc3339();
    let inner = config
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| broken("has no config"))?;
    let mut env: Vec<String> = inner
        .get("Env")
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    for (key, value) in buildroot_env(layout, &path) {
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    inner.insert("Env".into(), json!(env));
    let mut all_labels: BTreeMap<String, Value> = inner
        .get("Labels")
        .and_then(Value::as_object)
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    all_labels.extend(labels.iter().map(|(k, v)| (k.clone(), json!(v))));
    inner.insert("Labels".into(), json!(all_labels));
    config["created"] = json!(created);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| broken("has no diff_ids"))?
        .push(json!(layer));
    match config.get_mut("history").and_then(Value::as_array_mut) {
        Some(history) => history.push(json!({
            "created": created,
            "created_by": BUILDROOT_STEP,
            "comment": "dpy",
        })),
        None => return Err(broken("has no history")),
    }
    Ok(serde_json::to_vec(&config).expect("a config serializes"))
}

/// What the -buildroot layer's history entry says made it.
const BUILDROOT_STEP: &str =
    "dpy: the helpers in /opt/dpy, the runtime root in $BUILD_ROOT, an empty $BUILD_ROOT_DIFF";

/// What the -buildroot image sets over its builder's environment, in this order (an
/// existing variable keeps its place). `path` is the builder's PATH.
pub fn buildroot_env(layout: &Layout, path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BUILD_ROOT", BUILD_ROOT.to_string()),
        ("BUILD_ROOT_DIFF", format!("{BUILD_ROOT}-diff")),
        ("PYTHON_VERSION", layout.python.version.clone()),
        ("PYTHON_SITE_PACKAGES", layout.python.purelib.clone()),
        // The chroot-* helpers first.
        ("PATH", format!("/opt/dpy/bin:{path}")),
    ]
}

/// The interpreter's directory first, then the usual ones, each once.
fn runtime_path(bin_dir: &str) -> String {
    let mut dirs: Vec<&str> = vec![bin_dir];
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn official() -> Layout {
        Layout::parse(include_str!(
            "../tests/fixtures/layout-official-alpine.json"
        ))
        .unwrap()
    }

    /// ARCHITECTURE.md shows the config users get; it is this module's, rendered.
    #[test]
    fn architecture_md_shows_the_config_this_module_declares() {
        let doc = include_str!("../ARCHITECTURE.md");
        let table = RuntimeConfig::of(&official()).unwrap().markdown();
        assert!(
            doc.contains(&table),
            "ARCHITECTURE.md's runtime config table is not this:\n{table}"
        );
    }

    #[test]
    fn the_buildroot_config_is_the_builders_with_dpys_settings_and_one_more_layer() {
        let builder = json!({
            "architecture": "amd64", "os": "linux", "created": "2026-12-01T10:11:12.345Z",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.12.0", "LANG=C.UTF-8"],
                "Cmd": ["python3"],
                "Labels": {"from.source": "kept", "org.opencontainers.image.version": "old"},
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:a", "sha256:b"]},
            "history": [{"created": "2026-12-01T10:11:12Z", "created_by": "RUN x"}],
        });
        let mut layout = official();
        layout.python.version = "3.12.7".into();
        layout.python.purelib = "/usr/local/lib/python3.12/site-packages".into();
        let labels: HashMap<String, String> = [(
            "org.opencontainers.image.version".into(),
            "3.12-alpine3.20".into(),
        )]
        .into();
        let bytes = buildroot(
            &serde_json::to_vec(&builder).unwrap(),
            &layout,
            &labels,
            &Epoch::at(1_700_000_000),
            "sha256:c",
        )
        .unwrap();
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            config["config"]["Env"],
            json!([
                "PATH=/opt/dpy/bin:/usr/local/bin:/usr/bin",
                "PYTHON_VERSION=3.12.7",
                "LANG=C.UTF-8",
                "BUILD_ROOT=/opt/buildroot",
                "BUILD_ROOT_DIFF=/opt/buildroot-diff",
                "PYTHON_SITE_PACKAGES=/usr/local/lib/python3.12/site-packages",
            ])
        );
        assert_eq!(config["config"]["Cmd"], json!(["python3"]));
        assert_eq!(
            config["config"]["Labels"],
            json!({"from.source": "kept", "org.opencontainers.image.version": "3.12-alpine3.20"})
        );
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!(["sha256:a", "sha256:b", "sha256:c"])
        );
        assert_eq!(config["history"][1]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["history"][1]["created_by"], BUILDROOT_STEP);
        // A config that is not one is an error, not a panic.
        let e = buildroot(b"[]", &layout, &labels, &Epoch::at(0), "sha256:c").unwrap_err();
        assert!(e.to_string().contains("has no config"), "{e}");
    }

    #[test]
    fn the_config_follows_the_layout_and_names_each_layer() {
        let mut layout = official();
        layout.python.entrypoint = "/usr/bin/python3.12".into();
        let config = RuntimeConfig::of(&layout).unwrap();
        assert_eq!(
            config.env[0],
            ("PATH", "/usr/bin:/usr/local/bin:/bin".into())
        );
        let labels: HashMap<String, String> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        let bytes = config.image(
            &"linux/arm/v7".parse().unwrap(),
            &labels,
            &Epoch::at(1_700_000_000),
            &[("sha256:1", "root"), ("sha256:2", "debug")],
        );
        let image: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            image,
            json!({
                "architecture": "arm",
                "variant": "v7",
                "os": "linux",
                "created": "2023-11-14T22:13:20Z",
                "config": {
                    "User": "65532:65532",
                    "Env": [
                        "PATH=/usr/bin:/usr/local/bin:/bin",
                        "LANG=C.UTF-8",
                        "PYTHONDONTWRITEBYTECODE=1",
                        "PYTHONUNBUFFERED=1"
                    ],
                    "Entrypoint": ["/usr/bin/python3.12"],
                    "WorkingDir": "/home/nonroot",
                    "Labels": {"a": "1", "b": "2"},
                },
                "rootfs": {"type": "layers", "diff_ids": ["sha256:1", "sha256:2"]},
                "history": [
                    {"created": "2023-11-14T22:13:20Z", "created_by": "root", "comment": "dpy"},
                    {"created": "2023-11-14T22:13:20Z", "created_by": "debug", "comment": "dpy"},
                ],
            })
        );
        // The same inputs, the same bytes (labels given in another order).
        let again: HashMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert_eq!(
            bytes,
            config.image(
                &"linux/arm/v7".parse().unwrap(),
                &again,
                &Epoch::at(1_700_000_000),
                &[("sha256:1", "root"), ("sha256:2", "debug")],
            )
        );
    }
}
