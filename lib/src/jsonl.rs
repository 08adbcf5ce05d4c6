//! JSON Lines in: strict, line-numbered; unknown kinds and fields pass through.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::records::Record;

/// The longest line read by default (64 MiB): a record is a few hundred bytes, so a longer
/// line is an error rather than an allocation without bound.
pub const MAX_LINE: usize = 64 << 20;

/// Reads records from one input. Blank lines are skipped; anything else that is not a JSON
/// object with a string `kind` is an error naming `source:line`, and so is a line longer
/// than [`MAX_LINE`] (skipped; reading goes on with the next).
pub struct RecordReader<R> {
    input: R,
    name: String,
    line: u64,
    buf: Vec<u8>,
    max_line: usize,
    /// The kinds read into their types (`None`: all); see [`RecordReader::only`].
    typed: Option<&'static [&'static str]>,
    /// The last line was cut at the bound: its rest is skipped before the next one is read,
    /// not before its error is returned (a line that never ends, `/dev/zero`, must not hold
    /// a reader that stops at the first error).
    skip_rest: bool,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R, name: impl Into<String>) -> Self {
        RecordReader {
            input,
            name: name.into(),
            line: 0,
            buf: Vec::new(),
            max_line: MAX_LINE,
            typed: None,
            skip_rest: false,
        }
    }

    /// Reads only these kinds into their types: the others stay [`Record::Other`] as they
    /// came, so a record this tool does not use can never fail its run.
    pub fn only(mut self, kinds: &'static [&'static str]) -> Self {
        self.typed = Some(kinds);
        self
    }

    /// Another bound than [`MAX_LINE`] (bytes, without the newline).
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// Consumes the rest of a line that was cut at the bound.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let (used, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), chunk.is_empty()),
            };
            self.input.consume(used);
            if done {
                return Ok(());
            }
        }
    }

    /// The next line, without its bound checked: `Ok(None)` at the end.
    fn read_line(&mut self) -> Result<Option<Result<&str>>> {
        if std::mem::take(&mut self.skip_rest) {
            self.skip_line()
                .map_err(|e| Error::io(format!("reading {}", self.name), e))?;
        }
        self.buf.clear();
        self.line += 1;
        // The newline may be the one byte past the bound.
        let limit = u64::try_from(self.max_line)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let n = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(format!("reading {}", self.name), e))?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.len() > self.max_line && self.buf.last() != Some(&b'\n') {
            self.skip_rest = true;
            let max = self.max_line;
            return Ok(Some(Err(
                self.error(format!("line longer than {max} bytes"))
            )));
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Ok(Some(Ok(text))),
            Err(_) => Ok(Some(Err(self.error("not valid UTF-8")))),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Input {
            source_name: self.name.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl<R: BufRead> RecordReader<R> {
    /// The next record, each line offered first to `take`: a line it takes (returns
    /// `true`) is not read again, so a tool with a faster reading of some lines (a
    /// borrowed one) reads them once. Bad lines are errors as with [`Iterator::next`].
    pub fn next_unless(&mut self, take: &mut impl FnMut(&str) -> bool) -> Option<Result<Record>> {
        let typed = self.typed;
        let backups_typed = typed.is_none_or(|t| t.contains(&"backup"));
        loop {
            let text = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(Ok(text))) => text.trim(),
                Ok(Some(Err(e))) | Err(e) => return Some(Err(e)),
            };
            if text.is_empty() || take(text) {
                continue;
            }
            if backups_typed && crate::backup_line::looks_like_backup(text) {
                match crate::backup_line::parse(text) {
                    Ok(Some(r)) => {
                        return Some(
                            r.map(Record::Backup)
                                .map_err(|m| self.error(format!("bad `backup` record: {m}"))),
                        );
                    }
                    Ok(None) => {}
                    Err(e) => return Some(Err(self.error(format!("not a JSON object: {e}")))),
                }
            }
            let value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => return Some(Err(self.error(format!("not a JSON object: {e}")))),
            };
            return Some(Record::from_value_of(value, typed).map_err(|m| self.error(m)));
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_unless(&mut |_| false)
    }
}

/// Opens `-` (standard input) or a file.
pub fn open(path: &str) -> Result<RecordReader<Box<dyn BufRead>>> {
    if path == "-" {
        if io::stdin().is_terminal() {
            crate::msg::say(format_args!(
                "reading records from standard input, a terminal: pipe them in (pve-ls-backups … | {}), give a FILE, or end with Ctrl-D",
                crate::msg::tool()
            ));
        }
        let stdin: Box<dyn BufRead> = Box::new(io::stdin().lock());
        return Ok(RecordReader::new(stdin, "<stdin>"));
    }
    let file =
        File::open(Path::new(path)).map_err(|e| Error::io(format!("cannot open {path}"), e))?;
    Ok(RecordReader::new(
        Box::new(BufReader::new(file)) as Box<dyn BufRead>,
        path,
    ))
}

/// Reads every record of every input, in order (`-` is standard input).
pub fn read_all(paths: &[String]) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for_each(paths, |r| out.push(r))?;
    Ok(out)
}

/// [`read_all`] for a tool that uses only `kinds`: records of other kinds are passed on as
/// they came ([`Record::Other`]), never an error.
pub fn read_only(paths: &[String], kinds: &'static [&'static str]) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for p in paths {
        for r in open(p)?.only(kinds) {
            out.push(r?);
        }
    }
    Ok(out)
}

/// Hands every record of every input to `f`, in order: a tool that sorts records into its
/// own lists holds them once, not twice.
pub fn for_each(paths: &[String], mut f: impl FnMut(Record)) -> Result<()> {
    for p in paths {
        for r in open(p)? {
            f(r?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_and_line() {
        let input = "{\"kind\":\"x\"}\n\n{oops}\n";
        let mut r = RecordReader::new(input.as_bytes(), "in.jsonl");
        assert!(r.next().expect("one").is_ok());
        let e = r.next().expect("two").unwrap_err().to_string();
        assert!(e.starts_with("in.jsonl:3: not a JSON object"), "{e}");
    }

    /// Counts the bytes read through it.
    struct Counted<R>(R, std::rc::Rc<std::cell::Cell<u64>>);

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(b)?;
            self.1.set(self.1.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_line_without_end_is_an_error_before_its_end() {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let zeros = Counted(io::repeat(0).take(64 << 20), read.clone());
        let mut r = RecordReader::new(io::BufReader::new(zeros), "zero").with_max_line(16);
        let e = r.next().expect("one").unwrap_err().to_string();
        assert!(e.contains("longer than 16 bytes"), "{e}");
        assert!(read.get() < 1 << 20, "read {} bytes of it", read.get());
    }

    #[test]
    fn the_line_after_a_long_one_is_read() {
        let mut r = RecordReader::new(&b"0123456789012345678\n{\"kind\":\"x\"}\n"[..], "in")
            .with_max_line(12);
        assert!(r.next().expect("one").is_err());
        assert_eq!(r.next().expect("two").expect("ok").kind(), "x");
        assert!(r.next().is_none());
    }

    #[test]
    fn missing_kind_is_an_error() {
        let mut r = RecordReader::new("{\"a\":1}\n".as_bytes(), "<stdin>");
        let e = r.next().expect("one").unwrap_err().to_string();
        assert_eq!(e, "<stdin>:1: record has no \"kind\" field");
    }
}
