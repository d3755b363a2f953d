//! Small facts dpy remembers between runs, one file per key under the user's cache
//! (`$XDG_CACHE_HOME/dpy/<kind>/<key>`, else `~/.cache/dpy/…`).
//!
//! Everything here is a shortcut, never a source of truth: a missing, unreadable or
//! unwritable cache only costs the next run the work it would have saved.

use std::io::Write;
use std::path::{Path, PathBuf};

fn dir(kind: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dpy").join(kind))
}

/// What was remembered under `kind`/`key`, trimmed.
pub fn recall(kind: &str, key: &str) -> Option<String> {
    recall_in(&dir(kind)?, key)
}

/// Remembers `value` under `kind`/`key`, written whole or not at all (a rename).
pub fn remember(kind: &str, key: &str, value: &str) {
    if let Some(dir) = dir(kind) {
        remember_in(&dir, key, value);
    }
}

fn recall_in(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(key)).ok()?;
    Some(text.trim().to_string())
}

fn remember_in(dir: &Path, key: &str, value: &str) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(mut file) = tempfile::NamedTempFile::new_in(dir) {
        if file.write_all(value.as_bytes()).is_ok() {
            let _ = file.persist(dir.join(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_whole_values_and_nothing_else() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("dpy").join("kind");
        assert_eq!(recall_in(&dir, "key"), None);
        remember_in(&dir, "key", "sha256:abc 12\n");
        assert_eq!(recall_in(&dir, "key").as_deref(), Some("sha256:abc 12"));
        assert_eq!(recall_in(&dir, "other"), None);
        // Nothing but the value's own file is left: the temporary one was renamed.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }
}
