//! `--repository`: the name the images are tagged under, checked before anything is built.
//!
//! The engine refuses a bad name only when it tags, after every image was built; the
//! distribution grammar (oci-spec's reference parser, which the OCI client also uses)
//! refuses it at once.

use oci_client::Reference;

use crate::error::{Error, Result};

/// What a repository name may contain, for the error line.
const GRAMMAR: &str = "lowercase letters, digits and the separators . _ __ - inside /-separated parts, optionally after a registry host (e.g. dpy/python, ghcr.io/me/python, 127.0.0.1:5000/dpy/python)";

/// Refuses a name the engine could not tag: upper case, spaces, empty parts, a tag or
/// digest of its own.
pub fn check(name: &str) -> Result<()> {
    // A tag is added to probe the name alone: `me/py:latest` then fails as it should,
    // since dpy adds the tags itself.
    let parsed = format!("{name}:probe").parse::<Reference>();
    let why = match parsed {
        Ok(_) => return Ok(()),
        Err(_) if name.is_empty() => "it is empty".to_string(),
        Err(_) if name.contains(['@', ' ', '\t']) => "it holds a space or a digest".to_string(),
        Err(_) if has_upper_path(name) => "it has upper-case letters".to_string(),
        Err(_)
            if name
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':')) =>
        {
            "it holds a tag; dpy adds the tags (<target>, <target>-buildroot)".to_string()
        }
        Err(e) => e.to_string(),
    };
    Err(Error::Usage(format!(
        "--repository {name:?} is not a repository name: {why}; a name takes {GRAMMAR}"
    )))
}

/// The registry host a repository name starts with, as the docker CLI tells it: a
/// first component with a `.` or a `:`, or `localhost`. Without one the name is Docker
/// Hub's (`dpy/python`). The one place this rule is written.
pub fn registry_host(name: &str) -> Option<&str> {
    name.split_once('/')
        .map(|(host, _)| host)
        .filter(|host| host.contains(['.', ':']) || *host == "localhost")
}

/// Upper case outside a registry host (hosts are case-insensitive, paths are not).
fn has_upper_path(name: &str) -> bool {
    let path = match registry_host(name) {
        Some(host) => &name[host.len() + 1..],
        None => name,
    };
    path.chars().any(|c| c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_engine_can_tag_pass() {
        for good in [
            "dpy/python",
            "python",
            "ghcr.io/me/python",
            "127.0.0.1:5000/dpy-test/e2e1",
            "localhost/x",
            "a__b/c.d-e",
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_names_say_why_and_what_a_name_takes() {
        for (bad, why) in [
            ("Bar/Bad", "upper-case"),
            ("bar/b ad", "space"),
            ("me/py:latest", "holds a tag"),
            ("", "empty"),
            ("a//b", "invalid reference format"),
            ("-a/b", "invalid reference format"),
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad}");
            let text = e.to_string();
            assert!(text.contains(why), "{bad}: {text}");
            assert!(text.contains("lowercase letters, digits"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn a_registry_host_is_told_as_the_docker_cli_tells_it() {
        for (name, host) in [
            ("ghcr.io/me/python", Some("ghcr.io")),
            ("127.0.0.1:5000/dpy/python", Some("127.0.0.1:5000")),
            ("localhost/x", Some("localhost")),
            ("localhost:5000/x", Some("localhost:5000")),
            ("dpy/python", None),
            ("python", None),
            ("me/ghcr.io", None),
        ] {
            assert_eq!(registry_host(name), host, "{name}");
        }
    }
}
