//! stdlib.json: what the gather stage says of the stdlib it compiled (or copied, for
//! bytecode compiled once on the native platform, `bytecode`).
//!
//! Written inside the source image by its own interpreter, so each value is held to its
//! shape (`shape`) before compile-once joins a name onto a directory or writes one into
//! a Dockerfile: a key `/etc/shadow.py` or `../../x.py` would otherwise reach files
//! outside the stdlib.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Result;
use crate::gather::Gathered;
use crate::shape;

/// stdlib.json, written by the gather stage (dpy_gather/gather.py's `gather_stdlib`).
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The interpreter's magic number, in hex (`importlib.util.MAGIC_NUMBER.hex()`).
    pub magic: String,
    pub stdlib: String,
    pub zip_path: String,
    /// Packages compiled under their own path, not the zip's (images/zip.toml).
    #[serde(default)]
    pub on_disk: Vec<String>,
    pub compiled: bool,
    pub seconds: f64,
    /// Each stdlib source, relative to the stdlib, and the SHA-256 of its bytes.
    pub files: BTreeMap<String, String>,
}

/// The stdlib.json of `gathered`'s export, read and checked.
pub fn manifest(gathered: &Gathered) -> Result<Manifest> {
    parse(
        &crate::layout::answer(&gathered.export, "stdlib.json")?,
        &gathered.source.name,
    )
}

/// stdlib.json's text, read and checked ([`Manifest::check`]); a refusal names `source`
/// (the source image) and the field, and exits 12.
pub fn parse(text: &str, source: &str) -> Result<Manifest> {
    shape::answer(
        text,
        &format!("gather stage of {source}"),
        "stdlib.json",
        Manifest::check,
    )
}

impl Manifest {
    /// Whether every field has its shape: the magic number hex, the stdlib and the zip
    /// absolute paths, each `files` key a relative `.py` path with a SHA-256 for its
    /// value, each `on_disk` entry a top-level name; lists and the map bounded.
    pub fn check(&self) -> std::result::Result<(), String> {
        use shape::field;
        // Every magic number so far is 4 bytes.
        field("magic", &self.magic, |v| shape::lower_hex(v, 8))?;
        field("stdlib", &self.stdlib, shape::absolute_path)?;
        field("zip_path", &self.zip_path, shape::absolute_path)?;
        // compile-once hands the list to its compile step joined with commas.
        shape::list("on_disk", &self.on_disk, |v| {
            shape::file_name(v)?;
            match v.contains(',') {
                true => Err("it holds a comma".into()),
                false => Ok(()),
            }
        })?;
        if !self.seconds.is_finite() {
            return Err(format!("seconds {}: it is not a number", self.seconds));
        }
        shape::bounded(self.files.len(), shape::MAX_ENTRIES)
            .map_err(|why| format!("files: {why}"))?;
        for (name, digest) in &self.files {
            field("files key", name, |v| {
                shape::relative_path(v)?;
                match v.ends_with(".py") {
                    true => Ok(()),
                    false => Err("it is not a .py name".into()),
                }
            })?;
            field(format_args!("files[{}]", shape::show(name)), digest, |v| {
                shape::lower_hex(v, 64)
            })?;
        }
        Ok(())
    }

