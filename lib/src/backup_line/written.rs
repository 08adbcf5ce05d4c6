//! A backup line exactly as pvedr writes it (serde's order of [`crate::records::Backup`]'s
//! fields, no whitespace, strings without escapes, plain integers), read by a cursor
//! without serde: serde's scan, its field-name matching and its string handling were most
//! of backup-check's time on a listing. Anything else is `None`, and serde reads it
//! (the same value, or its error): this is only a faster way to the same [`Typical`].

use std::borrow::Cow;

use super::{Text, Typical};

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// Consumes `lit` when the rest starts with it.
    fn eat(&mut self, lit: &str) -> bool {
        match self.rest.strip_prefix(lit) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, lit: &str) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A string without escapes or control characters (JSON forbids them raw: serde
    /// refuses them, so the fallback says so).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let body = self.rest.strip_prefix('"')?;
        let end = body
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || b < b' ')?;
        if body.as_bytes()[end] != b'"' {
            return None;
        }
        self.rest = &body[end + 1..];
        Some(Cow::Borrowed(&body[..end]))
    }

    /// An integer as JSON writes it (no leading zero, no fraction or exponent after); not
    /// `-0`, which serde reads as a float.
    fn int(&mut self) -> Option<i64> {
        let digits = self.rest.strip_prefix('-').unwrap_or(self.rest);
        let negative = digits.len() < self.rest.len();
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || (digits.starts_with('0') && (n > 1 || negative)) {
            return None;
        }
        let len = self.rest.len() - digits.len() + n;
        let (num, rest) = self.rest.split_at(len);
        if !(rest.starts_with(',') || rest.starts_with('}')) {
            return None;
        }
        self.rest = rest;
        num.parse().ok()
    }

    /// `,"name":` when it comes next.
    fn field(&mut self, name: &str) -> bool {
        let Some(r) = self.rest.strip_prefix(",\"") else {
            return false;
        };
        match r.strip_prefix(name).and_then(|r| r.strip_prefix("\":")) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn need(&mut self, name: &str) -> Option<()> {
        self.field(name).then_some(())
    }
}

/// The line as [`Typical`], when it is written as pvedr writes one; `node` and `size` may
/// be absent or `null`, `protected` absent.
pub(super) fn read(line: &str) -> Option<Typical<'_>> {
    let mut c = Cursor { rest: line };
    c.expect(r#"{"kind":"backup""#)?;
    let node = match c.field("node") {
        true if c.eat("null") => None,
        true => Some(Text(c.string()?)),
        false => None,
    };
    c.need("storage")?;
    let storage = c.string()?;
    c.need("volid")?;
    let volid = c.string()?;
    c.need("vmid")?;
    let vmid = c.int()?;
    c.need("subtype")?;
    let subtype = c.string()?;
    c.need("ctime")?;
    let ctime = c.int()?;
    c.need("time")?;
    let time = c.string()?;
    let size = match c.field("size") {
        true if c.eat("null") => None,
        true => Some(c.int()?),
        false => None,
    };
    c.need("format")?;
    let format = c.string()?;
    let protected = c.field("protected") && {
        if c.eat("true") {
            true
        } else {
            c.expect("false")?;
            false
        }
    };
    c.expect("}")?;
    if !c.rest.is_empty() {
        return None;
    }
    Some(Typical {
        kind: Cow::Borrowed("backup"),
        node,
        storage,
        volid,
        vmid,
        subtype,
        ctime,
        time,
        size,
        format,
        protected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_00.vma.zst","vmid":100,"subtype":"qemu","ctime":1705284000,"time":"2024-01-15T02:00:00Z","size":1000,"format":"vma.zst","protected":false}"#;

    fn by_serde(line: &str) -> Option<super::super::BackupRef<'_>> {
        super::super::finish(serde_json::from_str(line).ok()?)
    }

    fn by_cursor(line: &str) -> Option<super::super::BackupRef<'_>> {
        super::super::finish(read(line)?)
    }

    /// What the cursor reads, serde reads the same; it reads what pvedr writes.
    #[test]
    fn the_cursor_reads_what_serde_reads() {
        let written = pvedr_written();
        for line in [LINE, written.as_str()] {
            assert!(read(line).is_some(), "{line}");
        }
        // Every line one byte away from a written one (changed, inserted, removed).
        let mut lines = Vec::new();
        for at in 0..=LINE.len() {
            for b in [
                "\\", "\"", "0", "-", " ", "x", ",", "}", ".", "e", "1", "\u{1}", "n",
            ] {
                lines.push(format!("{}{b}{}", &LINE[..at], &LINE[at..]));
                if at < LINE.len() {
                    lines.push(format!("{}{b}{}", &LINE[..at], &LINE[at + 1..]));
                }
            }
            if at < LINE.len() {
                lines.push(format!("{}{}", &LINE[..at], &LINE[at + 1..]));
            }
        }
        let mut read_some = 0;
        for line in &lines {
            if let Some(t) = by_cursor(line) {
                read_some += 1;
                assert_eq!(Some(t), by_serde(line), "{line}");
            }
        }
        assert!(read_some > 100, "{read_some}");
        for line in [
            r#"{"kind":"backup","node":null,"storage":"s","volid":"v","vmid":7,"subtype":"lxc","ctime":-5,"time":"t","size":null,"format":"tar.zst"}"#,
            r#"{"kind":"backup","storage":"pbs","volid":"v","vmid":0,"subtype":"qemu","ctime":0,"time":"","size":1,"format":"pbs-vm","protected":true}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":-1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f","size":-3}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":99999999999999999999,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":-0,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":-9223372036854775808,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":9223372036854775808,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":18446744073709551615,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","node":"é","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
        ] {
            assert_eq!(by_cursor(line), by_serde(line), "{line}");
        }
        for line in [
            r#"{"kind":"backup","storage":"s\u0041","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1.0,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":01,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f"} "#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f","notes":"n"}"#,
        ] {
            assert!(read(line).is_none(), "{line}");
        }
    }

    /// A backup record as pvedr's serialisation writes it.
    fn pvedr_written() -> String {
        let b = crate::records::Backup {
            node: Some("pve1".into()),
            storage: Some("local".into()),
            volid: "local:backup/vzdump-lxc-101-2024_01_15-02_00_00.tar.zst".into(),
            vmid: Some(101),
            subtype: "lxc".into(),
            ctime: 1705284000,
            time: "2024-01-15T02:00:00Z".into(),
            size: Some(5),
            format: "tar.zst".into(),
            protected: true,
            ..Default::default()
        };
        let line = crate::records::Record::Backup(b)
            .to_json_line()
            .expect("json");
        String::from_utf8(line)
            .expect("utf-8")
            .trim_end()
            .to_string()
    }
}
