//! `dpy list`: the matrix's targets with their family, status and source, as a table,
//! as JSON, or as the support table README.rst carries (`scripts/support-table`).

use crate::catalog::Catalog;
use crate::error::Result;
use crate::lifecycle::Month;
use crate::selection::{self, Every};
use crate::target::Family;

/// One target as listed.
pub struct Row {
    pub target: String,
    pub family: &'static str,
    /// crate::lifecycle::Support::status.
    pub status: &'static str,
    /// Its Python's end of life, `YYYY-MM`.
    pub end_of_life: String,
    pub source: String,
}

/// The targets `patterns` select (every target, retired ones included, without any).
pub fn rows(catalog: &Catalog, patterns: &[String], today: Month) -> Result<Vec<Row>> {
    let every = patterns.is_empty().then_some(Every {
        today,
        include_retired: true,
    });
    let targets = selection::select(catalog, patterns, every)?;
    Ok(targets
        .iter()
        .map(|t| Row {
            target: t.to_string(),
            family: t.family().name(),
            status: catalog.support(t, today).status(),
            end_of_life: catalog
                .end_of_life(&t.python.minor_version())
                .map(|m| m.to_string())
                .unwrap_or_default(),
            source: catalog.flavor(t.family()).source_image_for(t),
        })
        .collect())
}

/// Aligned columns under a header.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "{:width$}  {:6}  {:12}  SOURCE\n",
        "TARGET", "FAMILY", "STATUS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:width$}  {:6}  {:12}  {}\n",
            r.target, r.family, r.status, r.source
        ));
    }
    out
}

/// One object per row.
pub fn json(rows: &[Row]) -> String {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "target": r.target,
                "family": r.family,
                "status": r.status,
                "python_end_of_life": r.end_of_life,
                "source_image": r.source,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&values).expect("a listing serializes");
    text.push('\n');
    text
}

/// Each Python, newest first, with its end of life and the releases of each family the
/// official images publish it on, those no longer updated marked (they stay buildable).
/// Facts only, no date: the table in README.rst stays true as months pass.
pub fn support_table(catalog: &Catalog) -> String {
    let targets = catalog.targets();
    let mut pythons: Vec<String> = Vec::new();
    for t in &targets {
        let python = t.python.minor_version();
        if !pythons.contains(&python) {
            pythons.push(python);
        }
    }
    pythons.reverse();
    let mut rows = vec![[
        "Python".to_string(),
        "End of life".to_string(),
        "Debian (full and slim)".to_string(),
        "Alpine".to_string(),
    ]];
    for python in &pythons {
        // The releases the official images still update, then those they no longer do.
        let releases = |family: Family| {
            let (mut kept, mut old) = (Vec::new(), Vec::new());
            for t in targets
                .iter()
                .filter(|t| t.python.minor_version() == *python && t.family() == family)
                .filter(|t| !t.os.slim)
            {
                let name = t.os.release.clone().unwrap_or_default();
                if catalog.release_retired(t) {
                    old.push(name);
                } else {
                    kept.push(name);
                }
            }
            let mut cell = if kept.is_empty() {
                "-".to_string()
            } else {
                kept.join(", ")
            };
            if !old.is_empty() {
                cell.push_str(&format!(" (unmaintained: {})", old.join(", ")));
            }
            cell
        };
        rows.push([
            python.clone(),
            catalog
                .end_of_life(python)
                .map_or_else(|| "-".to_string(), |m| m.to_string()),
            releases(Family::Debian),
            releases(Family::Alpine),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let rule = widths
        .iter()
        .map(|w| "=".repeat(*w))
        .collect::<Vec<_>>()
        .join("  ");
    let line = |row: &[String; 4]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = format!("{rule}\n{}{rule}\n", line(&rows[0]));
    for row in &rows[1..] {
        out.push_str(&line(row));
    }
    out.push_str(&format!("{rule}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_support_table_marks_what_is_retired() {
        let catalog = Catalog::embedded().unwrap();
        let table = support_table(&catalog);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("Python  End of life"), "{table}");
        assert!(lines[3].starts_with("3.15    2031-10  "), "{table}");
        assert!(lines[3].ends_with("3.23, 3.24"), "{table}");
        let three_nine = lines.iter().find(|l| l.starts_with("3.9 ")).unwrap();
        assert!(three_nine.starts_with("3.9     2025-10  "), "{table}");
        assert!(
            three_nine.ends_with("  - (unmaintained: 3.20, 3.21, 3.22)"),
            "{table}"
        );
        let three_thirteen = lines.iter().find(|l| l.starts_with("3.13 ")).unwrap();
        assert!(
            three_thirteen.ends_with("  3.23, 3.24 (unmaintained: 3.20, 3.21, 3.22)"),
            "{table}"
        );
        // A rule above the header, below it, and at the end; seven Pythons.
        assert_eq!(lines.len(), 3 + 7 + 1, "{table}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