    /// Every path of a checked manifest as it is joined under a directory: the stdlib
    /// and the zip without their leading `/`, the rest as they are.
    #[cfg(test)]
    fn paths(&self) -> Vec<std::path::PathBuf> {
        let absolute = [&self.stdlib, &self.zip_path]
            .into_iter()
            .map(|v| shape::absolute_path(v).expect("a checked manifest"));
        let relative = self
            .files
            .keys()
            .chain(&self.on_disk)
            .map(|v| shape::relative_path(v).expect("a checked manifest"));
        absolute.chain(relative).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use std::path::{Component, Path};

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn real() -> Value {
        json!({
            "magic": "a70d0d0a",
            "stdlib": "/usr/local/lib/python3.12",
            "zip_path": "/usr/local/lib/python312-stdlib.zip",
            "on_disk": ["venv"],
            "compiled": false,
            "seconds": 12.345,
            "files": {
                "os.py": SHA,
                "json/decoder.py": SHA,
                "_sysconfigdata__x86_64-linux-gnu.py": SHA,
                "venv/__init__.py": SHA,
                "encodings/utf_8.py": SHA
            }
        })
    }

    fn all_plain(manifest: &Manifest) {
        let dir = Path::new("/export/root/usr/lib/python3.12");
        for path in manifest.paths() {
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            assert!(dir.join(&path).starts_with(dir));
        }
    }

    fn refused(value: &Value) -> String {
        let e = parse(&value.to_string(), "python:3.12-alpine3.20").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
        let message = e.to_string();
        assert!(
            message.starts_with(
                "the gather stage of python:3.12-alpine3.20 wrote a stdlib.json dpy refuses: "
            ),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        message
    }

    #[test]
    fn a_real_manifest_passes() {
        let manifest = parse(&real().to_string(), "python:3.12").unwrap();
        assert_eq!(manifest.files.len(), 5);
        all_plain(&manifest);
        let mut debian = real();
        debian["stdlib"] = json!("/usr/lib/python3.11");
        debian["zip_path"] = json!("/usr/lib/python311-stdlib.zip");
        debian["on_disk"] = json!([]);
        debian["magic"] = json!("cb0d0d0a");
        debian["seconds"] = json!(0);
        parse(&debian.to_string(), "python:3.11").unwrap();
    }

    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        let mut cases: Vec<(Value, &str)> = Vec::new();
        let mut set = |key: &str, value: Value, named: &'static str| {
            let mut v = real();
            v[key] = value;
            cases.push((v, named));
        };
        set("magic", json!("a70d0d0a\nRUN id"), "magic ");
        set("magic", json!("A70D0D0A"), "magic ");
        set(
            "stdlib",
            json!("/../../../some/host/dir"),
            "stdlib \"/../../../some/host/dir\": it has a `..` name in it",
        );
        set("stdlib", json!("usr/lib/python3.12"), "stdlib ");
        set(
            "zip_path",
            json!("/usr/lib/x.zip\"]\nRUN id\n#"),
            "zip_path ",
        );
        set("on_disk", json!(["venv,../../etc"]), "on_disk[0] ");
        set("on_disk", json!(["a/b"]), "on_disk[0] ");
        set(
            "files",
            json!({"/etc/shadow.py": SHA}),
            "files key \"/etc/shadow.py\": it is absolute",
        );
        set(
            "files",
            json!({"../../../etc/x.py": SHA}),
            "files key \"../../../etc/x.py\": it has a `..` name in it",
        );
        set(
            "files",
            json!({"os.pyc": SHA}),
            "files key \"os.pyc\": it is not a .py name",
        );
        set("files", json!({"os\n.py": SHA}), "files key ");
        set(
            "files",
            json!({"os.py": "not a digest"}),
            "files[\"os.py\"] \"not a digest\": it is not 64 lowercase hex digits",
        );
        for (value, named) in &cases {
            let message = refused(value);
            assert!(message.contains(named), "{message}");
        }
        for text in ["", "{}", "[1]", "{\"magic\": \"a70d0d0a\"}"] {
            let e = parse(text, "python:3.12").unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
            assert!(!e.to_string().contains('\n'));
        }
    }

    fn hostile_string() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "", "/", "//", ".", "..", "usr", "lib", "os", ".py", ".pyc", "\n", "\"", "\\", "\0",
            " ", ",", "é", "\u{202e}",
        ]);
        prop_oneof![
            prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused(text in prop_oneof![
            any::<String>(),
            "[\\[\\]{}\",:0-9a-z./ \\\\\n-]{0,200}",
        ]) {
            if let Ok(manifest) = parse(&text, "python:3.12") {
                all_plain(&manifest);
            }
        }

        /// A real manifest with any name among its files, any stdlib, zip path and
        /// on_disk entry: what is taken stays under its directory.
        #[test]
        fn any_name_in_any_field(
            key in hostile_string(),
            stdlib in hostile_string(),
            zip_path in hostile_string(),
            on_disk in hostile_string(),
            which in 0..4usize,
        ) {
            let mut value = real();
            match which {
                0 => { value["files"][key] = json!(SHA); }
                1 => value["stdlib"] = json!(stdlib),
                2 => value["zip_path"] = json!(zip_path),
                _ => value["on_disk"] = json!([on_disk]),
            }
            match parse(&value.to_string(), "python:3.12") {
                Ok(manifest) => all_plain(&manifest),
                Err(e) => prop_assert!(!e.to_string().contains('\n')),
            }
        }
    }
}
