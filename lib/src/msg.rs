//! Messages on stderr, each prefixed with the running tool's name (set once by
//! `cli::main`), with control characters from input made visible so that a name
//! read from a node or an archive cannot drive the terminal.

use std::borrow::Cow;
use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

static TOOL: OnceLock<String> = OnceLock::new();

/// Names the running tool (the first call wins).
pub fn set_tool(name: &str) {
    let _ = TOOL.set(name.to_string());
}

/// The running tool's name (`pvedr` until set).
pub fn tool() -> &'static str {
    TOOL.get().map(String::as_str).unwrap_or("pvedr")
}

/// `text` with control characters other than newline and tab escaped.
pub fn visible(text: &str) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` as it may reach the terminal: secrets masked ([`crate::redact::text`]), control
/// characters visible.
pub fn printable(text: &str) -> String {
    visible(&crate::redact::text(text))
}

/// `text` (a value read from a server, a file or argv) with every control character
/// escaped, newline and tab included, and Unicode's bidirectional overrides too: once
/// printed it stays on one line and cannot forge another tool line or drive the terminal.
pub fn one_line(text: &str) -> String {
    escaped(text).into_owned()
}

/// [`one_line`], borrowing a text that needs no escape (every table and CSV cell).
pub fn escaped(text: &str) -> Cow<'_, str> {
    let hostile =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `<tool>: <message>`.
pub fn say(message: impl Display) {
    line(format_args!(
        "{}: {}",
        tool(),
        printable(&message.to_string())
    ));
}

/// One line on stderr as given (no prefix); a closed or full stderr loses the message,
/// never the run (`eprintln!` would panic).
pub fn line(text: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `<tool>: warning: <message>`.
pub fn warn(message: impl Display) {
    line(format_args!(
        "{}: warning: {}",
        tool(),
        printable(&message.to_string())
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_visibly() {
        assert_eq!(visible("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\nc");
        assert_eq!(visible("plain"), "plain");
    }

    #[test]
    fn printable_values_stay_on_one_line() {
        assert_eq!(
            one_line("a\nb\r\u{1b}[2J\t\u{202e}c"),
            "a\\nb\\r\\u{1b}[2J\\t\\u{202e}c"
        );
        assert_eq!(one_line("tfstate-prod"), "tfstate-prod");
    }
}
