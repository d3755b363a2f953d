//! Render: a recipe becomes a build context (Dockerfiles and helper scripts).
//!
//! Templates are Tera files embedded in the binary. Files under templates/context/ are
//! copied verbatim (Python source, where Tera's braces would only get in the way).

use serde::Serialize;
use tera::{Context, Tera};

use crate::context::BuildContext;
use crate::engine::source::SourceImage;
use crate::error::{Error, Result};
use crate::recipe::Recipe;
use crate::runtime::BUILD_ROOT;

/// Tera templates, by their path under templates/.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "buildroot.Dockerfile.tera",
        include_str!("../templates/buildroot.Dockerfile.tera"),
    ),
    (
        "alpine/buildroot.Dockerfile.tera",
        include_str!("../templates/alpine/buildroot.Dockerfile.tera"),
    ),
    (
        "debian/buildroot.Dockerfile.tera",
        include_str!("../templates/debian/buildroot.Dockerfile.tera"),
    ),
    (
        "helpers/chroot-pip.tera",
        include_str!("../templates/helpers/chroot-pip.tera"),
    ),
    (
        "helpers/chroot-exec.tera",
        include_str!("../templates/helpers/chroot-exec.tera"),
    ),
    (
        "helpers/chroot-uv.tera",
        include_str!("../templates/helpers/chroot-uv.tera"),
    ),
    (
        "helpers/chroot-apk.tera",
        include_str!("../templates/helpers/chroot-apk.tera"),
    ),
    (
        "helpers/chroot-apt.tera",
        include_str!("../templates/helpers/chroot-apt.tera"),
    ),
];

/// Files copied into the context as they are: (path in the context, contents).
pub const VERBATIM: &[(&str, &str)] = &[
    (
        "dpy/gather.sh",
        include_str!("../templates/context/gather.sh"),
    ),
    (
        "dpy/gather.py",
        include_str!("../templates/context/gather.py"),
    ),
    (
        "dpy/dpy_gather/__init__.py",
        include_str!("../templates/context/dpy_gather/__init__.py"),
    ),
    (
        "dpy/dpy_gather/main.py",
        include_str!("../templates/context/dpy_gather/main.py"),
    ),
    (
        "dpy/dpy_gather/gather.py",
        include_str!("../templates/context/dpy_gather/gather.py"),
    ),
    (
        "dpy/dpy_gather/graft.py",
        include_str!("../templates/context/dpy_gather/graft.py"),
    ),
    (
        "dpy/dpy_gather/probe.py",
        include_str!("../templates/context/dpy_gather/probe.py"),
    ),
    (
        "dpy/dpy_gather/elf.py",
        include_str!("../templates/context/dpy_gather/elf.py"),
    ),
    (
        "dpy/dpy_gather/root.py",
        include_str!("../templates/context/dpy_gather/root.py"),
    ),
    (
        "dpy/dpy_gather/compile.py",
        include_str!("../templates/context/dpy_gather/compile.py"),
    ),
    (
        "dpy/dpy_gather/debug.py",
        include_str!("../templates/context/dpy_gather/debug.py"),
    ),
    (
        "dpy/dpy_gather/pkgdb.py",
        include_str!("../templates/context/dpy_gather/pkgdb.py"),
    ),
    (
        "dpy/dpy_gather/realpaths.py",
        include_str!("../templates/context/dpy_gather/realpaths.py"),
    ),
    (
        "dpy/dpy_gather/report.py",
        include_str!("../templates/context/dpy_gather/report.py"),
    ),
    (
        "dpy/stage.sh",
        include_str!("../templates/context/stage.sh"),
    ),
    (
        "dpy/builder-pip.sh",
        include_str!("../templates/context/builder-pip.sh"),
    ),
    (
        "dpy/_dpy_zipimport.py",
        include_str!("../templates/context/_dpy_zipimport.py"),
    ),
    (
        "dpy/ensurepip/__init__.py",
        include_str!("../templates/context/ensurepip/__init__.py"),
    ),
    (
        "dpy/ensurepip/__main__.py",
        include_str!("../templates/context/ensurepip/__main__.py"),
    ),
];

/// Helpers every -buildroot image has, whatever the family.
const COMMON_HELPERS: &[&str] = &["chroot-pip", "chroot-uv", "chroot-exec"];

pub const BUILDROOT_DOCKERFILE: &str = "Dockerfile.buildroot";
/// The `--ca-bundle`, bind-mounted into builder steps; empty when none was given. It sits
/// outside dpy/ because dpy/ is copied into the -buildroot image and this must never be.
pub const CA_BUNDLE: &str = "ca/bundle.pem";

fn engine() -> Result<Tera> {
    let mut tera = Tera::default();
    confine(&mut tera);
    tera.add_raw_templates(TEMPLATES.iter().copied())
        .map_err(|e| template_error("templates", &e))?;
    Ok(tera)
}

