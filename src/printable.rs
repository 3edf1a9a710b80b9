//! Text from outside (CSR names, device ids, webhook reasons) shown on a terminal or in a
//! text log: which characters are unsafe there, and how they are escaped.

/// Characters that can rewrite what a terminal or a log viewer shows: the C0 controls
/// (newline, ESC…), DEL, the C1 controls, and the bidirectional formatting characters that
/// reorder a line visually (Trojan Source, CVE-2021-42574).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
