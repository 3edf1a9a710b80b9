//! Text from outside (CSR names, device ids, webhook reasons) shown on a terminal or in a
//! text log: which characters are unsafe there, and [`escape`], the one function every text
//! output (CLI tables, text logs) uses for them. JSON output is left exact: JSON escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that can rewrite what a terminal or a log viewer shows: the C0 controls
/// (newline, ESC…), DEL, the C1 controls, and the bidirectional formatting characters that
/// reorder a line visually (Trojan Source, CVE-2021-42574).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every [`is_unsafe`] character written out: `\n`, `\r`, `\t`, other ASCII
/// controls and DEL as `\xNN` (ESC is `\x1b`), C1 and bidi characters as `\u{NNNN}`.
/// Borrowed when there is nothing to escape (the common case).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        // Writing to a String cannot fail.
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if c.is_ascii_control() => write!(out, "\\x{:02x}", u32::from(c)),
            c if is_unsafe(c) => write!(out, "\\u{{{:x}}}", u32::from(c)),
            c => out.write_char(c),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_written_out_and_the_rest_is_kept() {
        assert!(matches!(escape("John's MacBook é/?%"), Cow::Borrowed(_)));
        assert_eq!(
            escape("X\n2026-12-03T00:00:00Z  INFO forged"),
            "X\\n2026-12-03T00:00:00Z  INFO forged"
        );
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("a\r\tb\0\u{7f}"), "a\\r\\tb\\x00\\x7f");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        // Nothing unsafe survives, whatever the input.
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!escape(&all).chars().any(is_unsafe));
    }
}