/// Tera's functions that read more than the values a template is given, each with why it
/// is refused. `get_env` publishes whatever the environment holds (a registry password, a
/// CI token) into a file that gets committed; `now` reads the clock and the local time
/// zone and `get_random` the system's randomness, and either would make the same
/// metadata render a different file. Only `get_env` is in the tera dpy builds
/// (default-features = false); the others are refused too, should a crate that turns on
/// tera's `builtins` feature ever join the build.
const CONFINED: &[(&str, &str)] = &[
    (
        "get_env",
        "get_env is not available: dpy's templates see only the values dpy gives them, never the environment (it can hold secrets); write the value into the template instead",
    ),
    (
        "now",
        "now is not available: dpy's templates see only the values dpy gives them, not the clock, so the same metadata renders the same file; use an image's built_at or write the date into the template",
    ),
    (
        "get_random",
        "get_random is not available: dpy's templates see only the values dpy gives them, so the same metadata renders the same file; write the value into the template instead",
    ),
];

/// Replaces Tera's functions that reach outside the template's values (`CONFINED`) with
/// ones that fail saying why. Every Tera of dpy's goes through this: the user's README
/// template (`dpy readme --template`, which CI may take from a repository) as well as
/// dpy's own templates.
pub(crate) fn confine(tera: &mut Tera) {
    for (name, why) in CONFINED {
        tera.register_function(
            name,
            move |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
                Err(tera::Error::msg(*why))
            },
        );
    }
}

pub(crate) fn template_error(name: &str, err: &tera::Error) -> Error {
    // Tera nests the useful part (line, column, what was expected) in its sources.
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    Error::Template {
        name: name.to_string(),
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn render(tera: &Tera, name: &str, context: &Context) -> Result<String> {
    tera.render(name, context)
        .map_err(|e| template_error(name, &e))
}

/// The gather stage's instructions (read by templates/context/dpy_gather).
#[derive(Debug, Serialize)]
struct GatherConfig<'a> {
    /// The family the target names, its libc and its display name (images/*.toml): the
    /// gather stage refuses a source of another family before it compiles anything.
    family: &'a str,
    libc: &'a str,
    display: &'a str,
    /// The Python the target names (`3.14`, or `3.14.2` when it names the release): the
    /// gather stage refuses a source whose interpreter is another, before anything is
    /// built or tagged under the target's name.
    python: String,
    compile: bool,
    /// `dash`, or `none`: no shell in the runtime root.
    shell: &'a str,
    /// Collect busybox (or the source's own tools) into debug/ for the debug variant.
    debug: bool,
    profile: &'a str,
    strip: &'a [String],
    announced: &'a [String],
    time_zones_left_out: &'a [String],
    hot_imports: &'a [String],
    on_disk: &'a [String],
    extra_libraries: &'a [String],
    stubs: std::collections::BTreeMap<&'a str, &'a str>,
}

/// Refuses a value that a Dockerfile line would hold if it could end or split that line.
/// Every value a Dockerfile template is given passes here, whatever checked it before
/// (`shape` for the source's answers): a line break would end the instruction and begin
/// one of the value's own, and Tera escapes nothing outside HTML and XML. `unfit` says
/// which characters the value's place cannot take; a value from the source's answers is
/// refused as the source's (exit 12), any other as dpy's definitions' (exit 3).
fn dockerfile_value<'a>(
    template: &str,
    field: &str,
    value: &'a str,
    unfit: fn(char) -> bool,
    from_source: bool,
) -> Result<&'a str> {
    let Some(c) = value.chars().find(|&c| c.is_control() || unfit(c)) else {
        return Ok(value);
    };
    let message = format!(
        "{field} {} holds {c:?}, which a Dockerfile line cannot take",
        crate::shape::show(value)
    );
    Err(match from_source {
        true => Error::SourceUnfit(format!(
            "{message}: the source image's answers name it; build from an unaltered source image"
        )),
        false => Error::Template {
            name: template.to_string(),
            message: format!("{message}; fix the definition or the argument that gives it"),
        },
    })
}

/// Anything goes in a comment but a line break (checked with every control character).
fn comment(_: char) -> bool {
    false
}

/// A word of an instruction (FROM's image, a package of a RUN line, an ENV value): it
/// ends at whitespace, and quotes, a backslash, `$` or a backtick would be read as
/// syntax (ENV expands `$`, a RUN line is shell).
fn word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '$' | '`')
}

fn base_context(recipe: &Recipe, from: &str, template: &str) -> Result<Context> {
    let mut context = Context::new();
    context.insert("dpy_version", env!("CARGO_PKG_VERSION"));
    let target = recipe.target.to_string();
    context.insert(
        "target",
        dockerfile_value(template, "target", &target, word, false)?,
    );
    context.insert("family", recipe.flavor.family.name());
    // The comment line names the source as the user did; FROM names what was resolved.
    let source = &recipe.source_image;
    context.insert(
        "source_image",
        dockerfile_value(template, "source image", source, comment, false)?,
    );
    context.insert(
        "source_from",
        dockerfile_value(template, "source image", from, word, false)?,
    );
    context.insert("build_root", BUILD_ROOT);
    for (name, packages) in [
        ("runtime_packages", &recipe.flavor.runtime_packages),
        ("debug_packages", &recipe.flavor.debug_packages),
    ] {
        for package in packages {
            dockerfile_value(template, name, package, word, false)?;
        }
        context.insert(name, packages);
    }
    context.insert("debug", &recipe.makes(crate::runtime::Variant::Debug));
    Ok(context)
}

