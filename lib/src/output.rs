//! Records out: JSON Lines (default), or a table or CSV for people and spreadsheets.
//!
//! JSON Lines are written as they come. Tables and CSV need every row to size columns and to
//! write one header, so they are rendered at [`Output::finish`].

use std::io::{self, IsTerminal, Write};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::records::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (for pipes and jq).
    #[default]
    Jsonl,
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with one header row.
    Csv,
}

/// The documented column order of each kind in tables and CSV. Fields not listed follow, in
/// the order they first appear.
pub fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "backup" => &[
            "node",
            "storage",
            "vmid",
            "subtype",
            "time",
            "size",
            "format",
            "protected",
            "notes",
            "verification",
            "mark",
            "reason",
            "volid",
        ],
        "guest" => &[
            "node", "vmid", "type", "name", "status", "template", "tags", "lock",
        ],
        "backup_failure" => &["node", "storage", "vmid", "subtype", "time", "error", "log"],
        "storage" => &[
            "node",
            "storage",
            "type",
            "total",
            "used",
            "avail",
            "used_fraction",
            "shared",
            "active",
        ],
        "job" => &[
            "id",
            "enabled",
            "schedule",
            "storage",
            "vmid",
            "all",
            "exclude",
            "pool",
            "node",
            "prune_backups",
        ],
        "restore" => &[
            "vmid",
            "target_vmid",
            "volid",
            "node",
            "dry_run",
            "status",
            "duration_s",
            "error",
        ],
        "tfstate_version" => &[
            "env",
            "bucket",
            "key",
            "version_id",
            "is_latest",
            "delete_marker",
            "last_modified",
            "size",
            "serial",
            "lineage",
            "terraform_version",
            "resources",
        ],
        "step" => &["step", "target", "status", "message", "duration_s"],
        "check" => &[
            "component",
            "check",
            "status",
            "message",
            "value",
            "threshold",
        ],
        "summary" => &["counts", "exit_code", "duration_s"],
        "snapshot" => &[
            "node",
            "vmid",
            "type",
            "name",
            "label",
            "time",
            "parent",
            "vmstate",
            "description",
            "mark",
            "reason",
            "status",
            "message",
        ],
        _ => &[],
    }
}

/// Where records go.
pub struct Output {
    format: Format,
    out: Box<dyn Write>,
    flush_each: bool,
    rows: Vec<Map<String, Value>>,
}

impl Output {
    /// Standard output, flushed per record when it is a terminal or when asked to.
    pub fn stdout(format: Format, line_buffered: bool) -> Output {
        let stdout = io::stdout();
        let flush_each = line_buffered || stdout.is_terminal();
        Output::new(
            Box::new(io::BufWriter::new(stdout.lock())),
            format,
            flush_each,
        )
    }

    pub fn new(out: Box<dyn Write>, format: Format, flush_each: bool) -> Output {
        Output {
            format,
            out,
            flush_each,
            rows: Vec::new(),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        match self.format {
            Format::Jsonl => {
                let line = record
                    .to_json_line()
                    .map_err(|e| Error::Other(format!("cannot encode record: {e}")))?;
                self.write_line(&line)
            }
            Format::Table | Format::Csv => self.write_value(record.to_value()),
        }
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.out.write_all(line).map_err(stdout_err)?;
        if self.flush_each {
            self.out.flush().map_err(stdout_err)?;
        }
        Ok(())
    }

    pub fn write_value(&mut self, value: Value) -> Result<()> {
        match self.format {
            Format::Jsonl => {
                let mut line = serde_json::to_vec(&value)
                    .map_err(|e| Error::Other(format!("cannot encode record: {e}")))?;
                line.push(b'\n');
                self.write_line(&line)?;
            }
            Format::Table | Format::Csv => {
                if let Value::Object(m) = value {
                    self.rows.push(m);
                }
            }
        }
        Ok(())
    }

    /// Pushes out the JSON Lines written so far (a record that must not wait for the run to
    /// end, as a restored guest's).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(stdout_err)
    }

    /// Renders tables and CSV, and flushes. Call once at the end.
    pub fn finish(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.rows);
        match self.format {
            Format::Jsonl => {}
            Format::Table => render_table(&mut self.out, &rows).map_err(stdout_err)?,
            Format::Csv => render_csv(&mut self.out, &rows)?,
        }
        self.out.flush().map_err(stdout_err)
    }

    /// Direct access for tools that print their own table (backup-prune mimics pvesm).
    pub fn raw(&mut self) -> &mut dyn Write {
        &mut self.out
    }
}

