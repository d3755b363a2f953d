//! Which targets a build or a listing means: names, shell-style patterns over the
//! matrix (`'3.13-*'`, `'*-alpine3.20'`, `'3.1?-slim-*'`), or `--all`.
//!
//! `--all` means the targets upstream still cares for (crate::lifecycle) unless the
//! retired ones are asked for too; names and patterns are asked for, so they select
//! retired targets as well, and the build warns about each.
//!
//! A name without `*`, `?` or `[` is parsed as a target, as always (so `3.12.4-bookworm`
//! and the bare `alpine` alias still work); anything else is a pattern matched against
//! the matrix of images/matrix.toml. A pattern that matches nothing is an error that
//! names the closest targets, since it is most often a typo.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::lifecycle::Month;
use crate::target::Target;

/// What `--all` selects: the targets still supported in `today`'s month, and the
/// retired ones too with `include_retired`.
#[derive(Debug, Clone, Copy)]
pub struct Every {
    pub today: Month,
    pub include_retired: bool,
}

/// Whether `text` is a pattern rather than a target name.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The targets `names` (and `all`) select, each once, in the order given; the matrix's
/// order within a pattern.
pub fn select(catalog: &Catalog, names: &[String], all: Option<Every>) -> Result<Vec<Target>> {
    let matrix = catalog.targets();
    let mut out: Vec<Target> = Vec::new();
    let add = |target: Target, out: &mut Vec<Target>| {
        if !out.contains(&target) {
            out.push(target);
        }
    };
    if let Some(every) = all {
        if !names.is_empty() {
            return Err(Error::Usage(
                "--all builds every target of the matrix; give targets or --all, not both".into(),
            ));
        }
        for target in matrix {
            if every.include_retired || !catalog.support(&target, every.today).is_retired() {
                add(target, &mut out);
            }
        }
        return Ok(out);
    }
    if names.is_empty() {
        return Err(Error::Usage(
            "no target given: name one (3.12-alpine3.20), a pattern ('3.13-*') or --all; `dpy list` shows the matrix".into(),
        ));
    }
    for name in names {
        if !is_pattern(name) {
            add(catalog.parse_target(name)?, &mut out);
            continue;
        }
        let pattern = glob::Pattern::new(name)
            .map_err(|e| Error::Usage(format!("invalid target pattern {name:?}: {e}")))?;
        let matched: Vec<&Target> = matrix
            .iter()
            .filter(|t| pattern.matches(&t.to_string()))
            .collect();
        if matched.is_empty() {
            return Err(Error::Usage(format!(
                "the pattern {name:?} matches no target; closest: {}; `dpy list` shows them all",
                closest(&matrix, name).join(", ")
            )));
        }
        for target in matched {
            add(target.clone(), &mut out);
        }
    }
    Ok(out)
}

/// The three targets nearest to `text`, by edit distance with the wildcards taken out.
fn closest(matrix: &[Target], text: &str) -> Vec<String> {
    let bare: String = text.chars().filter(|c| !"*?[]".contains(*c)).collect();
    let mut scored: Vec<(usize, String)> = matrix
        .iter()
        .map(|t| {
            let name = t.to_string();
            (strsim::levenshtein(&bare, &name), name)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(targets: &[Target]) -> Vec<String> {
        targets.iter().map(Target::to_string).collect()
    }

    fn select_one(text: &str) -> Result<Vec<String>> {
        select(&Catalog::embedded().unwrap(), &[text.to_string()], None).map(|t| names(&t))
    }

    #[test]
    fn the_matrix_leaves_out_its_holes() {
        let all = names(&Catalog::embedded().unwrap().targets());
        assert!(all.contains(&"3.12-alpine3.20".to_string()));
        assert!(all.contains(&"3.13-slim-trixie".to_string()));
        assert!(!all.contains(&"3.14-alpine3.20".to_string()));
        assert!(!all.contains(&"3.9-alpine3.23".to_string()));
        assert!(all.contains(&"3.15-alpine3.24".to_string()));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn patterns_match_over_the_matrix() {
        assert_eq!(
            select_one("3.13-*alpine*").unwrap(),
            [
                "3.13-alpine3.20",
                "3.13-alpine3.21",
                "3.13-alpine3.22",
                "3.13-alpine3.23",
                "3.13-alpine3.24"
            ]
        );
        assert_eq!(
            select_one("3.1?-slim-bookworm").unwrap(),
            [
                "3.10-slim-bookworm",
                "3.11-slim-bookworm",
                "3.12-slim-bookworm",
                "3.13-slim-bookworm",
                "3.14-slim-bookworm",
                "3.15-slim-bookworm"
            ]
        );
        assert_eq!(select_one("*-alpine3.20").unwrap().len(), 5);
        // A plain name is a target, as before: aliases and patch versions still parse.
        assert_eq!(select_one("3.12-alpine").unwrap(), ["3.12-alpine"]);
    }

    #[test]
    fn a_pattern_that_matches_nothing_names_the_closest_targets() {
        let e = select_one("3.13-alpine3.2*x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().starts_with(
                "the pattern \"3.13-alpine3.2*x\" matches no target; closest: 3.13-alpine3.2"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_target_named_twice_is_built_once() {
        let catalog = Catalog::embedded().unwrap();
        let got = select(
            &catalog,
            &["3.12-alpine3.20".into(), "3.12-alpine3.2?".into()],
            None,
        )
        .unwrap();
        assert_eq!(
            names(&got),
            [
                "3.12-alpine3.20",
                "3.12-alpine3.21",
                "3.12-alpine3.22",
                "3.12-alpine3.23",
                "3.12-alpine3.24"
            ]
        );
    }

    #[test]
    fn all_leaves_out_retired_targets_unless_asked() {
        let catalog = Catalog::embedded().unwrap();
        let every = |month: &str, include_retired| {
            let all = Every {
                today: Month::parse(month).unwrap(),
                include_retired,
            };
            names(&select(&catalog, &[], Some(all)).unwrap())
        };
        let now = every("2026-12", false);
        // 3.9 and 3.10 are past their end of life; Alpine 3.20-3.22 are no longer updated.
        assert!(now
            .iter()
            .all(|t| !t.starts_with("3.9-") && !t.starts_with("3.10-")));
        assert!(now.iter().all(|t| !t.contains("alpine3.2")
            || t.ends_with("alpine3.23")
            || t.ends_with("alpine3.24")));
        assert_eq!(now.first().map(String::as_str), Some("3.11-alpine3.23"));
        assert!(now.contains(&"3.15-slim-trixie".to_string()));
        // 6 Debian flavours and 2 Alpine releases for each of 3.11-3.15.
        assert_eq!(now.len(), 5 * 6);
        // A month earlier, 3.10 was still supported; a year later, 3.11 is not.
        assert!(every("2026-10", false).contains(&"3.10-bookworm".to_string()));
        assert!(!every("2027-11", false).contains(&"3.11-bookworm".to_string()));
        assert_eq!(every("2026-12", true), names(&catalog.targets()));
    }
}