/// The build context for the gather, export and buildroot stages, with FROM lines that
/// name the source image as the recipe does (`dpy render`, where no engine resolved it).
pub fn render_context(recipe: &Recipe) -> Result<BuildContext> {
    render_context_for(recipe, &recipe.source_image)
}

/// The build context for the gather, export and buildroot stages of a build, with FROM
/// lines that name the source as it was resolved ([`SourceImage::pinned`], by digest):
/// a tag that moves between the resolve and the build cannot change what is built, so
/// the labels, the provenance and `--if-changed` name the image that was used.
pub fn render_context_from(recipe: &Recipe, source: &SourceImage) -> Result<BuildContext> {
    render_context_for(recipe, &source.pinned)
}

fn render_context_for(recipe: &Recipe, from: &str) -> Result<BuildContext> {
    let tera = engine()?;
    let dockerfile = format!("{}/buildroot.Dockerfile.tera", recipe.flavor.family.name());
    let context = base_context(recipe, from, &dockerfile)?;
    let mut out = BuildContext::new();

    out.add(
        BUILDROOT_DOCKERFILE,
        0o644,
        render(&tera, &dockerfile, &context)?,
    );

    let helpers = COMMON_HELPERS
        .iter()
        .copied()
        .chain(recipe.flavor.helpers.iter().map(String::as_str));
    for helper in helpers {
        let body = render(&tera, &format!("helpers/{helper}.tera"), &context)?;
        out.add(format!("dpy/bin/{helper}"), 0o755, body);
    }

    for (path, body) in VERBATIM {
        out.add(*path, 0o644, *body);
    }

    let ca = recipe
        .ca_bundle
        .as_ref()
        .map(|c| c.pem.clone())
        .unwrap_or_default();
    out.add(CA_BUNDLE, 0o644, ca);

    let config = GatherConfig {
        family: recipe.flavor.family.name(),
        libc: &recipe.flavor.libc,
        display: &recipe.flavor.display,
        python: recipe.target.python.to_string(),
        compile: recipe.compile_stdlib,
        shell: recipe.shell.name(),
        debug: recipe.makes(crate::runtime::Variant::Debug),
        profile: &recipe.profile.name,
        strip: &recipe.profile.modules,
        announced: &recipe.profile.announced,
        time_zones_left_out: &recipe.profile.time_zones_left_out,
        hot_imports: &recipe.zip.hot_imports,
        on_disk: &recipe.zip.on_disk,
        extra_libraries: &recipe.flavor.extra_libraries,
        stubs: [
            ("ensurepip", "/opt/dpy/ensurepip"),
            ("_dpy_zipimport", "/opt/dpy/_dpy_zipimport.py"),
        ]
        .into_iter()
        .collect(),
    };
    let json = serde_json::to_string_pretty(&config).expect("the gather config serializes");
    out.add("dpy/config.json", 0o644, json + "\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dpy's own templates cannot read the environment either, and a value they are given
    /// is text, never template code (Tera does not evaluate values).
    #[test]
    fn templates_cannot_read_the_environment() {
        let mut tera = engine().unwrap();
        for (name, call) in [
            ("env", "{{ get_env(name=\"HOME\") }}"),
            ("env-default", "{{ get_env(name=\"HOME\", default=\"x\") }}"),
            ("now", "{{ now() }}"),
            ("random", "{{ get_random(end=10) }}"),
        ] {
            tera.add_raw_template(name, call).unwrap();
            let e = render(&tera, name, &Context::new()).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::DEFINITION);
            assert!(e.to_string().contains("is not available"), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        tera.add_raw_template("value", "{{ source_image }}")
            .unwrap();
        let mut context = Context::new();
        context.insert("source_image", "{{ get_env(name=\"HOME\") }}");
        assert_eq!(
            render(&tera, "value", &context).unwrap(),
            "{{ get_env(name=\"HOME\") }}"
        );
    }

    /// Image definitions name their helpers; each must have a template (a missing one
    /// would otherwise fail only when that family is rendered).
    #[test]
    fn every_helper_has_a_template() {
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        for family in [crate::target::Family::Alpine, crate::target::Family::Debian] {
            for helper in COMMON_HELPERS
                .iter()
                .map(|h| h.to_string())
                .chain(catalog.flavor(family).helpers.iter().cloned())
            {
                let path = format!("helpers/{helper}.tera");
                assert!(
                    TEMPLATES.iter().any(|(p, _)| *p == path),
                    "{family}: no template templates/{path}"
                );
            }
        }
    }
}
