//! `dpy readme`: a README.rst listing every built or published image, from metadata.
//!
//! The template is Tera (templates/README.rst.tera by default, or the user's own) and
//! gets `images` (every record, merged and sorted) plus the three registry groups the
//! default template lists differently.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tera::{Context, Tera};

use crate::error::{Error, Result};
use crate::metadata::{self, Kind, Record};
use crate::target::BUILDROOT_SUFFIX;

const DEFAULT_TEMPLATE: &str = include_str!("../templates/README.rst.tera");

/// A record with the fields templates need precomputed.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub record: Record,
    pub buildroot: bool,
    /// GHCR's package page parts: the owner and the package (rest of the path, %2F-joined).
    pub owner: String,
    pub package: String,
}

#[derive(Debug, Clone, Serialize)]
struct Example {
    runtime: String,
    buildroot: String,
    site_packages: String,
}

/// Merges records from several files: the newest record of each reference wins.
pub fn merge(files: &[PathBuf]) -> Result<Vec<Record>> {
    let mut all: Vec<Record> = Vec::new();
    for file in files {
        for record in metadata::load(file)?.images {
            match all.iter_mut().find(|r| r.reference == record.reference) {
                Some(existing) if existing.built_at <= record.built_at => *existing = record,
                Some(_) => {}
                None => all.push(record),
            }
        }
    }
    Ok(all)
}

/// Registry, then repository path ascending; tags descending (newest Python first).
pub fn sort(records: &mut [Record]) {
    records.sort_by(|a, b| {
        (a.registry.as_str(), a.repository.as_str())
            .cmp(&(b.registry.as_str(), b.repository.as_str()))
            .then_with(|| tag_key(&b.tag).cmp(&tag_key(&a.tag)))
    });
}

/// Compares `3.10-…` above `3.9-…`: numeric runs compare as numbers.
fn tag_key(tag: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut digits = String::new();
    let mut text = String::new();
    for c in tag.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                out.push((0, std::mem::take(&mut text)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((digits.parse().unwrap_or(0), String::new()));
                digits.clear();
            }
            text.push(c);
        }
    }
    if !digits.is_empty() {
        out.push((digits.parse().unwrap_or(0), String::new()));
    }
    if !text.is_empty() {
        out.push((0, text));
    }
    out
}

fn entry(record: Record) -> Entry {
    let (owner, package) = match record.repository.split_once('/') {
        Some((owner, rest)) => (owner.to_string(), rest.replace('/', "%2F")),
        None => (record.repository.clone(), record.repository.clone()),
    };
    Entry {
        buildroot: record.kind == Kind::Buildroot || record.tag.ends_with(BUILDROOT_SUFFIX),
        record,
        owner,
        package,
    }
}

/// `12.34 MiB`, two decimals, as the default template shows sizes.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn mib_filter(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let bytes = value
        .as_u64()
        .ok_or_else(|| tera::Error::msg("mib expects a size in bytes"))?;
    Ok(tera::Value::String(mib(bytes)))
}

/// Renders the README from `records` with the default template or `template_file`.
pub fn render(records: Vec<Record>, template_file: Option<&Path>) -> Result<String> {
    let (name, source) = match template_file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        ),
        None => (
            "templates/README.rst.tera".to_string(),
            DEFAULT_TEMPLATE.to_string(),
        ),
    };
    let mut tera = Tera::default();
    // The template may be anyone's (CI can take it from a repository) and the README is
    // published: it sees the records, nothing of this machine.
    crate::render::confine(&mut tera);
    tera.register_filter("mib", mib_filter);
    tera.add_raw_template(&name, &source)
        .map_err(|e| crate::render::template_error(&name, &e))?;

    let mut records = records;
    sort(&mut records);
    let entries: Vec<Entry> = records.into_iter().map(entry).collect();
    let visible = |registry: &str| -> Vec<&Entry> {
        entries
            .iter()
            .filter(|e| e.record.registry == registry && !e.buildroot)
            .collect()
    };
    let other: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.record.registry != "docker.io" && e.record.registry != "ghcr.io")
        .collect();
    let example = entries.iter().find(|e| !e.buildroot).map(|e| Example {
        runtime: e.record.reference.clone(),
        buildroot: format!("{}{BUILDROOT_SUFFIX}", e.record.reference),
        site_packages: e.record.site_packages.clone().unwrap_or_default(),
    });

    let mut context = Context::new();
    context.insert("images", &entries);
    context.insert("dockerhub", &visible("docker.io"));
    context.insert("ghcr", &visible("ghcr.io"));
    context.insert("other", &other);
    let broken: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.buildroot && !e.record.broken_modules.is_empty())
        .collect();
    context.insert("broken", &broken);
    context.insert("example", &example);
    context.insert(
        "build_root_diff",
        &format!("{}-diff", crate::runtime::BUILD_ROOT),
    );
    tera.render(&name, &context)
        .map_err(|e| crate::render::template_error(&name, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_have_two_decimals_in_mebibytes() {
        assert_eq!(mib(0), "0.00 MiB");
        assert_eq!(mib(1024 * 1024 * 3 / 2), "1.50 MiB");
        assert_eq!(mib(27_100_000), "25.84 MiB");
    }

    #[test]
    fn tags_sort_numerically() {
        let mut tags = vec![
            "3.9-alpine3.20",
            "3.10-alpine3.20",
            "3.12-alpine3.9",
            "3.12-alpine3.20",
        ];
        tags.sort_by_key(|t| std::cmp::Reverse(tag_key(t)));
        assert_eq!(
            tags,
            [
                "3.12-alpine3.20",
                "3.12-alpine3.9",
                "3.10-alpine3.20",
                "3.9-alpine3.20"
            ]
        );
    }
}
