//! The image definitions in images/: which targets exist and what each family needs.
//!
//! The files are data, embedded in the binary so a user needs no source tree. Loading
//! checks every file and reports the file and the key of the first mistake, so a broken
//! definition is fixed from the error line alone.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lifecycle::{Month, Support};
use crate::target::{Family, Target};

/// The definition files as shipped, by their path in the repository.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("images/matrix.toml", include_str!("../images/matrix.toml")),
    ("images/alpine.toml", include_str!("../images/alpine.toml")),
    ("images/debian.toml", include_str!("../images/debian.toml")),
    ("images/strip.toml", include_str!("../images/strip.toml")),
    ("images/zip.toml", include_str!("../images/zip.toml")),
];

/// One family's definition (images/alpine.toml, images/debian.toml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    pub family: Family,
    /// Checked against the family's own (Family::libc); given to gather for its message.
    pub libc: String,
    /// e.g. "Alpine Linux", for gather's family-mismatch message.
    pub display: String,
    /// Default source image; `{target}` stands for the target string.
    pub source_image: String,
    pub runtime_packages: Vec<String>,
    /// What the debug variant adds: busybox, from the package manager when missing.
    pub debug_packages: Vec<String>,
    pub extra_libraries: Vec<String>,
    pub helpers: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Flavor {
    pub fn source_image_for(&self, target: &Target) -> String {
        self.source_image.replace("{target}", &target.to_string())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exclusion {
    python: String,
    release: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Releases {
    releases: Vec<String>,
    /// Releases the official images no longer update.
    #[serde(default)]
    retired: Vec<String>,
    #[serde(default)]
    exclude: Vec<Exclusion>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    python: Vec<String>,
    /// Each Python's end of life, `YYYY-MM`.
    end_of_life: BTreeMap<String, String>,
    alpine: Releases,
    debian: Releases,
}

impl Matrix {
    fn releases(&self, family: Family) -> &Releases {
        match family {
            Family::Alpine => &self.alpine,
            Family::Debian => &self.debian,
        }
    }
}

/// A profile as written in images/strip.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileDefinition {
    /// Another profile whose list this one starts from.
    #[serde(default)]
    extends: Option<String>,
    modules: Vec<String>,
    /// Top-level entries of the time zone database to leave out (fnmatch).
    #[serde(default)]
    time_zones_left_out: Vec<String>,
}

/// A named set of stdlib entries to leave out, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// Every pattern left out, the base profile's included.
    pub modules: Vec<String>,
    /// The patterns this profile adds to its base: modules a user may expect, so each
    /// gets a stub whose ImportError names the profile.
    pub announced: Vec<String>,
    /// Top-level entries of the time zone database left out, e.g. `right` (the zones
    /// counting leap seconds), the base profile's included.
    pub time_zones_left_out: Vec<String>,
}

/// How the stdlib zip stores its entries (images/zip.toml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZipPolicy {
    /// Imports whose closure (asked of the source interpreter) stays stored.
    pub hot_imports: Vec<String>,
    /// Top-level packages that stay out of the zip, byte-compiled in the stdlib
    /// directory: they read their own data files through the file system.
    #[serde(default)]
    pub on_disk: Vec<String>,
}

/// Everything in images/, checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    matrix: Matrix,
    alpine: Flavor,
    debian: Flavor,
    profiles: BTreeMap<String, Profile>,
    zip: ZipPolicy,
}

fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| Error::Definition {
        file: file.to_string(),
        key: "(syntax)".to_string(),
        message: one_line(&e.to_string()),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        Error::Definition {
            file: file.to_string(),
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: one_line(&e.into_inner().to_string()),
        }
    })
}

/// toml's messages span several lines with a source excerpt; keep the first statement.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect();
    lines.join(" ").replace("  ", " ")
}

