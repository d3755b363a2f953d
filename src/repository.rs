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

/// Upper case outside a registry host (hosts are case-insensitive, paths are not).
fn has_upper_path(name: &str) -> bool {
    let path = match name.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => name,
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
}
