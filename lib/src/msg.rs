//! Messages on stderr, each prefixed with the running tool's name (set once by
//! `cli::main`), with control characters from input made visible so that a name
//! read from a node or an archive cannot drive the terminal.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

static TOOL: OnceLock<String> = OnceLock::new();

thread_local! {
    /// What this thread's lines are about (`lane 2 VM 300`), when threads work side by side.
    static SCOPE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Names what the calling thread's lines are about from now on (`None`: nothing): each of
/// its lines then says so after the tool's name, so the lines of threads working side by
/// side (pve-restore's lanes) stay readable once interleaved.
pub fn set_scope(scope: Option<String>) {
    SCOPE.with(|s| *s.borrow_mut() = scope.map(|t| one_line(&t)));
}

/// The calling thread's scope, to hand to a thread it starts.
pub fn scope() -> Option<String> {
    SCOPE.with(|s| s.borrow().clone())
}

/// `[scope] ` or nothing.
fn scope_tag() -> String {
    tag(scope().as_deref())
}

fn tag(scope: Option<&str>) -> String {
    scope.map_or(String::new(), |s| format!("[{s}] "))
}

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

/// `<tool>: <message>` (`<tool>: [scope] <message>` in a scope).
pub fn say(message: impl Display) {
    write_line(&format!(
        "{}: {}{}",
        tool(),
        scope_tag(),
        printable(&message.to_string())
    ));
}

/// [`say`] on behalf of `scope` (a scope another thread set, as [`scope`] gave it): the
/// interrupt watcher answers for each lane.
pub fn say_in(scope: Option<&str>, message: impl Display) {
    write_line(&format!(
        "{}: {}{}",
        tool(),
        tag(scope.map(one_line).as_deref()),
        printable(&message.to_string())
    ));
}

/// One line on stderr as given (no prefix; in a scope, `<tool>: [scope] ` before it); a
/// closed or full stderr loses the message, never the run (`eprintln!` would panic).
pub fn line(text: impl Display) {
    match scope() {
        Some(_) => write_line(&format!("{}: {}{text}", tool(), scope_tag())),
        None => write_line(&text.to_string()),
    }
}

/// `<tool>: warning: <message>` (`<tool>: [scope] warning: …` in a scope).
pub fn warn(message: impl Display) {
    write_line(&format!(
        "{}: {}warning: {}",
        tool(),
        scope_tag(),
        printable(&message.to_string())
    ));
}

/// `text` and its newline on stderr.
fn write_line(text: &str) {
    let _ = put_line(&mut std::io::stderr().lock(), text);
}

/// `text` and its newline in one write: stderr is unbuffered, and `writeln!` writes each
/// piece of its format apart, which another process on the same stderr (a second run
/// from cron, a lane's node command) could tear.
fn put_line(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    let mut buf = String::with_capacity(text.len() + 1);
    buf.push_str(text);
    buf.push('\n');
    w.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_visibly() {
        assert_eq!(visible("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\nc");
        assert_eq!(visible("plain"), "plain");
    }

    /// Counts the writes it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_one_write() {
        let mut w = Writes::default();
        put_line(&mut w, "pve-restore: [lane 2 VM 300] [3/7] restore 300").expect("write");
        assert_eq!(
            w.0,
            [b"pve-restore: [lane 2 VM 300] [3/7] restore 300\n".to_vec()]
        );
    }

    #[test]
    fn a_scope_names_the_threads_lines_and_stays_on_one_line() {
        assert_eq!(scope_tag(), "");
        set_scope(Some("lane 2\nVM 300".into()));
        assert_eq!(scope_tag(), "[lane 2\\nVM 300] ");
        std::thread::spawn(|| assert_eq!(scope(), None))
            .join()
            .expect("thread");
        set_scope(None);
        assert_eq!(scope(), None);
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
