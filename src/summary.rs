//! The table at the end of a build of several targets: each target's outcome, the
//! runtime image's digest (the pushed index, or the local id) and its time.

use std::time::Duration;

use crate::error::Result;
use crate::target::Target;

/// What became of a target that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Built (and pushed): the runtime image's digest or local id.
    Built(String),
    /// `--if-changed` found its inputs unchanged: the digest it kept.
    Unchanged(String),
}

/// One target's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub target: String,
    /// `built`, or `failed (exit N): the error`.
    pub outcome: String,
    pub digest: String,
    pub seconds: String,
}

impl Row {
    pub fn new(target: &Target, result: &Result<Done>, took: Duration) -> Self {
        let (outcome, digest) = match result {
            Ok(Done::Built(digest)) => ("built".to_string(), digest.clone()),
            Ok(Done::Unchanged(digest)) => ("unchanged".to_string(), digest.clone()),
            Err(e) => (
                format!("failed (exit {}): {e}", e.exit_code()),
                "-".to_string(),
            ),
        };
        Row {
            target: target.to_string(),
            outcome,
            digest,
            seconds: format!("{:.1}s", took.as_secs_f64()),
        }
    }
}

/// The table, a header and one line per row, columns aligned; the outcome last, since
/// a failure's reason is long.
pub fn table<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let rows: Vec<&Row> = rows.collect();
    let width = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).len())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (t, d, s) = (
        width(|r| &r.target, "TARGET"),
        width(|r| &r.digest, "DIGEST"),
        width(|r| &r.seconds, "TIME"),
    );
    let mut out = format!(
        "{:t$}  {:d$}  {:>s$}  OUTCOME\n",
        "TARGET", "DIGEST", "TIME"
    );
    for r in rows {
        out.push_str(&format!(
            "{:t$}  {:d$}  {:>s$}  {}\n",
            r.target, r.digest, r.seconds, r.outcome
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn the_table_aligns_its_columns_and_gives_each_failure_its_reason() {
        let a: Target = "3.12-alpine3.20".parse().unwrap();
        let b: Target = "3.13-bookworm".parse().unwrap();
        let rows = [
            Row::new(
                &a,
                &Ok(Done::Built("sha256:ab".into())),
                Duration::from_millis(12_340),
            ),
            Row::new(
                &b,
                &Err(Error::SourceMissing("no such image".into())),
                Duration::from_millis(500),
            ),
        ];
        assert_eq!(
            table(rows.iter()),
            "TARGET           DIGEST      TIME  OUTCOME
3.12-alpine3.20  sha256:ab  12.3s  built
3.13-bookworm    -           0.5s  failed (exit 11): no such image
"
        );
    }
}
