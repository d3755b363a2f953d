//! Text from a build step, made safe to print.
//!
//! What a step prints comes from the source image's code (the gather stage runs its
//! interpreter) and is untrusted: escape sequences in it could rewrite the terminal's
//! title, hide or fake lines (`\r`, cursor moves), plant OSC 8 links, or reorder what the
//! user reads (bidi overrides). Every such text goes through [`sanitize`] before it
//! reaches the terminal or an error message, so each of those characters shows as a
//! visible escape instead of acting.

use std::borrow::Cow;

/// `text` with every control character replaced by a visible escape: C0 controls, DEL
/// and C1 controls as `\xNN` (`\r` and `\n` as themselves, escaped), the bidi controls
/// and the line and paragraph separators as `\u{NNNN}`. A tab becomes a space. Text
/// without any of them is returned as it is.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` on one line: every run of whitespace (line breaks included) one space, the
/// rest through [`sanitize`]. For a message that is embedded in a line of dpy's own (a
/// step's name or error), where a line break would only split that line.
pub fn one_line(text: &str) -> String {
    sanitize(&text.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned()
}

/// Whether `c` acts on a terminal or on the order of what it shows rather than being
/// shown: `char::is_control` is exactly C0, DEL and C1.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, left-to-right and right-to-left marks.
            '\u{061c}' | '\u{200e}' | '\u{200f}'
            // Line and paragraph separators: a line break to some terminals and viewers.
            | '\u{2028}' | '\u{2029}'
            // Embeddings and overrides (LRE, RLE, PDF, LRO, RLO), isolates (LRI, RLI,
            // FSI, PDI).
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_show_as_escapes() {
        let cases: &[(&str, &str)] = &[
            ("plain text, ünïcödé, 漢字 ✓", "plain text, ünïcödé, 漢字 ✓"),
            ("", ""),
            ("a\tb", "a b"),
            // Colour (CSI SGR) and a cursor move.
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("\x1b[2K\x1b[1A", "\\x1b[2K\\x1b[1A"),
            // A title change (OSC 0, ended by BEL) and an OSC 8 hyperlink (ended by ST).
            ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
            (
                "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
                "\\x1b]8;;https://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\",
            ),
            // A line rewritten in place, and one that would break the log's lines.
            (
                "DPY-WARN all good\rDPY-ERROR",
                "DPY-WARN all good\\rDPY-ERROR",
            ),
            ("one\ntwo", "one\\ntwo"),
            // Other C0 controls, NUL, backspace, DEL.
            ("a\x00b\x08c\x7fd", "a\\x00b\\x08c\\x7fd"),
            // C1 controls: a single-character CSI and OSC, and NEL.
            ("\u{9b}31m\u{9d}0;x\u{85}", "\\x9b31m\\x9d0;x\\x85"),
            // Bidi overrides and isolates, marks, separators.
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}",
            ),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u{2066}\\u{2067}\\u{2068}\\u{2069}",
            ),
            ("\u{200e}\u{200f}\u{061c}", "\\u{200e}\\u{200f}\\u{61c}"),
            ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
            // A backslash stays as it is: only what acts is escaped.
            ("C:\\dir \\x1b", "C:\\dir \\x1b"),
        ];
        for (raw, shown) in cases {
            assert_eq!(sanitize(raw), *shown, "{raw:?}");
            assert!(!sanitize(raw).chars().any(needs_escape), "{raw:?}");
        }
    }

    #[test]
    fn one_line_joins_whitespace_and_escapes_the_rest() {
        let cases: &[(&str, &str)] = &[
            ("  exit code:\n 1\r\n", "exit code: 1"),
            ("a\t\u{2028}b\u{85}c", "a b c"),
            ("x\x1b[1A y", "x\\x1b[1A y"),
            ("\u{202e}\n", "\\u{202e}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(one_line(raw), *shown, "{raw:?}");
        }
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(sanitize("#8 0.41 ok"), Cow::Borrowed(_)));
        assert!(matches!(sanitize("#8\x1b"), Cow::Owned(_)));
    }
}
