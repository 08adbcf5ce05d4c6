//! JSON Lines in: strict, line-numbered; unknown kinds and fields pass through.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::error::{Error, Result};
use crate::records::Record;

/// Reads records from one input. Blank lines are skipped; anything else that is not a JSON
/// object with a string `kind` is an error naming `source:line`.
pub struct RecordReader<R> {
    input: R,
    name: String,
    line: u64,
    buf: String,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R, name: impl Into<String>) -> Self {
        RecordReader {
            input,
            name: name.into(),
            line: 0,
            buf: String::new(),
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

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Some(Err(self.error("not valid UTF-8")));
                }
                Err(e) => return Some(Err(Error::io(format!("reading {}", self.name), e))),
            }
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            let value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => return Some(Err(self.error(format!("not a JSON object: {e}")))),
            };
            return Some(Record::from_value(value).map_err(|m| self.error(m)));
        }
    }
}

/// Opens `-` (standard input) or a file.
pub fn open(path: &str) -> Result<RecordReader<Box<dyn BufRead>>> {
    if path == "-" {
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
    for p in paths {
        for r in open(p)? {
            out.push(r?);
        }
    }
    Ok(out)
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

    #[test]
    fn missing_kind_is_an_error() {
        let mut r = RecordReader::new("{\"a\":1}\n".as_bytes(), "<stdin>");
        let e = r.next().expect("one").unwrap_err().to_string();
        assert_eq!(e, "<stdin>:1: record has no \"kind\" field");
    }
}
