//! The hot path of every tool that reads listings: a `backup` line parsed straight into the
//! fields [`Backup::from_fields`] reads, without the map (its hashing and its allocations)
//! that a `serde_json::Value` builds. The same reading rules apply, so the result is the one
//! [`crate::records::Record::from_value`] gives.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::records::{Backup, Fields};

mod written;

/// The fields of a backup record by name, `kind` included (it must stay `backup`).
const NAMES: [&str; 20] = [
    "kind",
    "volid",
    "ctime",
    "storage",
    "time",
    "vmid",
    "subtype",
    "format",
    "size",
    "protected",
    "verification",
    "node",
    "notes",
    "encrypted",
    "name",
    "path",
    "log",
    "log_status",
    "timezone",
    "unfinished",
];

#[derive(Default)]
struct Slots {
    known: [Option<Value>; NAMES.len()],
    extra: Map<String, Value>,
}

// By reference: the slots are a kilobyte and more, and moving them was a tenth of a parse.
impl Fields for &mut Slots {
    fn take(&mut self, k: &str) -> Option<Value> {
        let i = NAMES.iter().position(|n| *n == k)?;
        self.known[i].take()
    }

    fn rest(self) -> Map<String, Value> {
        std::mem::take(&mut self.extra)
    }
}

/// Whether the line is worth the fast path: `kind` first, and `backup`, as pvedr and
/// the contract write it. Anything else goes the general way.
pub fn looks_like_backup(line: &str) -> bool {
    line.starts_with(r#"{"kind":"backup","#)
}

/// `None` when the line is not a backup record after all (a later duplicate `kind`):
/// the caller reads it the general way.
pub fn parse(line: &str) -> serde_json::Result<Option<Result<Backup, String>>> {
    if let Some(b) = typical(line) {
        return Ok(Some(Ok(b.to_backup())));
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let mut slots = Slots::default();
    let backup = de.deserialize_map(SlotsVisitor(&mut slots))?;
    de.end()?;
    if !backup {
        return Ok(None);
    }
    slots.known[0] = None;
    Ok(Some(Backup::from_fields(&mut slots)))
}

/// A string of a line, borrowed from it when it holds no escape.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The shape pve-ls-backups writes, each field of its one type, read without the slots'
/// `Value`s (most of a parse). Anything else (another field, type or sign, a field
/// missing, twice) fails here and is read by the slots, with their rules and their errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Typical<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    node: Option<Text<'a>>,
    #[serde(borrow)]
    storage: Cow<'a, str>,
    #[serde(borrow)]
    volid: Cow<'a, str>,
    vmid: i64,
    #[serde(borrow)]
    subtype: Cow<'a, str>,
    ctime: i64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    size: Option<i64>,
    #[serde(borrow)]
    format: Cow<'a, str>,
    #[serde(default)]
    protected: bool,
}

/// A backup line of the typical shape, its strings borrowed from the line: what
/// [`parse`] would read into a [`Backup`] (these fields, the others empty), for a reader
/// that needs no owned record (backup-check folds a million of them).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRef<'a> {
    pub node: Option<Cow<'a, str>>,
    pub storage: Cow<'a, str>,
    pub volid: Cow<'a, str>,
    pub vmid: u64,
    pub subtype: Cow<'a, str>,
    pub ctime: i64,
    pub time: Cow<'a, str>,
    /// `None` for an unfinished PBS snapshot, as in [`Backup`].
    pub size: Option<u64>,
    pub format: Cow<'a, str>,
    pub protected: bool,
    pub unfinished: bool,
}

impl BackupRef<'_> {
    pub fn to_backup(&self) -> Backup {
        Backup {
            node: self.node.as_deref().map(String::from),
            storage: Some(self.storage.to_string()),
            volid: self.volid.to_string(),
            vmid: Some(self.vmid),
            subtype: self.subtype.to_string(),
            ctime: self.ctime,
            time: self.time.to_string(),
            size: self.size,
            format: self.format.to_string(),
            protected: self.protected,
            unfinished: self.unfinished,
            ..Backup::default()
        }
    }
}

/// The line as a [`BackupRef`] when it has the typical shape (and `kind` is `backup`);
/// `None`: read it with [`parse`] (or as any record), which gives its value or its error.
pub fn typical(line: &str) -> Option<BackupRef<'_>> {
    let t = match written::read(line) {
        Some(t) => t,
        None => serde_json::from_str(line).ok()?,
    };
    finish(t)
}

/// The reading rules of the typed fields: what [`Backup::from_fields`] makes of them.
fn finish(t: Typical<'_>) -> Option<BackupRef<'_>> {
    let vmid = u64::try_from(t.vmid).ok()?;
    let size = t.size.map(u64::try_from).transpose().ok()?;
    if t.kind != "backup" {
        return None;
    }
    let unfinished = crate::records::pbs_unfinished(&t.format, size);
    Some(BackupRef {
        node: t.node.map(|n| n.0),
        storage: t.storage,
        volid: t.volid,
        vmid,
        subtype: t.subtype,
        ctime: t.ctime,
        time: t.time,
        size: size.filter(|_| !unfinished),
        format: t.format,
        protected: t.protected,
        unfinished,
    })
}

/// Fills the slots; `false` when the record is not a backup after all.
struct SlotsVisitor<'s>(&'s mut Slots);

impl<'de> Visitor<'de> for SlotsVisitor<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<bool, A::Error> {
        let slots = self.0;
        while let Some(key) = a.next_key::<Cow<'de, str>>()? {
            let value: Value = a.next_value()?;
            match NAMES.iter().position(|n| *n == key) {
                Some(0) if value.as_str() != Some("backup") => {
                    // Read the rest as the general way does, so that a broken line gives
                    // the same error.
                    while a.next_entry::<Cow<'de, str>, Value>()?.is_some() {}
                    return Ok(false);
                }
                Some(i) => slots.known[i] = Some(value),
                None => {
                    slots.extra.insert(key.into_owned(), value);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod typical_tests {
    use super::*;

    /// The typed path gives what the slots give, for the shape it takes.
    #[test]
    fn typical_lines_read_as_the_slots_read_them() {
        for line in [
            r#"{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_00.vma.zst","vmid":100,"subtype":"qemu","ctime":1705284000,"time":"2024-01-15T02:00:00Z","size":1000,"format":"vma.zst","protected":false}"#,
            r#"{"kind":"backup","storage":"pbs","volid":"pbs:backup/vm/100/2024-01-15T02:00:00Z","vmid":100,"subtype":"qemu","ctime":1705284000,"time":"","size":1,"format":"pbs-vm"}"#,
            r#"{"kind":"backup","node":null,"storage":"s\u0041","volid":"v","vmid":7,"subtype":"lxc","ctime":-5,"time":"t","size":null,"format":"tar.zst","protected":true}"#,
        ] {
            let fast = typical(line).expect("typical").to_backup();
            let mut de = serde_json::Deserializer::from_str(line);
            let mut slots = Slots::default();
            assert!(de.deserialize_map(SlotsVisitor(&mut slots)).expect("map"));
            slots.known[0] = None;
            assert_eq!(Ok(fast), Backup::from_fields(&mut slots), "{line}");
        }
        for line in [
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":-1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":"100","subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f","url":"x"}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f","size":-1}"#,
            r#"{"kind":"backup","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f","protected":1}"#,
            r#"{"kind":"backup","kind":"x","storage":"s","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
            r#"{"kind":"backup","volid":"v","vmid":1,"subtype":"q","ctime":1,"time":"","format":"f"}"#,
        ] {
            assert!(typical(line).is_none(), "{line}");
        }
    }
}
