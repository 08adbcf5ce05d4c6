//! The hot path of every tool that reads listings: a `backup` line parsed straight into the
//! fields [`Backup::from_fields`] reads, without the map (its hashing and its allocations)
//! that a `serde_json::Value` builds. The same reading rules apply, so the result is the one
//! [`crate::records::Record::from_value`] gives.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::records::{Backup, Fields};

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
