//! README.rst's figures are scripts/bench's latest run (figures/latest.txt), put there by
//! scripts/figures: no figure is written by hand, and the README cannot show a run other
//! than the one recorded.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_readme_shows_the_latest_bench_run() {
    let readme = read("README.rst");
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != ".. figures: begin")
        .skip(1)
        .take_while(|l| *l != ".. figures: end")
        .collect();
    assert!(
        !block.is_empty(),
        "README.rst has no `.. figures: begin` block"
    );
    // A literal block: `::`, then every line indented by four spaces.
    let text: Vec<&str> = block
        .iter()
        .skip_while(|l| l.is_empty())
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    assert_eq!(block.iter().find(|l| !l.is_empty()), Some(&"::"));
    let shown = text.join("\n").trim().to_string();
    let recorded: Vec<String> = read("figures/latest.txt")
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    assert_eq!(
        shown,
        recorded.join("\n").trim(),
        "README.rst's figures are not figures/latest.txt: run scripts/figures"
    );
    assert!(
        recorded[0].starts_with("scripts/bench, dpy "),
        "figures/latest.txt is a run of scripts/bench: {}",
        recorded[0]
    );
}