fn mistake(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Definition {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

fn is_dotted(text: &str, parts: usize) -> bool {
    let pieces: Vec<&str> = text.split('.').collect();
    pieces.len() == parts
        && pieces
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Catalog {
    /// The definitions compiled into this binary.
    pub fn embedded() -> Result<Self> {
        Self::from_files(EMBEDDED)
    }

    /// Loads and checks definitions given as (file name, contents) pairs.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self> {
        let find = |suffix: &str| {
            files
                .iter()
                .find(|(name, _)| name.ends_with(suffix))
                .copied()
                .ok_or_else(|| mistake(suffix, "(file)", "the definition file is missing"))
        };
        let (matrix_file, text) = find("matrix.toml")?;
        let matrix: Matrix = parse(matrix_file, text)?;
        check_matrix(matrix_file, &matrix)?;
        let (alpine_file, text) = find("alpine.toml")?;
        let alpine: Flavor = parse(alpine_file, text)?;
        check_flavor(alpine_file, &alpine, Family::Alpine)?;
        let (debian_file, text) = find("debian.toml")?;
        let debian: Flavor = parse(debian_file, text)?;
        check_flavor(debian_file, &debian, Family::Debian)?;
        let (strip_file, text) = find("strip.toml")?;
        let definitions: BTreeMap<String, ProfileDefinition> = parse(strip_file, text)?;
        if !definitions.contains_key("standard") {
            return Err(mistake(
                strip_file,
                "standard",
                "the default profile `standard` is missing",
            ));
        }
        let profiles = resolve_profiles(strip_file, &definitions)?;
        let (zip_file, text) = find("zip.toml")?;
        let zip: ZipPolicy = parse(zip_file, text)?;
        if let Some(bad) = zip.hot_imports.iter().find(|name| !is_module_name(name)) {
            return Err(mistake(
                zip_file,
                "hot_imports",
                format!("{bad:?} is not a dotted module name"),
            ));
        }
        if let Some(bad) = zip
            .on_disk
            .iter()
            .find(|name| !is_module_name(name) || name.contains('.'))
        {
            return Err(mistake(
                zip_file,
                "on_disk",
                format!("{bad:?} is not a top-level package name"),
            ));
        }
        Ok(Catalog {
            matrix,
            alpine,
            debian,
            profiles,
            zip,
        })
    }

    pub fn flavor(&self, family: Family) -> &Flavor {
        match family {
            Family::Alpine => &self.alpine,
            Family::Debian => &self.debian,
        }
    }

    pub fn zip_policy(&self) -> &ZipPolicy {
        &self.zip
    }

    pub fn profile(&self, name: &str) -> Result<&Profile> {
        self.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            Error::Usage(format!(
                "unknown profile {name:?}: choose one of {}",
                known.join(", ")
            ))
        })
    }

    /// The newest Alpine release, which the bare `alpine` alias stands for.
    pub fn newest_alpine(&self) -> &str {
        self.matrix
            .alpine
            .releases
            .iter()
            .max_by_key(|r| {
                let (a, b) = r.split_once('.').unwrap_or(("0", "0"));
                (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0))
            })
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Every target of the matrix, in its order: each Python (as listed) on each Alpine
    /// release, then on each Debian release, full and slim; the exclusions left out.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for python in &self.matrix.python {
            for (family, slims) in [
                (Family::Alpine, &[false][..]),
                (Family::Debian, &[false, true][..]),
            ] {
                let releases = self.matrix.releases(family);
                for release in &releases.releases {
                    if releases
                        .exclude
                        .iter()
                        .any(|x| &x.python == python && &x.release == release)
                    {
                        continue;
                    }
                    for &slim in slims {
                        let os = match family {
                            Family::Alpine => format!("alpine{release}"),
                            Family::Debian if slim => format!("slim-{release}"),
                            Family::Debian => release.clone(),
                        };
                        if let Ok(target) = format!("{python}-{os}").parse() {
                            out.push(target);
                        }
                    }
                }
            }
        }
        out
    }

    /// Parses a target (`3.12-alpine3.20`) and checks it is in the matrix.
    pub fn parse_target(&self, text: &str) -> Result<Target> {
        let target: Target = text.parse()?;
        self.check(&target)?;
        Ok(target)
    }

    /// Checks that the official images publish `target`, and returns its family's definition.
    pub fn check(&self, target: &Target) -> Result<&Flavor> {
        let python = target.python.minor_version();
        let family = target.family();
        let releases = self.matrix.releases(family);
        let release = self.release_of(target);
        let outside = |why: String| {
            Error::Usage(format!(
                "target {target} is outside the support matrix: {why}; supported: {}",
                self.summary()
            ))
        };
        if !self.matrix.python.contains(&python) {
            return Err(outside(format!("Python {python} is not listed")));
        }
        if !releases.releases.contains(&release) {
            return Err(outside(format!("{} is not a known release", target.os)));
        }
        if releases
            .exclude
            .iter()
            .any(|x| x.python == python && x.release == release)
        {
            return Err(outside(format!(
                "the official images have no Python {python} on {}",
                target.os
            )));
        }
        Ok(self.flavor(family))
    }

    /// The month Python `python` (3.X) reaches its end of life.
    pub fn end_of_life(&self, python: &str) -> Option<Month> {
        self.matrix
            .end_of_life
            .get(python)
            .and_then(|m| Month::parse(m))
    }

    /// `target`'s OS release, the bare `alpine` alias resolved to the newest.
    fn release_of(&self, target: &Target) -> String {
        target
            .os
            .release
            .clone()
            .unwrap_or_else(|| self.newest_alpine().to_string())
    }

    /// Whether the official images no longer update `target`'s OS release.
    pub fn release_retired(&self, target: &Target) -> bool {
        self.matrix
            .releases(target.family())
            .retired
            .contains(&self.release_of(target))
    }

    /// Where `target` stands upstream in `today`'s month: its Python's end of life and
    /// its OS release's upkeep, from images/matrix.toml.
    pub fn support(&self, target: &Target, today: Month) -> Support {
        let ended = self.end_of_life(&target.python.minor_version());
        if let Some(ended) = ended.filter(|ended| *ended < today) {
            return Support::EndOfLife { ended };
        }
        if !self.release_retired(target) {
            return Support::Supported;
        }
        let family = target.family();
        let releases = self.matrix.releases(family);
        // The same Python on the family's newest release still updated, if published.
        let newest = match family {
            Family::Alpine => Some(self.newest_alpine().to_string()),
            Family::Debian => releases.releases.last().cloned(),
        };
        let instead = newest
            .filter(|release| !releases.retired.contains(release))
            .map(|release| Target {
                python: target.python,
                os: crate::target::OsSpec {
                    release: Some(release),
                    ..target.os.clone()
                },
            })
            .filter(|t| self.check(t).is_ok());
        Support::Unmaintained { instead }
    }

    /// Every supported combination, in one line, for error messages and `--help`.
    pub fn summary(&self) -> String {
        let pythons = self.matrix.python.join(", ");
        let alpine: Vec<String> = self
            .matrix
            .alpine
            .releases
            .iter()
            .map(|r| format!("alpine{r}"))
            .collect();
        let debian: Vec<String> = self
            .matrix
            .debian
            .releases
            .iter()
            .flat_map(|r| [r.clone(), format!("slim-{r}")])
            .collect();
        let holes: Vec<String> = self
            .matrix
            .alpine
            .exclude
            .iter()
            .map(|x| format!("{}-alpine{}", x.python, x.release))
            .chain(
                self.matrix
                    .debian
                    .exclude
                    .iter()
                    .map(|x| format!("{}-(slim-){}", x.python, x.release)),
            )
            .collect();
        let mut line = format!(
            "Python {pythons} on {} and {}",
            alpine.join(", "),
            debian.join(", ")
        );
        if !holes.is_empty() {
            line.push_str(&format!(", except {}", holes.join(", ")));
        }
        line
    }
}