fn stdout_err(e: io::Error) -> Error {
    Error::io("writing to standard output", e)
}

fn kind_of(row: &Map<String, Value>) -> &str {
    row.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Column list for a set of rows: documented order first, then other fields.
fn column_list<'a>(
    kinds: impl Iterator<Item = &'a str>,
    rows: &[&Map<String, Value>],
) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    let push = |c: &str, cols: &mut Vec<String>| {
        if c != "kind" && !cols.iter().any(|x| x == c) {
            cols.push(c.to_string());
        }
    };
    for k in kinds {
        for c in columns(k) {
            push(c, &mut cols);
        }
    }
    for r in rows {
        for k in r.keys() {
            push(k, &mut cols);
        }
    }
    cols
}

fn render_table(out: &mut dyn Write, rows: &[Map<String, Value>]) -> io::Result<()> {
    // One table per kind, in order of first appearance.
    let mut kinds: Vec<&str> = Vec::new();
    for r in rows {
        let k = kind_of(r);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    for (i, kind) in kinds.iter().enumerate() {
        let group: Vec<&Map<String, Value>> = rows.iter().filter(|r| kind_of(r) == *kind).collect();
        // Tables show the documented columns (all fields for unknown kinds); CSV has them all.
        let documented = columns(kind);
        let cols: Vec<String> = column_list(std::iter::once(*kind), &group)
            .into_iter()
            .filter(|c| documented.is_empty() || documented.contains(&c.as_str()))
            .filter(|c| group.iter().any(|r| r.get(c).is_some_and(|v| !v.is_null())))
            .collect();
        let cells: Vec<Vec<String>> = group
            .iter()
            .map(|r| cols.iter().map(|c| row_cell(c, r)).collect())
            .collect();
        let mut widths: Vec<usize> = cols.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        if i > 0 {
            writeln!(out)?;
        }
        if kinds.len() > 1 {
            writeln!(out, "# {}", printable(kind))?;
        }
        let header: Vec<String> = cols
            .iter()
            .map(|c| printable(&c.to_uppercase()).into_owned())
            .collect();
        write_row(out, &header, &widths)?;
        for row in &cells {
            write_row(out, row, &widths)?;
        }
    }
    Ok(())
}

fn write_row(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

fn render_csv(out: &mut dyn Write, rows: &[Map<String, Value>]) -> Result<()> {
    let mut kinds: Vec<&str> = Vec::new();
    for r in rows {
        let k = kind_of(r);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let all: Vec<&Map<String, Value>> = rows.iter().collect();
    let mut cols = column_list(kinds.iter().copied(), &all);
    if kinds.len() > 1 {
        cols.insert(0, "kind".into());
    }
    let mut w = csv::Writer::from_writer(out);
    let err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => stdout_err(io),
        other => Error::Other(format!("CSV: {other:?}")),
    };
    let header: Vec<String> = cols.iter().map(|c| printable(c).into_owned()).collect();
    w.write_record(&header).map_err(err)?;
    for r in rows {
        let rec: Vec<String> = cols.iter().map(|c| plain_cell(r.get(c))).collect();
        w.write_record(&rec).map_err(err)?;
    }
    w.flush().map_err(stdout_err)
}

/// A value as text for CSV: strings raw, null/missing empty, objects as compact JSON.
fn plain_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => printable(s).into_owned(),
        Some(Value::Array(a)) if a.iter().all(|x| !x.is_object() && !x.is_array()) => a
            .iter()
            .map(|x| plain_cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// A value for a table: sizes in IEC units, fractions in percent, missing as `-`.
/// A table cell of `row`: a `time` with the record's `timezone` is shown in that zone and
/// labelled with it, as the archive names and the node's own GUI show it.
fn row_cell(column: &str, row: &Map<String, Value>) -> String {
    if column == "time"
        && let Some(local) = node_time(row)
    {
        return local;
    }
    human_cell(column, row.get(column))
}

/// `2024-01-15T01:00:02Z` with `timezone: Europe/Paris` → `2024-01-15 02:00:02 CET`.
fn node_time(row: &Map<String, Value>) -> Option<String> {
    let tz: chrono_tz::Tz = row.get("timezone")?.as_str()?.parse().ok()?;
    let utc = chrono::DateTime::parse_from_rfc3339(row.get("time")?.as_str()?).ok()?;
    Some(
        utc.with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
    )
}

fn human_cell(column: &str, v: Option<&Value>) -> String {
    match (column, v) {
        (_, None | Some(Value::Null)) => "-".into(),
        ("size" | "total" | "used" | "avail", Some(Value::Number(n))) => {
            n.as_u64().map(human_bytes).unwrap_or_else(|| n.to_string())
        }
        ("used_fraction", Some(Value::Number(n))) => n
            .as_f64()
            .map(|f| format!("{:.1}%", f * 100.0))
            .unwrap_or_default(),
        // Proxmox lists the first line of notes and descriptions.
        ("notes" | "description", Some(Value::String(s))) => {
            crate::msg::one_line(s.lines().next().unwrap_or(""))
        }
        // Text read from a node, a server or a file: one line, control characters visible.
        (_, Some(Value::String(s))) => crate::msg::one_line(s),
        // `verification: {state, upid}` → its state.
        (_, Some(Value::Object(m))) if m.get("state").is_some_and(Value::is_string) => {
            printable(m["state"].as_str().unwrap_or("")).into_owned()
        }
        (_, other) => plain_cell(other),
    }
}

/// A table or CSV cell: control characters and bidi overrides escaped
/// ([`crate::msg::escaped`]), so a name or note read from a node, an archive or S3 cannot
/// move the cursor, retitle the terminal or break a row.
use crate::msg::escaped as printable;

/// `1873920512` → `1.7 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
        }
    }

    fn render(format: Format, values: &[Value]) -> String {
        let buf = Buf::default();
        let mut o = Output::new(Box::new(buf.clone()), format, false);
        for v in values {
            o.write_value(v.clone()).expect("write");
        }
        o.finish().expect("finish");
        buf.text()
    }

    #[test]
    fn csv_has_stable_columns_and_one_header() {
        let text = render(
            Format::Csv,
            &[json!({"kind":"backup","volid":"a:backup/x","vmid":100,"size":5,"extra":"e"})],
        );
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "node,storage,vmid,subtype,time,size,format,protected,notes,verification,mark,reason,volid,extra"
            )
        );
        assert_eq!(lines.next(), Some(",,100,,,5,,,,,,,a:backup/x,e"));
    }

    #[test]
    fn table_is_aligned_and_human() {
        let text = render(
            Format::Table,
            &[
                json!({"kind":"backup","vmid":100,"size":1873920512u64,"volid":"l:backup/a"}),
                json!({"kind":"backup","vmid":101,"size":null,"volid":"l:backup/bb"}),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "VMID  SIZE     VOLID");
        assert_eq!(lines[1], "100   1.7 GiB  l:backup/a");
        assert_eq!(lines[2], "101   -        l:backup/bb");
    }

    /// `v` rendered as `f`: a header and one line, no control character left raw, and
    /// `shown` among them as it must appear.
    fn assert_escaped(f: Format, v: &Value, shown: &str) {
        let text = render(f, std::slice::from_ref(v));
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\r', '\t']),
            "{f:?}: {text:?}"
        );
        assert_eq!(text.lines().count(), 2, "{f:?}: {text:?}");
        assert!(text.contains(shown), "{f:?}: {text:?}");
    }

    #[test]
    fn table_cells_show_control_characters_and_stay_on_one_line() {
        let v = json!({"kind":"step","step":"reseed","status":"skipped","message":"lineage \u{1b}[2J\nforged: line"});
        assert_escaped(Format::Table, &v, "lineage \\u{1b}[2J\\nforged: line");
    }

    #[test]
    fn table_and_csv_show_control_characters_escaped() {
        let v = json!({"kind":"backup","vmid":1,"notes":"\u{1b}]0;owned\u{7}x\ry","volid":"a\u{1b}[2J",
                       "source_volid":"l\nm","o\u{1b}[K":"\t"});
        for f in [Format::Table, Format::Csv] {
            assert_escaped(f, &v, "\\u{1b}]0;owned\\u{7}x\\ry");
        }
    }

    #[test]
    fn jsonl_is_compact() {
        let text = render(Format::Jsonl, &[json!({"kind":"x","a":[1, 2]})]);
        assert_eq!(text, "{\"kind\":\"x\",\"a\":[1,2]}\n");
    }
}