/// A dotted Python module name: non-empty parts of letters, digits and underscores.
fn is_module_name(name: &str) -> bool {
    name.split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Each profile with its base's patterns in front. One level of `extends`: a base that
/// extends another would hide where a pattern comes from.
fn resolve_profiles(
    file: &str,
    definitions: &BTreeMap<String, ProfileDefinition>,
) -> Result<BTreeMap<String, Profile>> {
    let mut profiles = BTreeMap::new();
    for (name, definition) in definitions {
        let mut modules = Vec::new();
        let mut zones = Vec::new();
        if let Some(base) = &definition.extends {
            let key = format!("{name}.extends");
            let found = definitions.get(base).ok_or_else(|| {
                mistake(file, key.clone(), format!("no profile {base:?} to extend"))
            })?;
            if found.extends.is_some() {
                return Err(mistake(
                    file,
                    key,
                    format!(
                        "{base:?} extends another profile itself; extend a profile that does not"
                    ),
                ));
            }
            modules.extend(found.modules.iter().cloned());
            zones.extend(found.time_zones_left_out.iter().cloned());
        }
        zones.extend(definition.time_zones_left_out.iter().cloned());
        let announced = if definition.extends.is_some() {
            definition.modules.clone()
        } else {
            Vec::new()
        };
        modules.extend(definition.modules.iter().cloned());
        profiles.insert(
            name.clone(),
            Profile {
                name: name.clone(),
                modules,
                announced,
                time_zones_left_out: zones,
            },
        );
    }
    Ok(profiles)
}

fn check_matrix(file: &str, matrix: &Matrix) -> Result<()> {
    if matrix.python.is_empty() {
        return Err(mistake(file, "python", "lists no Python version"));
    }
    for (i, python) in matrix.python.iter().enumerate() {
        if !is_dotted(python, 2) || !python.starts_with("3.") {
            return Err(mistake(
                file,
                format!("python[{i}]"),
                format!("{python:?} is not a Python 3.X version"),
            ));
        }
    }
    for python in &matrix.python {
        if !matrix.end_of_life.contains_key(python) {
            return Err(mistake(
                file,
                "end_of_life",
                format!("Python {python} has no end of life: add \"{python}\" = \"YYYY-MM\""),
            ));
        }
    }
    for (python, month) in &matrix.end_of_life {
        if !matrix.python.contains(python) {
            return Err(mistake(
                file,
                format!("end_of_life.{python}"),
                format!("{python:?} is not in `python`"),
            ));
        }
        if Month::parse(month).is_none() {
            return Err(mistake(
                file,
                format!("end_of_life.{python}"),
                format!("{month:?} is not a month written YYYY-MM"),
            ));
        }
    }
    for family in [Family::Alpine, Family::Debian] {
        let releases = matrix.releases(family);
        for (i, release) in releases.retired.iter().enumerate() {
            if !releases.releases.contains(release) {
                return Err(mistake(
                    file,
                    format!("{family}.retired[{i}]"),
                    format!("{release:?} is not in `{family}.releases`"),
                ));
            }
        }
        for (i, release) in releases.releases.iter().enumerate() {
            let ok = match family {
                Family::Alpine => is_dotted(release, 2),
                Family::Debian => {
                    !release.is_empty() && release.bytes().all(|b| b.is_ascii_lowercase())
                }
            };
            if !ok {
                return Err(mistake(
                    file,
                    format!("{family}.releases[{i}]"),
                    format!("{release:?} is not a {family} release name"),
                ));
            }
        }
        for (i, x) in releases.exclude.iter().enumerate() {
            if !matrix.python.contains(&x.python) {
                return Err(mistake(
                    file,
                    format!("{family}.exclude[{i}].python"),
                    format!("{:?} is not in `python`", x.python),
                ));
            }
            if !releases.releases.contains(&x.release) {
                return Err(mistake(
                    file,
                    format!("{family}.exclude[{i}].release"),
                    format!("{:?} is not in `{family}.releases`", x.release),
                ));
            }
        }
    }
    Ok(())
}

fn check_flavor(file: &str, flavor: &Flavor, family: Family) -> Result<()> {
    if flavor.family != family {
        return Err(mistake(
            file,
            "family",
            format!("this file defines {family}, not {}", flavor.family),
        ));
    }
    if flavor.libc != family.libc() {
        return Err(mistake(
            file,
            "libc",
            format!("{family} uses {}, not {:?}", family.libc(), flavor.libc),
        ));
    }
    if !flavor.source_image.contains("{target}") {
        return Err(mistake(
            file,
            "source_image",
            "must contain {target}, e.g. \"python:{target}\"",
        ));
    }
    // That each helper has a template is render's test (every_helper_has_a_template).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(replaced: &str, text: &str) -> Result<Catalog> {
        let files: Vec<(&str, &str)> = EMBEDDED
            .iter()
            .map(|&(name, body)| (name, if name == replaced { text } else { body }))
            .collect();
        Catalog::from_files(&files)
    }

    fn definition_error(result: Result<Catalog>) -> (String, String) {
        match result {
            Err(Error::Definition { file, key, .. }) => (file, key),
            other => panic!("expected a definition error, got {other:?}"),
        }
    }

    #[test]
    fn embedded_definitions_load() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.newest_alpine(), "3.24");
        assert_eq!(catalog.flavor(Family::Alpine).libc, "musl");
        assert!(catalog
            .profile("standard")
            .unwrap()
            .modules
            .contains(&"test".to_string()));
    }

    #[test]
    fn slim_extends_standard_and_announces_only_its_own_list() {
        let catalog = Catalog::embedded().unwrap();
        let standard = catalog.profile("standard").unwrap();
        let slim = catalog.profile("slim").unwrap();
        assert!(standard.announced.is_empty());
        assert!(slim.modules.starts_with(&standard.modules));
        assert_eq!(
            slim.modules.len(),
            standard.modules.len() + slim.announced.len()
        );
        assert!(slim.announced.contains(&"readline".to_string()));
        assert!(!slim.announced.contains(&"test".to_string()));
        assert_eq!(slim.time_zones_left_out, ["right"]);
        let names: Vec<&str> = catalog.profiles.keys().map(String::as_str).collect();
        assert_eq!(names, ["slim", "standard"]);
    }

    #[test]
    fn profile_and_zip_mistakes_name_the_key() {
        let strip = include_str!("../images/strip.toml");
        let text = strip.replace("extends = \"standard\"", "extends = \"tiny\"");
        let (file, key) = definition_error(with("images/strip.toml", &text));
        assert_eq!(
            (file.as_str(), key.as_str()),
            ("images/strip.toml", "slim.extends")
        );

        let text = format!("{strip}\n[slimmer]\nextends = \"slim\"\nmodules = []\n");
        let (_, key) = definition_error(with("images/strip.toml", &text));
        assert_eq!(key, "slimmer.extends");

        let text = include_str!("../images/zip.toml").replace("\"json\",", "\"json..\",");
        let (file, key) = definition_error(with("images/zip.toml", &text));
        assert_eq!(
            (file.as_str(), key.as_str()),
            ("images/zip.toml", "hot_imports")
        );

        let text = include_str!("../images/zip.toml").replace("[\"venv\"]", "[\"venv/scripts\"]");
        let (_, key) = definition_error(with("images/zip.toml", &text));
        assert_eq!(key, "on_disk");
    }

    #[test]
    fn the_matrix_accepts_published_targets() {
        let catalog = Catalog::embedded().unwrap();
        for t in [
            "3.12-alpine3.20",
            "3.13-alpine",
            "3.9-alpine3.22",
            "3.12-slim-bookworm",
            "3.13-trixie",
            "3.11.9-bookworm",
        ] {
            catalog.check(&t.parse().unwrap()).unwrap();
        }
    }

    #[test]
    fn the_matrix_refuses_holes_and_unknowns_naming_what_exists() {
        let catalog = Catalog::embedded().unwrap();
        for (t, why) in [
            ("3.8-alpine3.23", "Python 3.8 is not listed"),
            ("3.9-alpine3.23", "no Python 3.9 on alpine3.23"),
            ("3.14-alpine3.20", "no Python 3.14 on alpine3.20"),
            ("3.12-alpine3.1", "alpine3.1 is not a known release"),
            ("3.12-slim-buster", "slim-buster is not a known release"),
        ] {
            let e = catalog.check(&t.parse().unwrap()).unwrap_err();
            let message = e.to_string();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(message.contains(why), "{t}: {message}");
            assert!(message.contains("alpine3.20, alpine3.21"), "{message}");
            assert!(message.contains("slim-trixie"), "{message}");
        }
    }

    #[test]
    fn a_wrong_type_names_file_and_key() {
        let (file, key) = definition_error(with(
            "images/alpine.toml",
            &include_str!("../images/alpine.toml").replace(
                "extra_libraries = [\"libgcc_s.so.1\"]",
                "extra_libraries = \"libgcc_s.so.1\"",
            ),
        ));
        assert_eq!(file, "images/alpine.toml");
        assert_eq!(key, "extra_libraries");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let (file, key) = definition_error(with(
            "images/debian.toml",
            &format!(
                "{}\nmirror = \"x\"\n",
                include_str!("../images/debian.toml")
            )
            .replacen("[labels]", "mirror2 = 1\n[labels]", 1),
        ));
        assert_eq!(file, "images/debian.toml");
        assert!(key.contains("mirror"), "{key}");
    }

    #[test]
    fn a_syntax_error_names_the_file() {
        let (file, _) = definition_error(with("images/matrix.toml", "python = [3.9"));
        assert_eq!(file, "images/matrix.toml");
    }

    #[test]
    fn semantic_mistakes_name_the_key() {
        let text = include_str!("../images/matrix.toml").replace(
            "{ python = \"3.9\", release = \"3.23\" }",
            "{ python = \"3.9\", release = \"3.99\" }",
        );
        let (_, key) = definition_error(with("images/matrix.toml", &text));
        assert_eq!(key, "alpine.exclude[0].release");

        let text = include_str!("../images/matrix.toml").replace("\"3.10\",", "\"3.x\",");
        let (_, key) = definition_error(with("images/matrix.toml", &text));
        assert_eq!(key, "python[1]");

        let text =
            include_str!("../images/debian.toml").replace("libc = \"glibc\"", "libc = \"musl\"");
        let (_, key) = definition_error(with("images/debian.toml", &text));
        assert_eq!(key, "libc");
    }

    #[test]
    fn a_new_release_is_a_data_change() {
        let text = include_str!("../images/matrix.toml")
            .replace("\"3.15\"]", "\"3.15\", \"3.16\"]")
            .replace(
                "\"3.15\" = \"2031-10\"",
                "\"3.15\" = \"2031-10\"\n\"3.16\" = \"2032-10\"",
            )
            .replace("\"trixie\"]", "\"trixie\", \"forky\"]");
        let catalog = with("images/matrix.toml", &text).unwrap();
        let target = "3.16-slim-forky".parse().unwrap();
        catalog.check(&target).unwrap();
        let today = Month::parse("2032-01").unwrap();
        assert_eq!(catalog.support(&target, today), Support::Supported);
    }

    #[test]
    fn every_python_has_a_checked_end_of_life_and_retired_releases_are_listed() {
        let matrix = include_str!("../images/matrix.toml");
        for (from, to, key) in [
            ("\"3.12\" = \"2028-10\"\n", "", "end_of_life"),
            (
                "\"3.12\" = \"2028-10\"",
                "\"3.12\" = \"October 2028\"",
                "end_of_life.3.12",
            ),
            (
                "\"3.12\" = \"2028-10\"",
                "\"3.12\" = \"2028-10\"\n\"3.8\" = \"2024-10\"",
                "end_of_life.3.8",
            ),
            (
                "retired = [\"3.20\",",
                "retired = [\"3.19\",",
                "alpine.retired[0]",
            ),
        ] {
            assert!(matrix.contains(from), "{from}");
            let (_, got) =
                definition_error(with("images/matrix.toml", &matrix.replacen(from, to, 1)));
            assert_eq!(got, key, "{from} -> {to}");
        }
    }

    #[test]
    fn a_target_is_retired_by_its_python_s_end_of_life_or_its_release_s_upkeep() {
        let catalog = Catalog::embedded().unwrap();
        let support = |t: &str, month: &str| {
            catalog.support(&t.parse().unwrap(), Month::parse(month).unwrap())
        };
        // The end of life's own month still counts as supported.
        assert_eq!(support("3.10-trixie", "2026-10"), Support::Supported);
        assert_eq!(
            support("3.10-trixie", "2026-11"),
            Support::EndOfLife {
                ended: Month::parse("2026-10").unwrap()
            }
        );
        assert_eq!(
            support("3.14-alpine3.21", "2026-12"),
            Support::Unmaintained {
                instead: Some("3.14-alpine3.24".parse().unwrap())
            }
        );
        // The bare alias is the newest release, never retired.
        assert_eq!(support("3.13-alpine", "2026-12"), Support::Supported);
        assert_eq!(support("3.15-slim-bookworm", "2026-12"), Support::Supported);
    }
}
